#!/usr/bin/env bash
# Times the dashboard's heaviest pages of one or more collector builds on the same,
# already filled database (from `sverka-dashboard-bench --keep-database`), one build
# after the other, so that a before/after comparison reads the same data:
#   bench/dashboard-pages.sh DATABASE_URL LIVE_WEEK LAST_WEEK BIN_DIR [BIN_DIR ...]
# e.g. bench/dashboard-pages.sh postgres://127.0.0.1/sverka_test_1_0 2026-W50 2026-W49 \
#        /tmp/before/target/release target/release
# Prints the server's own time (Server-Timing), median and max of RUNS (default 10)
# requests per page after 3 warm-ups. Signs in as the benchmark's user (region 1).
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,9p "$0" >&2; exit 2; }
url=$1 live=$2 last=$3
shift 3
runs=${RUNS:-10}
port=${PORT:-18556}
pages=(
    "/org/1"
    "/org/1/weekly?week=$live"
    "/org/1/weekly?week=$last"
    "/org/1/worklist"
    "/org/1/worklist?q=pc-1&app=telegram&handled=no"
    "/org/1/weekly/export/xlsx?week=$live"
)
for bin in "$@"; do
    "$bin/sverka-collector" --database "$url" serve --listen "127.0.0.1:$port" >/dev/null 2>&1 &
    collector=$!
    base=http://127.0.0.1:$port
    for _ in $(seq 50); do curl -fs "$base/login" -o /dev/null && break; sleep 0.2; done
    jar=$(mktemp)
    curl -fs -c "$jar" -b "$jar" "$base/login" -o /dev/null
    csrf=$(awk '/sverka_login_csrf/ { print $7 }' "$jar")
    curl -fs -c "$jar" -b "$jar" -o /dev/null \
        -d "csrf=$csrf&lang=ru&login=bench&password=benchmark+password" "$base/login"
    for page in "${pages[@]}"; do
        times=()
        for run in $(seq $((runs + 3))); do
            time=$(curl -fs -b "$jar" -D - -o /dev/null "$base$page" \
                | tr -d '\r' | sed -n 's/^server-timing: app;dur=//Ip')
            [ "$run" -gt 3 ] && times+=("$time")
        done
        printf '%s\t%s\t' "$bin" "$page"
        printf '%s\n' "${times[@]}" | sort -g | awk '{ t[NR] = $1 }
            END { printf "median %.1f ms, max %.1f ms (%d runs)\n",
                  (t[int((NR + 1) / 2)] + t[int(NR / 2) + 1]) / 2, t[NR], NR }'
    done
    kill "$collector"
    wait "$collector" 2>/dev/null || true
    rm -f "$jar"
done
