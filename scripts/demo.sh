#!/usr/bin/env bash
# The main job on one machine: builds both programs, starts a collector on the
# embedded default (an SQLite file in its data folder), creates a demo region,
# municipality and school with an enrollment secret when there are no organizations
# yet, enrolls this PC, sends its report, and shows it arriving: coverage and
# violations as the municipal office would see them. The collector keeps running
# until Ctrl-C (set SVERKA_DEMO_EXIT=1 to stop after the figures).
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${SVERKA_DEMO_LISTEN:-127.0.0.1:8440}"
cargo build --release --locked --bin sverka-collector --bin sverka-agent
collector=target/release/sverka-collector
agent=target/release/sverka-agent

# The collector's default data folder (as `serve` would pick it), unless one is set.
if [ -z "${SVERKA_COLLECTOR_DATA_DIR:-}" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        export SVERKA_COLLECTOR_DATA_DIR=/var/lib/sverka-collector
    else
        export SVERKA_COLLECTOR_DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/sverka-collector"
    fi
fi
data="$SVERKA_COLLECTOR_DATA_DIR"
mkdir -p "$data"
echo "collector data: $data"

if [ -z "$("$collector" org list)" ]; then
    region=$("$collector" org add --name "Демо-регион" --kind region)
    town=$("$collector" org add --name "Демо-муниципалитет" --kind municipality --parent "$region")
    school=$("$collector" org add --name "Демо-школа №1" --kind school --parent "$town" --expected-pcs 1)
    (umask 077; "$collector" secret create --org "$school" --expires 30d > "$data/demo-secret")
    echo "created the demo organizations (region $region, school $school) and an enrollment secret"
fi
top=$("$collector" org list | awk 'NR == 1 { print $1 }')

"$collector" serve --listen "$listen" > "$data/demo-serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    grep -q "listening on" "$data/demo-serve.log" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$data/demo-serve.log"; exit 1; }
    sleep 0.2
done
echo "collector: http://$listen (log: $data/demo-serve.log)"

state="$data/demo-agent"
if [ ! -s "$state/enrollment.json" ] && [ -s "$data/demo-secret" ]; then
    "$agent" enroll --allow-http --server "http://$listen" --secret "$(cat "$data/demo-secret")" --state-dir "$state"
fi
"$agent" run --once --state-dir "$state"

echo
echo "== coverage =="
"$collector" report coverage --org "$top" --format table
echo
echo "== violations =="
"$collector" report violations --org "$top" --format table

if [ "${SVERKA_DEMO_EXIT:-0}" = "1" ]; then
    exit 0
fi
echo
echo "The collector keeps running at http://$listen; press Ctrl-C to stop it."
wait "$server"
