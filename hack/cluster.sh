#!/usr/bin/env bash
# tickit on a kind cluster (README: Deploy to kind). make cluster / deploy / undeploy call this.
#   hack/cluster.sh create          download and check every release file first, then create the kind
#                                   cluster "tickit" with Knative Serving + Kourier, Knative Eventing + the
#                                   MT channel-based Broker, eventing-natss's JetStream channel and config/
#   hack/cluster.sh deploy          build the web UI, fill the Secrets, build every function with ko for
#                                   the node's architecture, apply knative/ so that every first revision
#                                   is healthy, remove images no revision uses from the node
#   hack/cluster.sh function NAME   build and roll out one function (knative/services/*-NAME.yaml) the same way
#   hack/cluster.sh env             print the environment ko needs by hand (eval "$(hack/cluster.sh env)")
#   hack/cluster.sh undeploy        delete what deploy applied, the Broker and its events too (README)
#
# Every kubectl call names the context kind-tickit (--context): the script never changes which
# cluster your kubectl talks to. (kind create cluster does set the current context; create puts
# yours back right after.)
set -euo pipefail

# Versions: the one place they are pinned.
# - kind v0.33.0, whose node image kind-config.yaml pins by digest (Kubernetes v1.37.0). Knative
#   1.23 needs Kubernetes >= 1.34: knative.dev/pkg (the version serving v0.50.0 requires) sets
#   version.DefaultKubernetesMinVersion = "v1.34.0", and kind v0.29 and older default to v1.33.
KIND_VERSION=v0.33.0
# - Knative 1.23 is what the Go API types in knative/local (knative.dev/serving and eventing
#   v0.50.0) validate the manifests against.
KNATIVE_SERVING=knative-v1.23.0
KNATIVE_KOURIER=knative-v1.23.0
KNATIVE_EVENTING=knative-v1.23.0
# - eventing-natss: knative-v1.22.0 is its newest release tag (knative-extensions/eventing-natss,
#   tags read 2026-11-30); none for 1.23 is known. make conformance builds the source snapshot
#   03a34594d69c (../shared/third_party), which is knative-v1.22.0 plus dependency upgrades only.
#   Its hack/release.sh publishes eventing-jsm.yaml = config/webhook + config/jetstream (the
#   NatsJetStreamChannel); broker-jsm.yaml (its own NATS Broker) is not used here.
EVENTING_NATSS=knative-v1.22.0

SERVING_URL=https://github.com/knative/serving/releases/download/${KNATIVE_SERVING}
KOURIER_URL=https://github.com/knative-extensions/net-kourier/releases/download/${KNATIVE_KOURIER}
EVENTING_URL=https://github.com/knative/eventing/releases/download/${KNATIVE_EVENTING}
NATSS_URL=https://github.com/knative-extensions/eventing-natss/releases/download/${EVENTING_NATSS}
RELEASES=(
	"$SERVING_URL/serving-crds.yaml" "$SERVING_URL/serving-core.yaml" "$KOURIER_URL/kourier.yaml"
	"$EVENTING_URL/eventing-crds.yaml" "$EVENTING_URL/eventing-core.yaml" "$EVENTING_URL/mt-channel-broker.yaml"
	"$NATSS_URL/eventing-jsm.yaml"
)

CLUSTER=tickit          # kind-config.yaml names the cluster the same
CONTEXT=kind-$CLUSTER   # the kubeconfig context kind creates for it
NAMESPACE=tickit
KOURIER_NODE_PORT=31080 # kind-config.yaml maps it to host port 80
STRIPE_MOCK_URL=http://stripe-mock.$NAMESPACE.svc.cluster.local:12111
# Annotation on each Service's revision template: the sha256 of the Secrets it reads, so a
# changed key makes a new revision.
SECRETS_ANNOTATION=tickit.dev/secrets-sha256

cd "$(dirname "$0")/.."
CACHE=.tickit/cluster # downloaded release files, by version

step() { printf '\n==> %s\n' "$*"; }
die() {
	echo "hack/cluster.sh: $*" >&2
	exit 1
}

# k runs kubectl against the tickit cluster, whatever the current context is.
k() { kubectl --context "$CONTEXT" "$@"; }

# wait_deployments NAMESPACE: until every deployment there is available.
wait_deployments() {
	echo "    waiting for the deployments in $1"
	k wait deployment --all --namespace "$1" --for=condition=Available --timeout=300s
}

