#!/usr/bin/env bash
# The collector's load benchmark, in two parts:
#  1. 1,000 simulated agents with 300-program inventories against a real collector on
#     SQLite, beside a trivial axum handler measured the same way, then a boot storm of
#     100,000 hosts for peak memory (`sverka-loadgen`).
#  2. A whole region on each backend, side by side (`sverka-loadgen region`): 100,000
#     PCs in 1,000 schools; the boot storm, one round of hourly check-ins (collector and
#     database CPU), the region's coverage query, database size per host; on
#     PostgreSQL also 1, 2 and 4 collector processes on one database, load spread over
#     their URLs round-robin as a load balancer would.
# Part 1 runs twice, side by side: the collector of this machine's glibc build (the
# figure before) and the static musl build the Linux packages ship (mimalloc in both).
# PostgreSQL: SVERKA_TEST_POSTGRES (default postgres://127.0.0.1:5432/test) must allow
# creating a database; the benchmark makes its own and drops it. Started here when it
# is installed but not running. REGION_HOSTS, REGION_SCHOOLS, COLLECTORS and
# MEMORY_HOSTS change the sizes; SKIP_BASELINE=1 runs only part 2, SKIP_REGION=1 only
# part 1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sverka-collector -p sverka-loadgen
musl=x86_64-unknown-linux-musl
if [ -z "${SKIP_BASELINE:-}" ]; then
    command -v musl-gcc >/dev/null || { echo "musl-gcc is missing: apt-get install musl-tools" >&2; exit 1; }
    rustup target list --installed | grep -qx "$musl" || rustup target add "$musl"
    CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$musl" \
        -p sverka-collector --bin sverka-collector
fi

if [ -z "${SKIP_BASELINE:-}" ]; then
    echo "== part 1: sverka-collector on SQLite beside a trivial axum handler (glibc build, before)"
    target/release/sverka-loadgen --hosts 1000 --concurrency 1000 --seconds 10 \
        --memory-hosts "${MEMORY_HOSTS:-100000}" "$@"
    echo "== part 1 again: the static musl build of sverka-collector (shipped)"
    target/release/sverka-loadgen --hosts 1000 --concurrency 1000 --seconds 10 \
        --memory-hosts "${MEMORY_HOSTS:-100000}" \
        --collector "target/$musl/release/sverka-collector" "$@"
fi

if [ -z "${SVERKA_TEST_POSTGRES:-}" ] && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

[ -z "${SKIP_REGION:-}" ] || exit 0

hosts=${REGION_HOSTS:-100000}
schools=${REGION_SCHOOLS:-1000}
echo "== part 2: a region of $hosts PCs in $schools schools, SQLite and PostgreSQL"
target/release/sverka-loadgen region --database sqlite --hosts "$hosts" --schools "$schools"
target/release/sverka-loadgen region --database postgres --hosts "$hosts" --schools "$schools" \
    --collectors "${COLLECTORS:-1,2,4}"
