#!/usr/bin/env bash
# The collector before and after a change, side by side in one run on one machine:
# builds REV (default: 7f44853, the last commit with one store per backend) in a
# throwaway worktree and this checkout, both in release mode, then runs each one's
# own benchmarks with the same arguments, part by part, the two builds back to back:
#  0. `sverka-loadgen instructions` (this checkout's, against each build's collector):
#     instructions per check-in and per full report under valgrind's callgrind, with
#     1 and 16 requests in flight, ROUNDS (default 2) times alternating; unlike the CPU
#     times of part 1, these counts do not move with the machine's load;
#  1. `sverka-loadgen`: 1,000 agents against the collector on SQLite (full reports and
#     check-ins per second, paced latency);
#  2. `sverka-loadgen region` on SQLite and on PostgreSQL: boot storm, one round of
#     hourly check-ins, the region's coverage query;
#  3. `sverka-dashboard-bench` on SQLite and on PostgreSQL: the dashboard's pages.
# Sizes: HOSTS (default 20000) PCs in SCHOOLS (default 200) schools for parts 2 and 3;
# SECONDS_PER_PHASE (default 10) for part 1. The outputs go to target/before-after/.
# PostgreSQL: SVERKA_TEST_POSTGRES (default postgres://127.0.0.1:5432/test) must allow
# creating databases. BEFORE_WORKTREE names a checkout of REV to build instead of a
# throwaway one (its target/ is reused).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-7f44853}
hosts=${HOSTS:-20000}
schools=${SCHOOLS:-200}
seconds=${SECONDS_PER_PHASE:-10}
out=target/before-after
mkdir -p "$out"
rm -f "$out"/*-instructions-*.txt
if [ -n "${BEFORE_WORKTREE:-}" ]; then
    before=$BEFORE_WORKTREE
else
    before=$(mktemp -d)
    trap 'git worktree remove --force "$before" >/dev/null 2>&1 || true' EXIT
    git worktree add --detach "$before" "$rev" >/dev/null
fi
build() { (cd "$1" && cargo build --release --locked -p sverka-collector -p sverka-loadgen); }
build "$before"
build .

# Each part runs the two builds back to back (before, then after), so a change in the
# machine's load during the run falls on both sides alike.
both() {
    local part=$1
    shift
    for name in before after; do
        local bin=target/release
        [ "$name" = before ] && bin=$before/target/release
        echo "== $name: $part"
        # A part that fails (requests refused or reset) is reported and the run goes on.
        "$bin/$1" "${@:2}" 2>&1 | grep -v '^request failed' | tee "$out/$name-$part.txt" \
            || echo "== $name: $part failed (see above)"
    done
}
for round in $(seq "${ROUNDS:-2}"); do
    for concurrency in 1 16; do
        for name in before after; do
            collector=target/release/sverka-collector
            [ "$name" = before ] && collector=$before/target/release/sverka-collector
            echo "== $name: instructions, $concurrency in flight, round $round"
            target/release/sverka-loadgen --collector "$collector" instructions --hosts 20 \
                --requests 500 --concurrency "$concurrency" 2>&1 \
                | tee -a "$out/$name-instructions-$concurrency.txt" \
                || echo "== $name: instructions failed (see above)"
        done
    done
done
both load sverka-loadgen --hosts 1000 --concurrency 1000 --seconds "$seconds"
for database in sqlite postgres; do
    both "region-$database" sverka-loadgen region --database "$database" --hosts "$hosts" \
        --schools "$schools"
    both "dashboard-$database" sverka-dashboard-bench --database "$database" --hosts "$hosts" \
        --schools "$schools" --municipalities $(((schools + 39) / 40))
done
echo "outputs: $out/{before,after}-*.txt"
