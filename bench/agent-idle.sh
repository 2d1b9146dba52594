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
# are printed) and one with the check off, as the agent was before it. Each pair runs
# for two builds at the same time: this machine's glibc build (the figure before) and
# the static musl build the Linux packages ship (four services in all).
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
musl=x86_64-unknown-linux-musl
command -v musl-gcc >/dev/null || { echo "musl-gcc is missing: apt-get install musl-tools" >&2; exit 1; }
rustup target list --installed | grep -qx "$musl" || rustup target add "$musl" >&2
cargo build "${profile_flag[@]}" --locked --bin sverka-agent --bin sverka-collector >&2
CC_x86_64_unknown_linux_musl=musl-gcc cargo build "${profile_flag[@]}" --locked --target "$musl" \
    --bin sverka-agent --bin sverka-collector >&2
if [ "$packages" = 1 ]; then
    cargo build "${profile_flag[@]}" --locked --target x86_64-pc-windows-gnu --bin sverka-agent >&2
fi
bin=target/$profile
musl_bin=target/$musl/$profile
echo "profile: $profile"
work=$(mktemp -d)
collector_pid="" sleep_pid=""
declare -A pid_of=()
cleanup() {
    for pid in "${pid_of[@]}" $collector_pid $sleep_pid; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

collector=$bin/sverka-collector
# start_service NAME CHECK AGENT: a service of the AGENT binary with its own collector
# (the services run on one machine, so one collector would take them for one PC
# enrolled again and again), state folder and log; CHECK is its
# process_check_interval. Prints its pid.
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
    "$3" service --config "$work/$1.toml" > "$work/$1.out" 2> "$work/$1.log" &
    echo $!
}
services=(agent plain musl-agent musl-plain)
pid_of[agent]=$(start_service agent "$process_check" "$bin/sverka-agent")
pid_of[plain]=$(start_service plain 0s "$bin/sverka-agent")
pid_of[musl-agent]=$(start_service musl-agent "$process_check" "$musl_bin/sverka-agent")
pid_of[musl-plain]=$(start_service musl-plain 0s "$musl_bin/sverka-agent")
for service in "${services[@]}"; do collector_pid+=" $(cat "$work/$service-collector.pid")"; done
sleep 3600 & sleep_pid=$!
for log in "${services[@]}"; do
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

declare -A service_peak=() scan_peak=() cpu_start=() rss_max=() cpu_used=()
for service in "${services[@]}"; do
    service_peak[$service]=$(hwm_kb "${pid_of[$service]}")
    scan_peak[$service]=$(sed -n 's/.*peak_resident_kb=\([0-9]*\).*/\1/p' "$work/$service.log" | tail -n 1)
    [ -n "${scan_peak[$service]}" ] || { cat "$work/$service.log" >&2; echo "$service: the scan process logged no peak" >&2; exit 1; }
    cpu_start[$service]=$(cpu_ticks "${pid_of[$service]}")
    rss_max[$service]=0
done
sleep_start=$(cpu_ticks "$sleep_pid") sleep_rss_max=0
for _ in $(seq $((idle_seconds / 5))); do
    sleep 5
    for service in "${services[@]}"; do
        r=$(rss_kb "${pid_of[$service]}"); ((r > rss_max[$service])) && rss_max[$service]=$r
    done
    r=$(rss_kb "$sleep_pid"); ((r > sleep_rss_max)) && sleep_rss_max=$r
done
for service in "${services[@]}"; do
    cpu_used[$service]=$(( $(cpu_ticks "${pid_of[$service]}") - cpu_start[$service] ))
done
sleep_cpu=$(( $(cpu_ticks "$sleep_pid") - sleep_start ))
per_hour() { awk -v t="$1" -v hz="$ticks" -v s="$idle_seconds" 'BEGIN { printf "%.3f", t / hz * 3600 / s }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
declare -A label_of=(
    [agent]="glibc: process check every $process_check"
    [plain]="glibc: no process check (before)"
    [musl-agent]="musl: process check every $process_check"
    [musl-plain]="musl: no process check"
)
echo "idle between scans, all four services at once, measured over ${idle_seconds} s (CPU extrapolated to an hour; clock tick 1/${ticks} s):"
printf '| %-40s | %12s | %16s | %13s | %16s |\n' "process" "resident MB" "CPU s per hour" "scan peak MB" "service peak MB"
for service in "${services[@]}"; do
    printf '| %-40s | %12s | %16s | %13s | %16s |\n' "service, ${label_of[$service]}" "$(mb "${rss_max[$service]}")" \
        "$(per_hour "${cpu_used[$service]}")" "$(mb "${scan_peak[$service]}")" "$(mb "${service_peak[$service]}")"
done
printf '| %-40s | %12s | %16s | %13s | %16s |\n' "sleep (the floor)" "$(mb "$sleep_rss_max")" "$(per_hour "$sleep_cpu")" "" ""
for build in glibc musl; do
    with=agent without=plain
    [ "$build" = musl ] && with=musl-agent without=musl-plain
    awk -v build="$build" -v with="${cpu_used[$with]}" -v without="${cpu_used[$without]}" -v hz="$ticks" -v s="$idle_seconds" -v every="$check_seconds" 'BEGIN {
        checks = int(s / every); per = (with - without) / hz / checks
        printf "%s process check: %d checks, %.1f ms of CPU each (service and child, less the service without checks); at the shipped 15 min: %.3f CPU s per hour\n", build, checks, per * 1000, per * 4
    }'
done
echo "scan peak: VmHWM of the scan's child process, as it logs it; service peak: the service's VmHWM after enrolling and delivering the first report"
echo "targets: under 10 MB resident, under 1 CPU-second per hour idle"

[ "$packages" = 1 ] || exit 0
# Installed sizes (binaries stripped into the packages).
# The packages ship the musl build (build-linux.sh refuses this machine's glibc one).
bash packaging/build-linux.sh --agent "$musl_bin/sverka-agent" \
    --collector "$musl_bin/sverka-collector" --out "$work/dist" >/dev/null
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
