#!/usr/bin/env bash
# Benchmark: the agent's service mode (`sverka-agent service`, as the systemd unit and
# the Windows service run it) between scans, beside a `sleep` process as the floor:
# resident memory and CPU time over IDLE_SECONDS (default 300, extrapolated to an
# hour and said so), the scan's peak (each scan runs in a child process, which logs
# its VmHWM as it ends), the service's own peak (its VmHWM after enrolling and
# delivering the first report), and the installed sizes of every package. Targets:
# under 10 MB resident and under 1 CPU-second per hour while idle.
#
#   bash bench/agent-idle.sh            # IDLE_SECONDS=3600 for a full hour
#   BENCH_PROFILE=debug bash bench/agent-idle.sh   # the debug binaries (no release build)
#   IDLE_SECONDS=60 BENCH_PACKAGES=0 bash bench/agent-idle.sh   # quick: no package sizes
set -euo pipefail
cd "$(dirname "$0")/.."
idle_seconds=${IDLE_SECONDS:-300}
profile=${BENCH_PROFILE:-release}
packages=${BENCH_PACKAGES:-1}
profile_flag=()
[ "$profile" = release ] && profile_flag=(--release)
cargo build "${profile_flag[@]}" --locked --bin sverka-agent --bin sverka-collector >&2
if [ "$packages" = 1 ]; then
    cargo build "${profile_flag[@]}" --locked --target x86_64-pc-windows-gnu --bin sverka-agent >&2
fi
bin=target/$profile
echo "profile: $profile"
work=$(mktemp -d)
collector_pid="" agent_pid="" sleep_pid=""
cleanup() {
    for pid in $agent_pid $collector_pid $sleep_pid; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

collector=$bin/sverka-collector
export SVERKA_COLLECTOR_DATA_DIR=$work/collector
"$collector" serve --listen 127.0.0.1:0 > "$work/collector.out" 2> "$work/collector.log" &
collector_pid=$!
for _ in $(seq 100); do grep -q listening "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/collector.out")
school=$("$collector" org add --name "Школа №1" --kind school)
secret=$("$collector" secret create --org "$school")

cat > "$work/agent.toml" <<TOML
server_url = "$url"
allow_http = true
enroll_secret = "$secret"
state_dir = "$work/state"
interval = "1h"
max_delay = "0s"
TOML
"$bin/sverka-agent" service --config "$work/agent.toml" 2> "$work/agent.log" &
agent_pid=$!
sleep 3600 & sleep_pid=$!
for _ in $(seq 600); do grep -q acknowledged "$work/agent.log" && break; sleep 0.1; done
grep -q acknowledged "$work/agent.log" || { cat "$work/agent.log" >&2; echo "no report acknowledged" >&2; exit 1; }
sleep 1

ticks=$(getconf CLK_TCK)
# cpu_ticks PID: user + system time of the process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

service_peak=$(hwm_kb "$agent_pid")
scan_peak=$(sed -n 's/.*peak_resident_kb=\([0-9]*\).*/\1/p' "$work/agent.log" | tail -n 1)
[ -n "$scan_peak" ] || { cat "$work/agent.log" >&2; echo "the scan process logged no peak" >&2; exit 1; }
agent_start=$(cpu_ticks "$agent_pid") sleep_start=$(cpu_ticks "$sleep_pid")
agent_rss_max=0 sleep_rss_max=0
for _ in $(seq $((idle_seconds / 5))); do
    sleep 5
    r=$(rss_kb "$agent_pid"); ((r > agent_rss_max)) && agent_rss_max=$r
    r=$(rss_kb "$sleep_pid"); ((r > sleep_rss_max)) && sleep_rss_max=$r
done
agent_cpu=$(( $(cpu_ticks "$agent_pid") - agent_start ))
sleep_cpu=$(( $(cpu_ticks "$sleep_pid") - sleep_start ))
per_hour() { awk -v t="$1" -v hz="$ticks" -v s="$idle_seconds" 'BEGIN { printf "%.3f", t / hz * 3600 / s }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "idle between scans, measured over ${idle_seconds} s (CPU extrapolated to an hour; clock tick 1/${ticks} s):"
printf '| %-40s | %12s | %16s |\n' "process" "resident MB" "CPU s per hour"
printf '| %-40s | %12s | %16s |\n' "sverka-agent service (idle)" "$(mb "$agent_rss_max")" "$(per_hour "$agent_cpu")"
printf '| %-40s | %12s | %16s |\n' "sleep (the floor)" "$(mb "$sleep_rss_max")" "$(per_hour "$sleep_cpu")"
echo "scan peak (VmHWM of the scan's child process): $(mb "$scan_peak") MB"
echo "service peak (the service's VmHWM after enrolling and delivering the first report): $(mb "$service_peak") MB"
echo "targets: under 10 MB resident, under 1 CPU-second per hour idle"

[ "$packages" = 1 ] || exit 0
# Installed sizes (binaries stripped into the packages).
bash packaging/build-linux.sh --agent "$bin/sverka-agent" \
    --collector "$bin/sverka-collector" --out "$work/dist" >/dev/null
bash packaging/build-msi.sh --exe "target/x86_64-pc-windows-gnu/$profile/sverka-agent.exe" \
    --out "$work/dist" >/dev/null
echo
printf '| %-40s | %12s | %14s |\n' "package" "file KB" "installed KB"
for deb in "$work"/dist/*.deb; do
    printf '| %-40s | %12s | %14s |\n' "$(basename "$deb")" "$(( $(stat -c %s "$deb") / 1024 ))" \
        "$(dpkg-deb -f "$deb" Installed-Size)"
done
for rpm in "$work"/dist/*.rpm; do
    printf '| %-40s | %12s | %14s |\n' "$(basename "$rpm")" "$(( $(stat -c %s "$rpm") / 1024 ))" \
        "$(( $(rpm -qp --qf '%{SIZE}' "$rpm") / 1024 ))"
done
for msi in "$work"/dist/*.msi; do
    msiextract -C "$work/msi" "$msi" >/dev/null
    installed=$(du -sk "$work/msi" | cut -f1)
    printf '| %-40s | %12s | %14s |\n' "$(basename "$msi")" "$(( $(stat -c %s "$msi") / 1024 ))" "$installed"
done
