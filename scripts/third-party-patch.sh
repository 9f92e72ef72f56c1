#!/usr/bin/env bash
# dkimd's patches of third-party Go modules: NAME is go-smtp
# (github.com/emersion/go-smtp, third_party/go-smtp/DKIMD.md) or go-milter
# (github.com/d--j/go-milter, third_party/go-milter/DKIMD.md).
#
# third_party/NAME is upstream NAME, at the version go.mod requires, with
# third_party/NAME.patch applied; the build uses it through the `replace`
# in go.mod. This script keeps the two in step:
#
#   scripts/third-party-patch.sh NAME check
#       applies the patch to a fresh copy of upstream (from the module
#       cache; `go mod download` fetches it if missing) and fails unless the
#       result is third_party/NAME exactly. scripts/test.sh runs it.
#   scripts/third-party-patch.sh NAME diff
#       after editing third_party/NAME, writes third_party/NAME.patch
#       again from upstream and the edited copy.
#   scripts/third-party-patch.sh NAME update VERSION
#       applies the patch to upstream VERSION (e.g. v0.26.0), replaces
#       third_party/NAME with the result, points go.mod's require at
#       VERSION, writes the patch again (its line numbers), and runs the
#       module's own tests (with, for go-smtp, the patch's equivalence
#       tests, dkimd_patch_test.go). If the patch does not apply, nothing is
#       changed and the rejected hunks are shown.
#
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	echo "usage: $0 go-smtp|go-milter check | diff | update VERSION" >&2
	exit 2
}

name=${1:-}
# pkgs are the module's packages its tests run on; vetflags what go vet
# needs (go-milter's own tests have unkeyed struct literals); testflags
# how go test runs them (go-milter v0.10.2's own tests race in its client
# and test harness, TestServer_Shutdown among them, unpatched too).
vetflags= testflags=-race
case "$name" in
go-smtp) mod=github.com/emersion/go-smtp pkgs=. ;;
go-milter) mod=github.com/d--j/go-milter pkgs=./... vetflags=-composites=false testflags= ;;
*) usage ;;
esac
shift
dir=third_party/$name
patchfile=third_party/$name.patch

# required prints the module's version go.mod requires.
required() {
	go list -m -f '{{.Version}}' "$mod"
}

# upstream VERSION prints the module's directory in the module cache,
# downloading it only when it is not there (so check works offline).
upstream() {
	local v=$1 cache d
	cache=$(go env GOMODCACHE)
	d="$cache/$mod@$v"
	if [ ! -f "$d/go.mod" ]; then
		d=$(go mod download -json "$mod@$v" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	fi
	if [ -z "$d" ] || [ ! -f "$d/go.mod" ]; then
		echo "$0: $mod@$v is not in the module cache and could not be downloaded" >&2
		exit 1
	fi
	echo "$d"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fresh VERSION DEST copies upstream VERSION to DEST, writable.
fresh() {
	mkdir -p "$2"
	cp -R "$(upstream "$1")/." "$2"
	chmod -R u+w "$2"
}

# apply DEST applies the patch to DEST, failing on any rejected hunk.
apply() {
	if ! patch -s -p1 -d "$1" --no-backup-if-mismatch -r "$tmp/rejects" <"$patchfile" >"$tmp/patch.log" 2>&1; then
		cat "$tmp/patch.log" >&2
		[ -s "$tmp/rejects" ] && cat "$tmp/rejects" >&2
		return 1
	fi
	# patch is quiet about hunks it placed with fuzz; a fuzzy hunk may sit
	# in the wrong place, so say so.
	if grep -q . "$tmp/patch.log"; then cat "$tmp/patch.log" >&2; fi
}

# writepatch VERSION writes the patch from upstream VERSION to $dir.
writepatch() {
	fresh "$1" "$tmp/p/a"
	mkdir -p "$tmp/p/b"
	cp -R "$dir/." "$tmp/p/b"
	{
		echo "dkimd's patch of $mod $1: see $dir/DKIMD.md."
		echo "Written by scripts/third-party-patch.sh $name diff; applied with patch -p1."
		echo
		# No timestamps, so that writing it again changes nothing.
		(cd "$tmp/p" && diff -ruN a b || [ $? = 1 ]) | sed -E 's/^((---|\+\+\+) [^\t]+)\t.*$/\1/'
	} >"$patchfile.new"
	mv "$patchfile.new" "$patchfile"
	rm -rf "$tmp/p"
}

cmd=${1:-}
case "$cmd" in
check)
	[ $# = 1 ] || usage
	v=$(required)
	fresh "$v" "$tmp/up"
	apply "$tmp/up" || { echo "$0: $patchfile does not apply to $mod $v" >&2; exit 1; }
	if ! diff -r "$tmp/up" "$dir" >"$tmp/diff"; then
		echo "$0: $dir is not $mod $v with $patchfile applied:" >&2
		head -n 100 "$tmp/diff" >&2
		echo "(after editing $dir, run: $0 $name diff)" >&2
		exit 1
	fi
	echo "$dir is $mod $v with $patchfile applied"
	;;
diff)
	[ $# = 1 ] || usage
	writepatch "$(required)"
	echo "wrote $patchfile"
	;;
update)
	[ $# = 2 ] || usage
	v=$2
	fresh "$v" "$tmp/up"
	if ! apply "$tmp/up"; then
		echo "$0: $patchfile does not apply to $mod $v; nothing changed" >&2
		exit 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	cp -R "$tmp/up/." "$dir"
	go mod edit -require="$mod@$v"
	writepatch "$v"
	echo "$dir is now $mod $v with the patch; testing it" >&2
	(cd "$dir" && go vet $vetflags $pkgs && go test $testflags -count=1 $pkgs)
	go build ./...
	echo "done: review git diff, then run scripts/test.sh (see $dir/DKIMD.md for what uses $name and what to check by hand)"
	;;
*)
	usage
	;;
esac
