#!/usr/bin/env bash
# The collector's load benchmark: 1,000 simulated agents with 300-program inventories
# against a real collector on SQLite, beside a trivial axum handler measured the same
# way, then a boot storm of 100,000 hosts for peak memory. Prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sverka-collector -p sverka-loadgen
exec target/release/sverka-loadgen --hosts 1000 --concurrency 1000 --seconds 10 \
    --memory-hosts "${MEMORY_HOSTS:-100000}" "$@"
