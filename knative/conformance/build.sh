#!/usr/bin/env bash
# Builds what `make conformance` runs, once: etcd, kube-apiserver, Knative's own commands
# and nats-server, from the pinned Go modules under tools/, into
# .tickit/conformance/bin/<what>-<version>/; and eventing-natss's JetStream channel (webhook,
# controller, dispatcher) from the source snapshot in ../shared/third_party (or
# $TICKIT_THIRD_PARTY), into bin/eventing-natss-<commit>-<sha256 prefix>/ (a changed snapshot
# is another directory, so it builds again), linked as bin/eventing-natss.
# A directory that holds every binary is reused as is, so only the first run pays
# (kube-apiserver alone takes ~8 min and 2.7 GiB on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CONFORMANCE_BIN:-$root/.tickit/conformance/bin}
export GOWORK=off GOFLAGS=-mod=readonly

ETCD=v3.7.0 KUBE=v1.37.2 KNATIVE=v0.50.0 NATS=v2.15.2

step() { printf '[build] %s\n' "$*"; }
have() { local d=$1; shift; for f in "$@"; do [[ -x $d/$f ]] || return 1; done; }

# etcd's go.mod has replace directives, so `go install @version` is refused: build the
# main package from a module that requires it.
d=$bin/etcd-$ETCD
if ! have "$d" etcd; then
	step "etcd $ETCD (about 1 min cold)"
	(cd "$here/tools/etcd" && go build -ldflags '-s -w' -o "$d/etcd" go.etcd.io/etcd/server/v3)
fi

# kube-apiserver: the version ldflags make it report v1.37.2 (else v0.0.0-master, which
# Knative's minimum-version check refuses).
d=$bin/kube-$KUBE
if ! have "$d" kube-apiserver; then
	step "kube-apiserver $KUBE (about 8 min and 2.7 GiB cold)"
	minor=${KUBE#v1.}; minor=${minor%%.*}
	ld='-s -w'
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=$KUBE -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	(cd "$here/tools/kube" && go build -ldflags "$ld" -o "$d/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
fi

# Knative's commands. One patch, applied to a copy of knative.dev/pkg in the build
# directory (Go refuses overlays inside the module cache): every sharedmain process
# serves health probes on :8080 and exits when the port is taken; on one host they all
# would, so the patch reads the port from KNATIVE_HEALTH_PROBES_PORT.
d=$bin/knative-$KNATIVE
cmds=(controller mtchannel_broker ingress filter mtping eventing-webhook serving-webhook)
if ! have "$d" "${cmds[@]}"; then
	step "Knative eventing and serving $KNATIVE commands (about 5 min cold)"
	src=$root/.tickit/conformance/build/knative-$KNATIVE
	rm -rf "$src" && mkdir -p "$src"
	pkg=$(cd "$here/tools/knative" && go list -m -f '{{.Dir}}' knative.dev/pkg)
	cp -r "$pkg" "$src/knative-pkg" && chmod -R u+w "$src/knative-pkg"
	cp "$here/tools/knative/health_check.go.patched" "$src/knative-pkg/injection/health_check.go"
	sed 's#^module .*#module tickit.local/conformance-build#' "$here/tools/knative/go.mod" > "$src/go.mod"
	printf '\nreplace knative.dev/pkg => ./knative-pkg\n' >> "$src/go.mod"
	cp "$here/tools/knative/go.sum" "$src/go.sum"
	cd "$src"
	go build -ldflags '-s -w' -o "$d/" knative.dev/eventing/cmd/controller knative.dev/eventing/cmd/mtchannel_broker \
		knative.dev/eventing/cmd/broker/ingress knative.dev/eventing/cmd/broker/filter knative.dev/eventing/cmd/mtping
	go build -ldflags '-s -w' -o "$d/eventing-webhook" knative.dev/eventing/cmd/webhook
	go build -ldflags '-s -w' -o "$d/serving-webhook" knative.dev/serving/cmd/webhook
fi
# nats-server, the JetStream the NatsJetStreamChannel keeps its streams in.
d=$bin/nats-server-$NATS
if ! have "$d" nats-server; then
	step "nats-server $NATS (about 2 min cold)"
	(cd "$here/tools/nats" && go build -ldflags '-s -w' -o "$d/nats-server" github.com/nats-io/nats-server/v2)
fi

# eventing-natss is not served by the module proxy: its source snapshot ships vendor/ and
# builds offline. Two patches, applied to the extracted copy and printed by the harness:
# the health-probe port (as for Knative's commands above; its vendored knative.dev/pkg
# file is the same one), and the dispatcher reads config-nats from $CONFIG_NATS_DIR when set
# instead of the pod's volume mount /etc/config-nats.
third=${TICKIT_THIRD_PARTY:-$root/../shared/third_party}
shopt -s nullglob
snaps=("$third"/eventing-natss-*.tar.gz)
shopt -u nullglob
if (( ${#snaps[@]} != 1 )); then
	echo "build.sh: want exactly one eventing-natss-<commit>.tar.gz in $third (set TICKIT_THIRD_PARTY), found ${#snaps[@]}" >&2
	exit 1
fi
snap=${snaps[0]}
commit=$(basename "$snap" .tar.gz); commit=${commit#eventing-natss-}
sum=$(sha256sum "$snap" | cut -d' ' -f1)
d=$bin/eventing-natss-$commit-${sum:0:12}
if ! have "$d" webhook controller dispatcher || [[ ! -f $d/SNAPSHOT ]]; then
	step "eventing-natss $commit (webhook, JetStream controller and dispatcher; about 1.5 min warm)"
	src=$root/.tickit/conformance/build/eventing-natss-$commit-${sum:0:12}
	rm -rf "$src" "$d" && mkdir -p "$src"
	tar xzf "$snap" -C "$src"
	src=$src/eventing-natss
	cp "$here/tools/knative/health_check.go.patched" "$src/vendor/knative.dev/pkg/injection/health_check.go"
	sed -i 's#fsloader.WithLoader(ctx, configmap.Load)#fsloader.WithLoader(ctx, func(dir string) (map[string]string, error) { if d := os.Getenv("CONFIG_NATS_DIR"); d != "" { dir = d }; return configmap.Load(dir) })#' \
		"$src/cmd/jetstream/dispatcher/main.go"
	grep -q CONFIG_NATS_DIR "$src/cmd/jetstream/dispatcher/main.go" || { echo "build.sh: the dispatcher patch did not apply" >&2; exit 1; }
	(cd "$src" && go build -mod=vendor -ldflags '-s -w' -o "$d/" ./cmd/webhook ./cmd/jetstream/controller ./cmd/jetstream/dispatcher)
	mkdir -p "$d/config" && cp -r "$src/config/webhook" "$src/config/jetstream" "$d/config/"
	printf 'snapshot %s\ncommit %s\nsha256 %s\n' "$(basename "$snap")" "$commit" "$sum" > "$d/SNAPSHOT"
fi
ln -sfn "$(basename "$d")" "$bin/eventing-natss"
step "binaries ready in $bin"
