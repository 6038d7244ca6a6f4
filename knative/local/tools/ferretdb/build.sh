#!/usr/bin/env bash
# Builds the Mongo-wire test server (main.go here: FerretDB with its SQLite backend, pinned in
# go.mod) once, and prints the path of the binary. It is kept in
# .tickit/tools/ferretdb-<hash of this module's files>/, so a change to main.go, go.mod or go.sum
# builds it again; a lock keeps test processes that start together from building it twice.
# Cold: about 1 min on 2 cores (Go's build cache makes a rebuild a link step).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
hash=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
dir=$root/.tickit/tools/ferretdb-$hash
if [[ ! -x $dir/ferretdb ]]; then
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	flock 9
	if [[ ! -x $dir/ferretdb ]]; then
		echo "building the FerretDB test server into $dir (about 1 min the first time)" >&2
		(cd "$here" && GOWORK=off GOFLAGS=-mod=readonly go build -trimpath -ldflags '-s -w' -o "$dir/ferretdb.tmp" .) >&2
		mv "$dir/ferretdb.tmp" "$dir/ferretdb"
	fi
fi
echo "$dir/ferretdb"
