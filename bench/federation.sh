#!/usr/bin/env bash
# Federation's figures (issue 21): a federal collector receiving one weekly round from
# 85 regional collectors, each of 25 municipalities and 1,000 schools of 100 PCs, over
# HTTP; the federal overview page beside a static file; a municipal collector's bytes
# per week. Extra arguments go to the benchmark (`--database postgres`, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sverka-collector -p sverka-loadgen
exec target/release/sverka-dashboard-bench --federated-regions 85 --schools 1000 \
    --municipalities 25 --hosts 100000 --runs 10 "$@"