require() {
	local missing=()
	for tool in "$@"; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	if ((${#missing[@]})); then
		die "missing: ${missing[*]} (see README: Deploy to kind, Prerequisites)"
	fi
}

# at_least HAVE WANT: HAVE >= WANT as versions (sort -V).
at_least() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }

check_kind() {
	local have
	have=$(kind version | awk '{print $2}')
	at_least "${have#v}" "${KIND_VERSION#v}" ||
		die "kind $have is older than $KIND_VERSION, whose node image kind-config.yaml pins (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
}

# check_docker: Knative's quickstart needs 3 CPUs and 3 GB for the cluster; tickit adds NATS,
# MongoDB (up to 1 GiB), Redis, stripe-mock and the functions.
check_docker() {
	local cpus mem
	read -r cpus mem < <(docker info --format '{{.NCPU}} {{.MemTotal}}') || die "docker is not running"
	if ((cpus < 3 || mem < 3 * 1024 ** 3)); then
		die "docker has $cpus CPUs and $((mem / 1024 ** 2)) MiB: give it at least 4 CPUs and 6 GiB (Knative needs 3 and 3 GB)"
	fi
	if ((cpus < 4 || mem < 6 * 1024 ** 3)); then
		echo "    note: docker has $cpus CPUs and $((mem / 1024 ** 2)) MiB; 4 CPUs and 6 GiB are recommended"
	fi
}

# check_go: ko compiles with the local Go, which must be at least go.work's.
check_go() {
	local want have
	want=$(sed -n 's/^go //p' go.work)
	have=$(go env GOVERSION)
	at_least "${have#go}" "$want" || die "Go $have is older than go$want (go.work): ko compiles the functions with it"
}

# check_node: the web UI's build (package.json engines).
check_node() {
	local have
	have=$(node --version)
	at_least "${have#v}" 20.19 || die "Node $have is older than 20.19, which the web UI's Vite build needs"
}

# fetch_releases downloads every release file before anything is created, so a missing one
# stops the script with one line naming it. Files already downloaded are reused.
fetch_releases() {
	step "release files (checked before anything is created)"
	mkdir -p "$CACHE"
	local url file code
	for url in "${RELEASES[@]}"; do
		file=$(release_file "$url")
		[[ -s $file ]] && continue
		code=$(curl -sSL --retry 2 -o "$file.part" -w '%{http_code}' "$url" 2>/dev/null) || true
		if [[ $code != 200 ]]; then
			rm -f "$file.part"
			[[ ${code:-000} != 000 ]] || die "cannot download $url (no connection to github.com?)"
			die "release file missing (HTTP $code): $url (pins at the top of hack/cluster.sh)"
		fi
		mv "$file.part" "$file"
		echo "    $url"
	done
}

# release_file URL: where fetch_releases keeps it (.tickit/cluster/<repo>-<version>-<file>).
release_file() {
	local repo version
	repo=$(cut -d/ -f5 <<<"$1")
	version=$(cut -d/ -f8 <<<"$1")
	echo "$CACHE/$repo-$version-${1##*/}"
}

create() {
	require docker kind kubectl curl
	check_kind
	check_docker
	fetch_releases

	step "kind cluster '$CLUSTER' (kind-config.yaml: kind $KIND_VERSION's node image)"
	if kind get clusters | grep -qx "$CLUSTER"; then
		echo "    already exists: reusing it"
	else
		local previous
		previous=$(kubectl config current-context 2>/dev/null || true)
		kind create cluster --config kind-config.yaml
		# kind made kind-tickit the current context: give the user's back.
		if [[ -n $previous && $previous != "$CONTEXT" ]]; then
			kubectl config use-context "$previous" >/dev/null
			echo "    your current kubectl context is still $previous; this cluster is --context $CONTEXT"
		fi
	fi

	step "Knative Serving $KNATIVE_SERVING"
	k apply -f "$(release_file "$SERVING_URL/serving-crds.yaml")"
	k wait crd/services.serving.knative.dev --for=condition=Established --timeout=60s
	k apply -f "$(release_file "$SERVING_URL/serving-core.yaml")"
	wait_deployments knative-serving

	step "Kourier $KNATIVE_KOURIER, on NodePort $KOURIER_NODE_PORT"
	k apply -f "$(release_file "$KOURIER_URL/kourier.yaml")"
	# kind has no load balancer: publish Kourier's HTTP port on the node, which
	# kind-config.yaml maps to the host's port 80.
	k patch service kourier --namespace kourier-system \
		--patch "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":$KOURIER_NODE_PORT}]}}"
	wait_deployments kourier-system
	wait_deployments knative-serving

	step "Knative Eventing $KNATIVE_EVENTING: core and the multi-tenant channel-based Broker"
	k apply -f "$(release_file "$EVENTING_URL/eventing-crds.yaml")"
	k wait crd/brokers.eventing.knative.dev crd/triggers.eventing.knative.dev --for=condition=Established --timeout=60s
	k apply -f "$(release_file "$EVENTING_URL/eventing-core.yaml")"
	k apply -f "$(release_file "$EVENTING_URL/mt-channel-broker.yaml")"
	wait_deployments knative-eventing

	step "eventing-natss $EVENTING_NATSS: the NatsJetStreamChannel (eventing-jsm.yaml)"
	k apply -f "$(release_file "$NATSS_URL/eventing-jsm.yaml")"
	k wait crd/natsjetstreamchannels.messaging.knative.dev --for=condition=Established --timeout=60s

	step "tickit platform (config/): namespace, NATS JetStream, MongoDB, Redis, Knative settings"
	# Server-side apply merges: it sets the keys written in config/ and leaves the other keys
	# of the ConfigMaps Knative's release installed (their _example) alone. A key removed from
	# config/ later is removed from the cluster too, as this field manager owned it.
	# config/ only (not -R): config/stripe-mock and config/secrets are applied by deploy.
	k apply --server-side --force-conflicts -f config/
	# config-nats is read only by the channel's dispatcher, from a mounted file at start
	# (eventing-natss pkg/channel/jetstream/dispatcher); its controller does not watch it and
	# creates the dispatcher with the first NatsJetStreamChannel (the Broker's, on deploy).
	# So only a re-run, after config/10-nats.yaml changed, has a dispatcher to restart.
	if [[ -n $(k get deployment --namespace knative-eventing -o name \
		--selector messaging.knative.dev/channel=nats-jetstream-channel,messaging.knative.dev/role=dispatcher) ]]; then
		k rollout restart deployment --namespace knative-eventing \
			--selector messaging.knative.dev/channel=nats-jetstream-channel,messaging.knative.dev/role=dispatcher
	fi
	wait_deployments knative-eventing
	k rollout status statefulset --namespace "$NAMESPACE" nats --timeout=300s
	k rollout status statefulset --namespace "$NAMESPACE" mongodb --timeout=300s
	wait_deployments "$NAMESPACE"

	step "ready: next, make deploy"
}

