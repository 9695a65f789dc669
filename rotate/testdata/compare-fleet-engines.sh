#!/bin/sh
# compare-fleet-engines.sh runs BenchmarkFleetRotation (rotate/fleet_bench_test.go)
# against this tree's engine and, in the same run, against an earlier engine
# (default: 0f73be5, the engine before issue 11) on this tree's testbed, so that
# both meet the same AWS-like Lambda: 1.5 s updates and the real request quotas.
#
#   rotate/testdata/compare-fleet-engines.sh            # fleets 1, 10, 77, 200; 3 rotations each
#   FLEETS=77 BENCHTIME=1x rotate/testdata/compare-fleet-engines.sh
#   OLD_BENCHTIME=1x rotate/testdata/compare-fleet-engines.sh   # fewer rotations of the old engine
#
# The benchmark measures only what the testbed saw (requests, 429s, when each
# update finished) and the audit trail, so it runs unchanged on both engines.
set -eu
old=${OLD:-0f73be5}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
cleanup() {
	git -C "$root" worktree remove --force "$tmp/old" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
git -C "$root" worktree add -q --detach "$tmp/old" "$old"
rm -rf "$tmp/old/internal/testbed"
cp -r "$root/internal/testbed" "$tmp/old/internal/testbed"
cp "$root/go.mod" "$root/go.sum" "$tmp/old/"
cp "$root/rotate/fleet_bench_test.go" "$tmp/old/rotate/"

bench() {
	echo "== $1 engine ($(git -C "$2" rev-parse --short HEAD)$3)"
	(cd "$2" && VALINE_BENCH_FLEETS=${FLEETS:-1,10,77,200} go test -run '^$' -bench FleetRotation \
		-benchtime "$4" -timeout 180m ./rotate) || echo "== $1 engine: the benchmark failed"
}
dirty=""
[ -n "$(git -C "$root" status --porcelain)" ] && dirty=", with uncommitted changes"
bench new "$root" "$dirty" "${BENCHTIME:-3x}"
bench old "$tmp/old" ", this tree's testbed" "${OLD_BENCHTIME:-${BENCHTIME:-3x}}"
