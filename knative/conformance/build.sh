#!/usr/bin/env bash
# Builds what `make conformance` runs, once: etcd, kube-apiserver and Knative's own
# commands, from the pinned Go modules under tools/, into .tickit/conformance/bin/<what>-<version>/.
# A directory that holds every binary is reused as is, so only the first run pays
# (kube-apiserver alone takes ~8 min and 2.7 GiB on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CONFORMANCE_BIN:-$root/.tickit/conformance/bin}
export GOWORK=off GOFLAGS=-mod=readonly

ETCD=v3.7.0 KUBE=v1.37.2 KNATIVE=v0.50.0

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
cmds=(controller mtchannel_broker ingress filter channel_controller channel_dispatcher mtping eventing-webhook serving-webhook)
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
		knative.dev/eventing/cmd/broker/ingress knative.dev/eventing/cmd/broker/filter \
		knative.dev/eventing/cmd/in_memory/channel_controller knative.dev/eventing/cmd/in_memory/channel_dispatcher \
		knative.dev/eventing/cmd/mtping
	go build -ldflags '-s -w' -o "$d/eventing-webhook" knative.dev/eventing/cmd/webhook
	go build -ldflags '-s -w' -o "$d/serving-webhook" knative.dev/serving/cmd/webhook
fi
step "binaries ready in $bin"
