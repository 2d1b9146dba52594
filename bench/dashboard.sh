#!/usr/bin/env bash
# The dashboard's benchmark: 100,000 PCs in 1,000 schools (20 municipalities) written
# through the collector's store, then the real collector timed on its main pages and
# the region's weekly XLSX, beside a static file from the same server. Prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sverka-collector -p sverka-loadgen
exec target/release/sverka-dashboard-bench "$@"
