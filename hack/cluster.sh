#!/usr/bin/env bash
# tickit on a kind cluster: create it with Knative, deploy the app, remove it.
#   hack/cluster.sh create     kind cluster + Knative Serving/Kourier + Eventing + NATS channel + config/
#   hack/cluster.sh deploy     fill the Secrets from the environment, build with ko, apply knative/
#                              (knative/eventing and knative/services; not knative/local, the Go module)
#   hack/cluster.sh undeploy   delete what deploy applied
# (make cluster / make deploy / make undeploy call these.)
set -euo pipefail

# Versions: the one place they are pinned. Knative 1.23 is what the Go API types in
# knative/local (knative.dev/serving and eventing v0.50.0) validate the manifests against.
KNATIVE_SERVING=knative-v1.23.0
KNATIVE_KOURIER=knative-v1.23.0
KNATIVE_EVENTING=knative-v1.23.0
EVENTING_NATSS=knative-v1.23.0

SERVING_URL=https://github.com/knative/serving/releases/download/${KNATIVE_SERVING}
KOURIER_URL=https://github.com/knative/net-kourier/releases/download/${KNATIVE_KOURIER}
EVENTING_URL=https://github.com/knative/eventing/releases/download/${KNATIVE_EVENTING}
NATSS_URL=https://github.com/knative-extensions/eventing-natss/releases/download/${EVENTING_NATSS}

CLUSTER=tickit                # kind-config.yaml names the cluster the same
NAMESPACE=tickit
KOURIER_NODE_PORT=31080       # kind-config.yaml maps it to host port 80

cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# wait_deployments NAMESPACE: until every deployment there is available.
wait_deployments() {
	echo "    waiting for the deployments in $1"
	kubectl wait deployment --all --namespace "$1" --for=condition=Available --timeout=300s
}

require() {
	local missing=()
	for tool in "$@"; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	if ((${#missing[@]})); then
		echo "missing: ${missing[*]} (see README: Deploy to kind)" >&2
		exit 1
	fi
}

create() {
	require docker kind kubectl

	step "kind cluster '$CLUSTER' (kind-config.yaml)"
	if kind get clusters | grep -qx "$CLUSTER"; then
		echo "    already exists: reusing it"
	else
		kind create cluster --config kind-config.yaml
	fi
	kubectl config use-context "kind-$CLUSTER"

	step "Knative Serving $KNATIVE_SERVING"
	kubectl apply -f "$SERVING_URL/serving-crds.yaml"
	kubectl wait crd/services.serving.knative.dev --for=condition=Established --timeout=60s
	kubectl apply -f "$SERVING_URL/serving-core.yaml"
	wait_deployments knative-serving

	step "Kourier $KNATIVE_KOURIER, on NodePort $KOURIER_NODE_PORT"
	kubectl apply -f "$KOURIER_URL/kourier.yaml"
	# kind has no load balancer: publish Kourier's HTTP port on the node, which
	# kind-config.yaml maps to the host's port 80.
	kubectl patch service kourier --namespace kourier-system \
		--patch "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":$KOURIER_NODE_PORT}]}}"
	wait_deployments kourier-system
	wait_deployments knative-serving

	step "Knative Eventing $KNATIVE_EVENTING: core and the multi-tenant channel-based Broker"
	kubectl apply -f "$EVENTING_URL/eventing-crds.yaml"
	kubectl wait crd/brokers.eventing.knative.dev crd/triggers.eventing.knative.dev --for=condition=Established --timeout=60s
	kubectl apply -f "$EVENTING_URL/eventing-core.yaml"
	kubectl apply -f "$EVENTING_URL/mt-channel-broker.yaml"
	wait_deployments knative-eventing

	step "eventing-natss $EVENTING_NATSS: the NatsJetStreamChannel"
	kubectl apply -f "$NATSS_URL/eventing-jsm.yaml"
	kubectl wait crd/natsjetstreamchannels.messaging.knative.dev --for=condition=Established --timeout=60s

	step "tickit platform (config/): namespace, NATS JetStream, MongoDB, Redis, Knative settings"
	# Server-side apply owns only the keys written in config/, so the Knative ConfigMaps
	# keep the rest of what their release installed.
	kubectl apply --server-side --force-conflicts -f config/
	secret_templates
	# The NATS channel's controller and dispatcher read config-nats at start.
	kubectl rollout restart deployment --namespace knative-eventing \
		--selector messaging.knative.dev/channel=nats-jetstream-channel
	wait_deployments knative-eventing
	kubectl rollout status statefulset --namespace "$NAMESPACE" nats --timeout=300s
	kubectl rollout status statefulset --namespace "$NAMESPACE" mongodb --timeout=300s
	wait_deployments "$NAMESPACE"
	fill_secrets

	step "ready: next, make deploy"
}