# secret_templates creates the Secrets of config/secrets/ that do not exist yet, so a
# second run never empties keys already filled.
secret_templates() {
	local file name
	for file in config/secrets/*.yaml; do
		name=$(k create --dry-run=client -o jsonpath='{.metadata.name}' -f "$file")
		if k get secret --namespace "$NAMESPACE" "$name" >/dev/null 2>&1; then
			echo "    secret $name exists: kept"
		else
			k create -f "$file"
		fi
	done
}

# secret_key NAME KEY: the key's current value in the cluster ("" when unset).
secret_key() {
	k get secret --namespace "$NAMESPACE" "$1" -o "jsonpath={.data.$2}" 2>/dev/null | base64 -d
}

# set_secret NAME KEY=VALUE...: replace the Secret's data.
set_secret() {
	local name=$1
	shift
	local args=()
	for kv in "$@"; do args+=(--from-literal="$kv"); done
	k create secret generic "$name" --namespace "$NAMESPACE" "${args[@]}" \
		--dry-run=client -o yaml | k apply -f -
}

# fill_secrets puts keys from the environment into the Secrets: JWT_KEY (a random key when
# neither the environment nor the cluster has one) and SENDGRID_API_KEY keep their value in
# the cluster when not given. Stripe: STRIPE_KEY (and STRIPE_PUBLISHABLE_KEY) given means
# api.stripe.com; not given means stripe-mock in the cluster (STRIPE_API_BASE), on every deploy.
fill_secrets() {
	step "secrets from the environment"
	secret_templates
	local jwt=${JWT_KEY:-$(secret_key tickit-jwt JWT_KEY)}
	if [[ -z $jwt ]]; then
		echo "    JWT_KEY: generating a random key"
		jwt=$(head -c 32 /dev/urandom | base64)
	fi
	set_secret tickit-jwt "JWT_KEY=$jwt"

	if [[ -n ${STRIPE_KEY:-} ]]; then
		echo "    STRIPE_KEY given: payments uses api.stripe.com"
		set_secret tickit-stripe "STRIPE_KEY=$STRIPE_KEY" "STRIPE_PUBLISHABLE_KEY=${STRIPE_PUBLISHABLE_KEY:-}" "STRIPE_API_BASE="
	else
		echo "    STRIPE_KEY not set: payments uses stripe-mock in the cluster ($STRIPE_MOCK_URL)"
		set_secret tickit-stripe "STRIPE_KEY=sk_test_stripe_mock" "STRIPE_PUBLISHABLE_KEY=" "STRIPE_API_BASE=$STRIPE_MOCK_URL"
	fi

	if [[ -n ${SENDGRID_API_KEY:-} ]]; then
		set_secret tickit-sendgrid "SENDGRID_API_KEY=$SENDGRID_API_KEY"
	elif [[ -z $(secret_key tickit-sendgrid SENDGRID_API_KEY) ]]; then
		echo "    SENDGRID_API_KEY not set: emails logs confirmations instead of sending them"
	fi
}

# node_platform: the kind node's OS/architecture, which every image must be built for
# (ko builds linux/amd64 unless told otherwise: ko v0.19.1 pkg/commands/resolver.go).
node_platform() {
	local arch
	arch=$(k get nodes -o jsonpath='{.items[0].status.nodeInfo.architecture}')
	[[ -n $arch ]] || die "no node answers on context $CONTEXT: run make cluster first"
	echo "linux/$arch"
}

# ko_env: ko loads images straight into the kind node (kind.local, no registry), built for the
# node's platform. ko refuses KO_DEFAULTPLATFORMS together with GOOS/GOARCH/GOARM set.
ko_env() {
	echo "KO_DOCKER_REPO=kind.local KIND_CLUSTER_NAME=$CLUSTER KO_DEFAULTPLATFORMS=$(node_platform)"
}

# ko_resolve FILE: the manifest with every ko:// image built and loaded into the node.
ko_resolve() {
	# shellcheck disable=SC2086 # KO_ENV is NAME=VALUE words for env
	env -u GOOS -u GOARCH -u GOARM $KO_ENV ko resolve -f "$1"
}

# secrets_checksum FILE sets CHECKSUM to the sha256 of the Secrets the Service in FILE reads
# (their names and data; each Secret is read once per run, after fill_secrets).
declare -A SECRET_DATA
secrets_checksum() {
	local name text=""
	for name in $(k create --dry-run=client -o jsonpath='{..secretKeyRef.name}' -f "$1" | tr ' ' '\n' | sort -u); do
		[[ -v SECRET_DATA[$name] ]] || SECRET_DATA[$name]=$(k get secret --namespace "$NAMESPACE" "$name" -o jsonpath='{.data}') ||
			die "no Secret $name in the cluster: run make deploy first"
		text+="$name ${SECRET_DATA[$name]}"$'\n'
	done
	CHECKSUM=$(printf '%s' "$text" | sha256sum | cut -d' ' -f1)
}

# apply_service FILE: build the Service's image, stamp its revision template with the checksum
# of the Secrets it reads (a changed key rolls a new revision), apply it.
apply_service() {
	local patch
	secrets_checksum "$1"
	patch="{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"$SECRETS_ANNOTATION\":\"$CHECKSUM\"}}}}}"
	ko_resolve "$1" | k patch --local -f - --type merge -p "$patch" -o yaml | k apply -f -
}

# stripe_mock: stripe-mock (the tool pinned in functions/go.mod, built by ko) with payments'
# fixtures, while no STRIPE_KEY is given; removed otherwise.
stripe_mock() {
	if [[ -n ${STRIPE_KEY:-} ]]; then
		k delete --ignore-not-found -f config/stripe-mock/
		return
	fi
	step "stripe-mock in the cluster (no STRIPE_KEY)"
	k create configmap stripe-fixtures --namespace "$NAMESPACE" \
		--from-file=functions/payments/testdata/stripe-fixtures.json --dry-run=client -o yaml | k apply -f -
	ko_resolve config/stripe-mock/stripe-mock.yaml | k apply -f -
	k rollout status deployment --namespace "$NAMESPACE" stripe-mock --timeout=300s
}

deploy() {
	require kubectl ko go make node npm sha256sum
	check_go
	check_node
	KO_ENV=$(ko_env)

	# functions/client embeds the UI's build; without it the cluster serves a "not built" page.
	step "web UI (make ui: npm ci and Vite, only when it changed)"
	make --no-print-directory ui

	fill_secrets
	stripe_mock

	# The order makes every first revision healthy: the Broker has an address before the
	# SinkBinding, which is Ready before the Services, so the webhook injects K_SINK into each
	# publisher as it is created; the Triggers come once their subscribers are Ready.
	step "the Broker, then the SinkBinding"
	k apply -f knative/eventing/10-broker.yaml
	k wait broker default --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s
	[[ -n $(k get broker default --namespace "$NAMESPACE" -o jsonpath='{.status.address.url}') ]] ||
		die "the Broker is Ready without an address"
	k apply -f knative/eventing/40-sinkbinding.yaml
	k wait sinkbinding publishers --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s

	step "build every function with ko for ${KO_ENV##*=}, apply its Service"
	local file
	for file in knative/eventing/20-dead-letters.yaml knative/services/*.yaml; do
		echo "    $file"
		apply_service "$file"
	done
	k wait ksvc --all --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s

	step "the Triggers and the PingSource"
	k apply $(printf -- '-f %s ' knative/eventing/3*-triggers-*.yaml) -f knative/eventing/50-pingsource.yaml
	k wait trigger --all --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s
	k wait pingsource expiration-tick --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s

	prune_images
	k get ksvc --namespace "$NAMESPACE"
	step "ready: http://client.$NAMESPACE.127.0.0.1.sslip.io/ (the web UI)"
}

# function NAME: build and roll out one function, as deploy does.
function_() {
	local name=${1:-} file
	[[ -n $name ]] || die "usage: hack/cluster.sh function NAME (one of knative/services)"
	file=$(ls knative/services/*-"$name".yaml 2>/dev/null) || die "no knative/services/*-$name.yaml"
	require kubectl ko go make node npm sha256sum
	check_go
	KO_ENV=$(ko_env)
	if [[ $name == client ]]; then
		step "web UI (make ui)"
		check_node
		make --no-print-directory ui
	fi
	step "build $name with ko for ${KO_ENV##*=}, apply $file"
	apply_service "$file"
	k wait ksvc "$name" --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s
	prune_images
}

# prune_images removes from the node the images ko loaded that no Revision or Deployment uses
# any more: each build loads a new one (kind.local/<name>:<digest>), which would pile up.
# Images of old revisions that Knative still keeps stay, so a rollback still starts.
prune_images() {
	step "remove unused ko images from the node"
	local used node image removed=0
	used=" $(k get revisions --all-namespaces -o jsonpath='{..image}' 2>/dev/null) $(k get deployments --namespace "$NAMESPACE" -o jsonpath='{..image}') "
	for node in $(kind get nodes --name "$CLUSTER"); do
		for image in $(docker exec "$node" crictl images | awk '$1 ~ /^kind\.local\// {print $1 ":" $2}'); do
			if [[ $used != *" $image "* ]]; then
				docker exec "$node" crictl rmi "$image" >/dev/null && removed=$((removed + 1))
			fi
		done
	done
	echo "    removed $removed"
}

undeploy() {
	require kubectl kind docker
	step "delete knative/ and stripe-mock: the Broker goes too, with its JetStream stream and any event not yet delivered"
	k delete --ignore-not-found -f knative/eventing -f knative/services -f config/stripe-mock/
	k delete --ignore-not-found configmap stripe-fixtures --namespace "$NAMESPACE"
	# Knative's revisions go with their Services, in the background.
	k wait revisions --all --namespace "$NAMESPACE" --for=delete --timeout=120s
	prune_images
	echo "    kept: config/ (NATS, MongoDB and Redis with their volumes, the Secrets, the dead letters)"
}

case ${1:-} in
create | deploy | undeploy) "$1" ;;
function) function_ "${2:-}" ;;
env)
	require kubectl
	echo "export $(ko_env)"
	;;
*)
	echo "usage: $0 create|deploy|function NAME|env|undeploy" >&2
	exit 2
	;;
esac
