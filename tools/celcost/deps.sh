#!/bin/sh
# Vendors celcost's dependencies from bare git mirrors (as the project's `fetch` tool brings
# them: MIRRORS/<owner>+<name>/repo) into ./vendor (git-ignored), at the versions go.mod names.
# Usage: tools/celcost/deps.sh [MIRRORS]   (default /work/.mirror), then in tools/celcost:
#   GOFLAGS=-mod=vendor go run . ../../charts/longhorn-bi-webhook/files/policy-validations.json
set -eu
MIRRORS=${1:-/work/.mirror}
cd "$(dirname "$0")"
rm -rf vendor && mkdir vendor
: > vendor/modules.txt
# module path, version, mirror, commit or tag, folder of the module in the repository
while read -r module version mirror ref folder; do
	dest="vendor/$module"
	mkdir -p "$dest"
	strip=0
	[ "$folder" = . ] || strip=$(echo "$folder" | awk -F/ '{print NF}')
	# Mirrors may lack their largest files: the packages celcost does not build are left out
	# (git still names the missing blobs on stderr, and succeeds).
	git -C "$MIRRORS/$mirror/repo" archive "$ref" "$folder" ':!collate' ':!date' | tar -x -C "$dest" \
		--strip-components="$strip"
	# The module's language version: vendor/modules.txt carries it to the compiler.
	go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$dest/go.mod")
	rm -f "$dest/go.mod" "$dest/go.sum"
	find "$dest" -name '*_test.go' -delete
	printf '# %s %s\n## explicit; go %s\n' "$module" "$version" "$go" >> vendor/modules.txt
	(cd vendor && find "$module" -name '*.go' -exec dirname {} \; | sort -u \
		| grep -v -e /testdata -e /cmd/ || true) >> vendor/modules.txt
done <<LIST
github.com/antlr/antlr4/runtime/Go/antlr/v4 v4.0.0-20230305170008-8188dc5388df antlr+antlr4 8188dc5388df runtime/Go/antlr/v4
github.com/google/cel-go v0.17.8 google+cel-go v0.17.8 .
github.com/stoewer/go-strcase v1.2.0 stoewer+go-strcase v1.2.0 .
golang.org/x/exp v0.0.0-20220722155223-a9213eeb770e golang+exp a9213eeb770e .
golang.org/x/text v0.8.0 golang+text v0.8.0 .
google.golang.org/genproto/googleapis/api v0.0.0-20230525234035-dd9d682886f9 googleapis+go-genproto dd9d682886f9 googleapis/api
google.golang.org/genproto/googleapis/rpc v0.0.0-20230525234030-28d5490b6b19 googleapis+go-genproto 28d5490b6b19 googleapis/rpc
google.golang.org/protobuf v1.30.0 protocolbuffers+protobuf-go v1.30.0 .
LIST
