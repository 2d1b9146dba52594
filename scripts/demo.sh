#!/usr/bin/env bash
# The main job on one machine: builds both programs, starts a collector on the
# embedded default (an SQLite file in its data folder), creates a demo region,
# municipality and school with an enrollment secret when there are no organizations
# yet, and a dashboard sign-in (an administrator, `demo`), enrolls this PC, sends its
# report, and shows it arriving: coverage down to each school and violations as the
# municipal office would see them. Then it prints the dashboard's address, login and
# password. The collector keeps running until Ctrl-C (set SVERKA_DEMO_EXIT=1 to stop
# after the figures).
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

# The dashboard sign-in: an administrator `demo` whose password is kept (0600) next to
# the database, so a second run prints the same one. A `demo` user without the file
# (it was deleted) gets a new password.
login=demo
password_file="$data/demo-password"
if [ ! -s "$password_file" ]; then
    (umask 077; od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$password_file")
    if "$collector" user list | awk -F '\t' -v login="$login" '$2 == login { found = 1 } END { exit !found }'; then
        "$collector" user password --login "$login" --password-file "$password_file"
    fi
fi
if ! "$collector" user list | awk -F '\t' -v login="$login" '$2 == login { found = 1 } END { exit !found }'; then
    "$collector" user add --login "$login" --role administrator --password-file "$password_file" > /dev/null
    echo "created the dashboard sign-in $login"
fi

# Cookies are marked Secure (HTTPS only) unless the collector listens on a loopback
# address; the demo serves plain HTTP, so on another address it says so in a
# configuration of its own, or the browser could not keep the sign-in.
serve_config=()
case "$listen" in
    127.* | localhost:* | "[::1]":*) ;;
    *)
        printf '[dashboard]\nsecure_cookies = false   # the demo serves plain HTTP\n' > "$data/demo-collector.toml"
        serve_config=(--config "$data/demo-collector.toml")
        ;;
esac

"$collector" "${serve_config[@]}" serve --listen "$listen" > "$data/demo-serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    grep -q "listening on" "$data/demo-serve.log" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$data/demo-serve.log"; exit 1; }
    sleep 0.2
done
echo "collector: http://$listen (log: $data/demo-serve.log)"

# The address to open and to enroll with: a wildcard listen address means this PC.
host="${listen%:*}"
port="${listen##*:}"
case "$host" in 0.0.0.0 | "" | "[::]") host=127.0.0.1 ;; esac
url="http://$host:$port"

# Enrolled once, again when the demo's address changed since (the agent talks only to
# the collector it enrolled with).
state="$data/demo-agent"
if [ -s "$data/demo-secret" ] && ! grep -qF "\"server\": \"$url\"" "$state/enrollment.json" 2>/dev/null \
    && ! grep -qF "\"server\":\"$url\"" "$state/enrollment.json" 2>/dev/null; then
    "$agent" enroll --allow-http --server "$url" --secret "$(cat "$data/demo-secret")" --state-dir "$state"
fi
"$agent" run --once --state-dir "$state"

# `report coverage` shows an organization and its direct children, so the table of
# each organization that has children, in tree order: the region with its
# municipalities, then each municipality with its schools (at most 10 tables).
echo
parents=$("$collector" org list | awk '
    { depth = match($0, /[^ ]/) - 1; id[NR] = $1; indent[NR] = depth }
    END { for (i = 1; i < NR; i++) if (indent[i + 1] > indent[i]) print id[i] }')
shown=0
for parent in $parents; do
    if [ "$shown" -ge 10 ]; then
        echo "(more: sverka-collector report coverage --org ID --format table)"
        break
    fi
    echo "== coverage: organization $parent and the organizations directly under it =="
    "$collector" report coverage --org "$parent" --format table
    echo
    shown=$((shown + 1))
done
[ -n "$parents" ] || { echo "== coverage =="; "$collector" report coverage --org "$top" --format table; echo; }
echo "== violations =="
"$collector" report violations --org "$top" --format table

echo
echo "The dashboard: $url/"
echo "  login:    $login"
echo "  password: $(cat "$password_file")   (kept in $password_file)"

if [ "${SVERKA_DEMO_EXIT:-0}" = "1" ]; then
    exit 0
fi
echo
echo "The collector keeps running at http://$listen; press Ctrl-C to stop it."
wait "$server"
