#!/usr/bin/env bash
# Benchmark: the agent's service mode (`sverka-agent service`, as the systemd unit and
# the Windows service run it) between scans, beside a `sleep` process as the floor:
# resident memory and CPU time over IDLE_SECONDS (default 300, extrapolated to an
# hour and said so), the scan's peak (each scan runs in a child process, which logs
# its VmHWM as it ends), the service's own peak (its VmHWM after enrolling and
# delivering the first report), and the installed sizes of every package. Targets:
# under 10 MB resident and under 1 CPU-second per hour while idle. Two services run
# side by side: one with the between-scan check of running processes at
# PROCESS_CHECK_SECONDS (default 30, thirty times as often as the shipped 15 minutes,
# so that a short run sees many checks; the cost per check and at the shipped interval
# are printed) and one with the check off, as the agent was before it.
#
#   bash bench/agent-idle.sh            # IDLE_SECONDS=3600 for a full hour
#   BENCH_PROFILE=debug bash bench/agent-idle.sh   # the debug binaries (no release build)
#   IDLE_SECONDS=60 BENCH_PACKAGES=0 bash bench/agent-idle.sh   # quick: no package sizes
set -euo pipefail
cd "$(dirname "$0")/.."
idle_seconds=${IDLE_SECONDS:-300}
check_seconds=${PROCESS_CHECK_SECONDS:-30}
process_check=${check_seconds}s
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
collector_pid="" agent_pid="" plain_pid="" sleep_pid=""
cleanup() {
    for pid in $agent_pid $plain_pid $collector_pid $sleep_pid; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

collector=$bin/sverka-collector
# start_service NAME CHECK: a service with its own collector (the two services run on
# one machine, so one collector would take them for one PC enrolled twice), state
# folder and log; CHECK is its process_check_interval. Prints its pid.
start_service() {
    export SVERKA_COLLECTOR_DATA_DIR=$work/$1-collector
    "$collector" serve --listen 127.0.0.1:0 > "$work/$1-collector.out" 2> "$work/$1-collector.log" &
    echo "$!" > "$work/$1-collector.pid"
    for _ in $(seq 100); do grep -q listening "$work/$1-collector.out" 2>/dev/null && break; sleep 0.1; done
    local url school secret
    url=$(sed -n 's/^listening on //p' "$work/$1-collector.out")
    school=$("$collector" org add --name "Школа №1" --kind school)
    secret=$("$collector" secret create --org "$school")
    cat > "$work/$1.toml" <<TOML
server_url = "$url"
allow_http = true
enroll_secret = "$secret"
state_dir = "$work/$1-state"
interval = "1h"
max_delay = "0s"
process_check_interval = "$2"
TOML
    "$bin/sverka-agent" service --config "$work/$1.toml" > "$work/$1.out" 2> "$work/$1.log" &
    echo $!
}
agent_pid=$(start_service agent "$process_check")
plain_pid=$(start_service plain 0s)
collector_pid="$(cat "$work/agent-collector.pid") $(cat "$work/plain-collector.pid")"
sleep 3600 & sleep_pid=$!
for log in agent plain; do
    for _ in $(seq 600); do grep -q acknowledged "$work/$log.log" && break; sleep 0.1; done
    grep -q acknowledged "$work/$log.log" || { cat "$work/$log.log" >&2; echo "$log: no report acknowledged" >&2; exit 1; }
done
sleep 1

ticks=$(getconf CLK_TCK)
# cpu_ticks PID: user + system time of the process and of its children it waited for
# (the service's process checks and scans run as child processes), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

service_peak=$(hwm_kb "$agent_pid")
scan_peak=$(sed -n 's/.*peak_resident_kb=\([0-9]*\).*/\1/p' "$work/agent.log" | tail -n 1)
[ -n "$scan_peak" ] || { cat "$work/agent.log" >&2; echo "the scan process logged no peak" >&2; exit 1; }
agent_start=$(cpu_ticks "$agent_pid") plain_start=$(cpu_ticks "$plain_pid") sleep_start=$(cpu_ticks "$sleep_pid")
agent_rss_max=0 plain_rss_max=0 sleep_rss_max=0
for _ in $(seq $((idle_seconds / 5))); do
    sleep 5
    r=$(rss_kb "$agent_pid"); ((r > agent_rss_max)) && agent_rss_max=$r
    r=$(rss_kb "$plain_pid"); ((r > plain_rss_max)) && plain_rss_max=$r
    r=$(rss_kb "$sleep_pid"); ((r > sleep_rss_max)) && sleep_rss_max=$r
done
agent_cpu=$(( $(cpu_ticks "$agent_pid") - agent_start ))
plain_cpu=$(( $(cpu_ticks "$plain_pid") - plain_start ))
sleep_cpu=$(( $(cpu_ticks "$sleep_pid") - sleep_start ))
per_hour() { awk -v t="$1" -v hz="$ticks" -v s="$idle_seconds" 'BEGIN { printf "%.3f", t / hz * 3600 / s }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "idle between scans, measured over ${idle_seconds} s (CPU extrapolated to an hour; clock tick 1/${ticks} s):"
printf '| %-40s | %12s | %16s |\n' "process" "resident MB" "CPU s per hour"
printf '| %-40s | %12s | %16s |\n' "service, process check every $process_check" "$(mb "$agent_rss_max")" "$(per_hour "$agent_cpu")"
printf '| %-40s | %12s | %16s |\n' "service, no process check (before)" "$(mb "$plain_rss_max")" "$(per_hour "$plain_cpu")"
printf '| %-40s | %12s | %16s |\n' "sleep (the floor)" "$(mb "$sleep_rss_max")" "$(per_hour "$sleep_cpu")"
awk -v with="$agent_cpu" -v without="$plain_cpu" -v hz="$ticks" -v s="$idle_seconds" -v every="$check_seconds" 'BEGIN {
    checks = int(s / every); per = (with - without) / hz / checks
    printf "process check: %d checks, %.1f ms of CPU each (service and child, less the service without checks); at the shipped 15 min: %.3f CPU s per hour\n", checks, per * 1000, per * 4
}'
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