# secret_templates creates the Secrets of config/secrets/ that do not exist yet, so a
# second run never empties keys already filled.
secret_templates() {
	local file name
	for file in config/secrets/*.yaml; do
		name=$(kubectl create --dry-run=client -o jsonpath='{.metadata.name}' -f "$file")
		if kubectl get secret --namespace "$NAMESPACE" "$name" >/dev/null 2>&1; then
			echo "    secret $name exists: kept"
		else
			kubectl create -f "$file"
		fi
	done
}

# secret_key NAME KEY: the key's current value in the cluster ("" when unset).
secret_key() {
	kubectl get secret --namespace "$NAMESPACE" "$1" -o "jsonpath={.data.$2}" 2>/dev/null | base64 -d
}

# set_secret NAME KEY=VALUE...: replace the Secret's data.
set_secret() {
	local name=$1
	shift
	local args=()
	for kv in "$@"; do args+=(--from-literal="$kv"); done
	kubectl create secret generic "$name" --namespace "$NAMESPACE" "${args[@]}" \
		--dry-run=client -o yaml | kubectl apply -f -
}

# fill_secrets puts keys from the environment into the Secrets: JWT_KEY (a random key when
# neither the environment nor the cluster has one), STRIPE_KEY, STRIPE_PUBLISHABLE_KEY,
# SENDGRID_API_KEY. Keys not given keep their value in the cluster.
fill_secrets() {
	step "secrets from the environment"
	local jwt=${JWT_KEY:-$(secret_key tickit-jwt JWT_KEY)}
	if [[ -z $jwt ]]; then
		echo "    JWT_KEY: generating a random key"
		jwt=$(head -c 32 /dev/urandom | base64)
	fi
	set_secret tickit-jwt "JWT_KEY=$jwt"

	if [[ -n ${STRIPE_KEY:-} ]]; then
		set_secret tickit-stripe "STRIPE_KEY=$STRIPE_KEY" \
			"STRIPE_PUBLISHABLE_KEY=${STRIPE_PUBLISHABLE_KEY:-$(secret_key tickit-stripe STRIPE_PUBLISHABLE_KEY)}"
	elif [[ -z $(secret_key tickit-stripe STRIPE_KEY) ]]; then
		echo "    STRIPE_KEY is not set: payments will not start (export STRIPE_KEY=sk_test_... and re-run make deploy)"
	fi

	if [[ -n ${SENDGRID_API_KEY:-} ]]; then
		set_secret tickit-sendgrid "SENDGRID_API_KEY=$SENDGRID_API_KEY"
	elif [[ -z $(secret_key tickit-sendgrid SENDGRID_API_KEY) ]]; then
		echo "    SENDGRID_API_KEY is not set: emails logs confirmations instead of sending them"
	fi
}

deploy() {
	require kubectl ko
	kubectl config use-context "kind-$CLUSTER"
	fill_secrets

	step "build every function with ko, load the images into kind, apply knative/"
	# kind.local: ko loads the images straight into the kind nodes, no registry needed.
	# knative/eventing goes first so the SinkBinding already selects the publishers when
	# their Services are created (their first revision starts with K_SINK).
	KO_DOCKER_REPO=kind.local KIND_CLUSTER_NAME=$CLUSTER ko apply -R -f knative/eventing -f knative/services

	step "waiting for the Services, the Broker and the Triggers"
	kubectl wait ksvc --all --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s
	kubectl wait broker default --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s
	kubectl wait trigger --all --namespace "$NAMESPACE" --for=condition=Ready --timeout=300s
	kubectl get ksvc --namespace "$NAMESPACE"
}

undeploy() {
	require kubectl
	kubectl config use-context "kind-$CLUSTER"
	step "delete knative/services and knative/eventing (config/ and the data stay)"
	kubectl delete --ignore-not-found -R -f knative/services -f knative/eventing
}

case ${1:-} in
create | deploy | undeploy) "$1" ;;
*)
	echo "usage: $0 create|deploy|undeploy" >&2
	exit 2
	;;
esac
