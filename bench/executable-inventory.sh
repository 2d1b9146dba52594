#!/usr/bin/env bash
# Benchmark: the executable inventory on a tree of 500,000 files with 5,000 programs,
# all of it outside the folders the other walks cover (so the inventory walks every
# file: its worst case), side by side in the same run:
#   - the scan without the inventory (--no-inventory),
#   - the first scan with it (an empty cache: every program is read),
#   - a repeat scan that lists every folder (the cache's files answer; the figure before
#     folder listings were cached, and what a scan does once a day, when its full walk
#     is due: the cache's full_walk_at is set back a day before each run),
#   - a repeat scan (the cache answers for files and for unchanged folders).
# Linux: `sverka-agent scan --root` over an image whose /srv and /data hold the tree
# (2,500 ELF programs, 2,500 Windows programs with a version resource). Under Wine
# (SKIP_WINE=1 skips it): sverka-agent.exe scanning a prefix whose C:\Data holds the
# tree (5,000 Windows programs). Prints the median wall time of RUNS and the agent's own
# duration_ms, and checks that each scan with the inventory found the renamed Viber.
# BEFORE_AGENT=path/to/sverka-agent adds the service's journal scans of that build (an
# earlier commit's), side by side with this one's; BEFORE_AGENT_EXE=path/to/
# sverka-agent.exe does the same under Wine. Both on Linux and under Wine, the
# service (`run`, each scan in a child process, enrolled with a real collector) is
# measured by folder times (`--no-change-watch`), with its change journal, and with
# its journal while documents are saved into one walked folder between scans (a PC in
# use: each repeat scan lists that folder afresh). On Linux the journal rows add the
# inventory's thread CPU time (inventory_cpu_us: its own time less its waits for a
# core). KEEP_LOGS=DIR keeps the services' logs, whose scan lines say where the
# inventory's time went (cache_read_us, cache_write_us, cache_bytes_written).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
total_files=${FILES:-500000}
programs=${PROGRAMS:-5000}

missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v x86_64-w64-mingw32-windres >/dev/null || missing+=(binutils-mingw-w64-x86-64)
[ "${SKIP_WINE:-0}" = 1 ] || command -v wine >/dev/null || missing+=(wine wine64)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release --locked -p sverka-agent --bin sverka-agent -p sverka-collector --bin sverka-collector >&2
agent=$PWD/target/release/sverka-agent
collector=$PWD/target/release/sverka-collector
work=$(mktemp -d)
collector_pid=""
cleanup() {
    set +e
    [ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null
    [ -n "${WINEPREFIX:-}" ] && wineserver -k >/dev/null 2>&1
    # KEEP_LOGS=DIR keeps the services' logs (each scan's phases) for a closer look.
    [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$KEEP_LOGS"/ 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

source bench/windows-programs.sh
windows_program "$work" tool "Some Vendor" "Some Tool"
windows_program "$work" viber "Viber Media S.a r.l." "Viber"

# tree BASE... : $total_files files over the bases, $programs of them programs (half
# ELF when ELF=1), 100 files a folder, and the renamed Viber in the first base.
tree() {
    python3 - "$total_files" "$programs" "${ELF:-0}" "$work" "$@" <<'PY'
import os, sys
total, programs, elf, work, bases = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5:]
tool = open(os.path.join(work, "tool.exe"), "rb").read()
elf_bytes = b"\x7fELF\x02\x01\x01" + b"\0" * 4089
every = total // programs
for index in range(total):
    group = index // 100
    folder = os.path.join(bases[group % len(bases)], f"share{group % 13}", f"d{group}")
    if index % 100 == 0:
        os.makedirs(folder, exist_ok=True)
    if index % every == 0:
        if elf and (index // every) % 2:
            path = os.path.join(folder, f"tool{index}")
            open(path, "wb").write(elf_bytes)
            os.chmod(path, 0o755)
        else:
            open(os.path.join(folder, f"tool{index}.exe"), "wb").write(tool)
    else:
        open(os.path.join(folder, f"file{index}.dat"), "wb").write(b"x" * 64)
hidden = os.path.join(bases[0], "old", "backup")
os.makedirs(hidden, exist_ok=True)
open(os.path.join(hidden, "homework.exe"), "wb").write(open(os.path.join(work, "viber.exe"), "rb").read())
PY
}

# measure RUNS SETUP COMMAND... -> "median_seconds median_duration_ms"; SETUP runs
# before each run (unmeasured), the command's JSON goes to $work/out.json.
measure() {
    local runs=$1 setup=$2; shift 2
    local times=() owns=()
    for _ in $(seq "$runs"); do
        eval "$setup"
        local started ended
        started=$EPOCHREALTIME
        "$@" >"$work/out.json" 2>/dev/null || true
        ended=$EPOCHREALTIME
        times+=("$(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.3f", b - a}')")
        owns+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["duration_ms"])' "$work/out.json")")
    done
    local median own
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    own=$(printf '%s\n' "${owns[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$median $own"
}
# wall RUNS CMD...: the median wall time of CMD (seconds), for a peer without own time.
wall() {
    local runs=$1 times=()
    shift
    for _ in $(seq "$runs"); do
        local started=$EPOCHREALTIME
        "$@" >/dev/null 2>&1 || true
        times+=("$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
# full_walk_due CACHE: sets the cache's last full walk back a day, so the next scan lists
# every folder (the cache is JSON Lines: the header is its first line).
full_walk_due() {
    python3 - "$1" <<'PY'
import json, sys, time
header, _, folders = open(sys.argv[1], "rb").read().partition(b"\n")
header = json.loads(header)
header["full_walk_at"] = int(time.time()) - 2 * 86400
open(sys.argv[1], "wb").write(json.dumps(header, separators=(",", ":")).encode() + b"\n" + folders)
PY
}
found_viber() { grep -q '"app": "viber"' "$work/out.json" || { echo "$1 missed the renamed Viber" >&2; exit 1; }; }
row() { printf '%-58s %10s %12s\n' "$1" "$2" "$(awk -v m="$3" 'BEGIN {printf "%.3f", m/1000}')"; }
# service_row WHAT MILLISECONDS
service_row() { printf '%-58s %10s\n' "$1" "$(awk -v m="$2" 'BEGIN {printf "%.6f", m/1000}')"; }

# Linux: an image with the tree in /srv and /data.
image=$work/image
mkdir -p "$image/etc" "$image/home/anna"
echo "anna:x:1000:1000::/home/anna:/bin/bash" >"$image/etc/passwd"
ELF=1 tree "$image/srv" "$image/data"
find "$image" >/dev/null # warm the page cache for every run alike
cache=$work/executables.json
read -r none_s none_own < <(measure "$runs" : "$agent" scan --root "$image" --format json --no-inventory)
read -r first_s first_own < <(measure "$runs" 'rm -f "$cache"' "$agent" scan --root "$image" --format json --inventory-cache "$cache")
found_viber "the first Linux scan"
read -r full_s full_own < <(measure "$runs" 'full_walk_due "$cache"' "$agent" scan --root "$image" --format json --inventory-cache "$cache")
found_viber "the full-walk Linux scan"
read -r repeat_s repeat_own < <(measure "$runs" : "$agent" scan --root "$image" --format json --inventory-cache "$cache")
found_viber "the repeat Linux scan"
files=$(find "$image" -type f | wc -l)

# The service (`sverka-agent run`, each scan in a child process) over the same image,
# enrolled with a real collector, one after the other: SCANS scans with the inventory
# off; SCANS + 1 with it on and without the change watcher (`--no-change-watch`: the
# repeat scans go by the folders' times, the figure before the watcher); SCANS + 1 with
# the watcher (the repeat scans are answered by its journal). The first scan of each
# makes the cache. Rows: the median of the repeat scans' own durations as the scan
# child logs them (`scan_ms`, whole milliseconds) and of the inventory's own time
# (`inventory_us`); the percentage compares the inventory's time with this machine's
# own default scan (`sverka-agent scan`, the running system, median of RUNS), as the
# scan of a typical PC it is added to.
service_scans=${SCANS:-$runs}
export SVERKA_COLLECTOR_DATA_DIR=$work/collector
"$collector" serve --listen 127.0.0.1:0 >"$work/collector.out" 2>"$work/collector.log" &
collector_pid=$!
for _ in $(seq 100); do grep -q listening "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/collector.out")
school=$("$collector" org add --name "Школа №1" --kind school)
secret=$("$collector" secret create --org "$school")
echo "0123456789abcdef0123456789abcdef" >"$image/etc/machine-id"
echo "bench-pc" >"$image/etc/hostname"
# service NAME SCANS ARGS...: runs the service ($service_agent, else this build) until
# SCANS scans are done; its log in $work/NAME.log.
service() {
    local name=$1 scans=$2 binary=${service_agent:-$agent}
    shift 2
    local state=$work/$name-state
    "$binary" enroll --server "$url" --allow-http --secret "$secret" --state-dir "$state" \
        --root "$image" >/dev/null 2>"$work/$name-enroll.log" \
        || { cat "$work/$name-enroll.log" >&2; exit 1; }
    SVERKA_LOG=info "$binary" run --state-dir "$state" --root "$image" --max-delay 0 \
        --interval 2s "$@" 2>"$work/$name.log" &
    local pid=$!
    for _ in $(seq 600); do
        # The log may not exist yet: no count is none.
        [ "$(grep -c 'scan_ms=' "$work/$name.log" 2>/dev/null || true)" -ge "$scans" ] 2>/dev/null && break
        sleep 0.2
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
# scan_ms LOG SKIP: the median milliseconds of the scans in LOG after the first SKIP.
scan_ms() {
    grep -o 'scan_ms=[0-9]*' "$1" | cut -d= -f2 \
        | tail -n +"$(($2 + 1))" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
# inventory_us LOG [FIELD]: the median inventory time (µs) of the repeat scans in LOG;
# FIELD inventory_cpu_us for its thread's CPU time (empty where not logged).
inventory_us() {
    { grep -o "${2:-inventory_us}=[0-9]*" "$1" || true; } | cut -d= -f2 | tail -n +2 | sort -g \
        | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
# busy DIR: in the background, saves a document into DIR twice a second (five names in
# turn, each new or rewritten), as a PC in use does between scans; prints its pid.
busy() {
    (i=0; while :; do echo "draft $i" >"$1/report$((i % 5)).txt"; i=$((i + 1)); sleep 0.5; done) >/dev/null 2>&1 &
    echo $!
}
service plain "$service_scans" --no-inventory
service times "$((service_scans + 1))" --no-change-watch
service journal "$((service_scans + 1))"
# The journal service while documents are saved into one walked folder between scans:
# every repeat scan lists that folder afresh and writes a new cache.
busy_pid=$(busy "$image/srv/share0/d0")
service journal-busy "$((service_scans + 1))"
[ -z "${BEFORE_AGENT:-}" ] || service_agent=$BEFORE_AGENT service before-busy "$((service_scans + 1))"
kill "$busy_pid"
rm -f "$image"/srv/share0/d0/report*.txt
# BEFORE_AGENT=path: the same journal service with another build (the figure before a
# change, in the same run).
before_us=""
if [ -n "${BEFORE_AGENT:-}" ]; then
    service_agent=$BEFORE_AGENT service before "$((service_scans + 1))"
    before_us=$(inventory_us "$work/before.log")
fi
plain_ms=$(scan_ms "$work/plain.log" 0)
times_ms=$(scan_ms "$work/times.log" 1)
journal_ms=$(scan_ms "$work/journal.log" 1)
first_ms=$(grep -o 'scan_ms=[0-9]*' "$work/journal.log" | head -1 | cut -d= -f2)
times_us=$(inventory_us "$work/times.log")
journal_us=$(inventory_us "$work/journal.log")
busy_ms=$(scan_ms "$work/journal-busy.log" 1)
busy_us=$(inventory_us "$work/journal-busy.log")
journal_cpu_us=$(inventory_us "$work/journal.log" inventory_cpu_us)
busy_cpu_us=$(inventory_us "$work/journal-busy.log" inventory_cpu_us)
before_busy_us=""
[ -z "${BEFORE_AGENT:-}" ] || before_busy_us=$(inventory_us "$work/before-busy.log")
read -r _ live_own < <(measure "$runs" : "$agent" scan --format json)
grep -q "watching the disks for changes" "$work/journal.log" \
    || { echo "the service's change watcher did not start:" >&2; grep -i watch "$work/journal.log" >&2; exit 1; }
unchanged=$(grep -o 'folders_unchanged=[0-9]*' "$work/journal.log" | tail -1 | cut -d= -f2)

printf '\nmachine: %d cores (shared with other work: figures are indicative)\n' "$(nproc)"
printf 'Linux image: %d files, %d programs (half ELF, half .exe), in /srv and /data\n' "$files" "$programs"
printf '%-58s %10s %12s\n' "what (median of $runs)" "seconds" "own s"
row "sverka-agent scan --root, without the inventory" "$none_s" "$none_own"
row "  with the inventory, first scan (no cache)" "$first_s" "$first_own"
row "  repeat scan listing every folder (before; daily)" "$full_s" "$full_own"
row "  repeat scan (cache of files and folders)" "$repeat_s" "$repeat_own"
printf '%-58s %10s %12s\n' "the service's scan child (median of $service_scans)" "seconds" ""
service_row "  without the inventory" "$plain_ms"
service_row "  with the inventory, first scan" "$first_ms"
service_row "  repeat scan by folder times (before the watcher)" "$times_ms"
service_row "  repeat scan with the change journal" "$journal_ms"
service_row "  the inventory's own time: by folder times (before)" "$(awk -v u="$times_us" 'BEGIN {printf "%.3f", u/1000}')"
service_row "  the inventory's own time: with the change journal" "$(awk -v u="$journal_us" 'BEGIN {printf "%.3f", u/1000}')"
# Its thread's CPU time: the work it adds, without its waits for a core while the
# scan's other sources run.
[ -z "$journal_cpu_us" ] || service_row "  of which its thread's CPU time" "$(awk -v u="$journal_cpu_us" 'BEGIN {printf "%.3f", u/1000}')"
[ -z "$before_us" ] || service_row "  the same, BEFORE_AGENT's build" "$(awk -v u="$before_us" 'BEGIN {printf "%.3f", u/1000}')"
service_row "  repeat scan with the journal, documents being saved" "$busy_ms"
service_row "  the inventory's own time: the same" "$(awk -v u="$busy_us" 'BEGIN {printf "%.3f", u/1000}')"
[ -z "$busy_cpu_us" ] || service_row "  of which its thread's CPU time" "$(awk -v u="$busy_cpu_us" 'BEGIN {printf "%.3f", u/1000}')"
[ -z "$before_busy_us" ] || service_row "  the same, BEFORE_AGENT's build" "$(awk -v u="$before_busy_us" 'BEGIN {printf "%.3f", u/1000}')"
service_row "this machine's default scan (sverka-agent scan), own" "$live_own"
printf '  the repeat inventory adds %s%% (by folder times: %s%%; documents being saved: %s%%) to this machine'"'"'s scan; %s folders unseen\n' \
    "$(awk -v a="$journal_us" -v b="$live_own" 'BEGIN {printf "%.1f", a / 10 / b}')" \
    "$(awk -v a="$times_us" -v b="$live_own" 'BEGIN {printf "%.1f", a / 10 / b}')" \
    "$(awk -v a="$busy_us" -v b="$live_own" 'BEGIN {printf "%.1f", a / 10 / b}')" "$unchanged"
rm -rf "$image"

[ "${SKIP_WINE:-0}" = 1 ] && exit 0
rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
cargo build --release --locked --target x86_64-pc-windows-gnu -p sverka-agent --bin sverka-agent >&2
exe=$PWD/target/x86_64-pc-windows-gnu/release/sverka-agent.exe
x86_64-w64-mingw32-gcc -shared -O2 -o "$(dirname "$exe")/bcryptprimitives.dll" \
    tests/wine/bcryptprimitives.c tests/wine/bcryptprimitives.def -ladvapi32
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml="
unset DISPLAY
wine wineboot -i >/dev/null 2>&1
wineserver -w
find "$WINEPREFIX/drive_c/users" -mindepth 2 -maxdepth 2 -type l -exec sh -c 'rm "$1" && mkdir "$1"' _ {} \;
tree "$WINEPREFIX/drive_c/Data"
wineserver -p
wine "$exe" scan --format json --no-inventory >/dev/null 2>&1 || true # warm-up
wcache='C:\executables.json'
wcache_local=$WINEPREFIX/drive_c/executables.json
read -r wnone_s wnone_own < <(measure "$runs" : wine "$exe" scan --format json --no-inventory)
read -r wfirst_s wfirst_own < <(measure "$runs" 'rm -f "$wcache_local"' wine "$exe" scan --format json --inventory-cache "$wcache")
found_viber "the first scan under Wine"
read -r wfull_s wfull_own < <(measure "$runs" 'full_walk_due "$wcache_local"' wine "$exe" scan --format json --inventory-cache "$wcache")
found_viber "the full-walk scan under Wine"
read -r wrepeat_s wrepeat_own < <(measure "$runs" : wine "$exe" scan --format json --inventory-cache "$wcache")
found_viber "the repeat scan under Wine"
wfiles=$(find "$WINEPREFIX/drive_c" -type f | wc -l)
# A peer for the first scan under Wine: Wine's own `cmd` listing the same tree
# (FindFirstFile/FindNextFile, as the inventory's walk lists it), with Wine's start-up
# in its wall time as in the agent's.
wdir_s=$(wall "$runs" wine cmd /c 'dir /s /b /a C:\Data > NUL')

printf '\nWine prefix: %d files in drive_c, %d programs (.exe) in C:\\Data\n' "$wfiles" "$programs"
printf '%-58s %10s %12s\n' "what (median of $runs)" "seconds" "own s"
row "wine sverka-agent.exe scan, without the inventory" "$wnone_s" "$wnone_own"
row "  with the inventory, first scan (no cache)" "$wfirst_s" "$wfirst_own"
row "  repeat scan listing every folder (before; daily)" "$wfull_s" "$wfull_own"
row "  repeat scan (cache of files and folders)" "$wrepeat_s" "$wrepeat_own"
printf '%-58s %10s\n' "peer: Wine's cmd, dir /s /b /a C:\\Data (lists the tree)" "$wdir_s"

# The Windows service under Wine (`sverka-agent.exe run`, each scan a child process),
# as on Linux: by folder times, then with the change watcher (ReadDirectoryChangesW).
# wine_service NAME SCANS ARGS...
wine_service() {
    local name=$1 scans=$2
    shift 2
    # Where the service keeps its state (ProgramData, a folder the inventory leaves to
    # the other walks), as the MSI installs it.
    local state="C:\\ProgramData\\Sverka-$name"
    wine "$exe" enroll --server "$url" --allow-http --secret "$secret" --state-dir "$state" \
        >/dev/null 2>"$work/wine-$name-enroll.log" || { cat "$work/wine-$name-enroll.log" >&2; exit 1; }
    SVERKA_LOG=info wine "${service_exe:-$exe}" run --state-dir "$state" --max-delay 0 --interval 2s "$@" \
        2>"$work/wine-$name.log" &
    local pid=$!
    for _ in $(seq 1500); do
        [ "$(grep -c 'scan_ms=' "$work/wine-$name.log" 2>/dev/null || true)" -ge "$scans" ] 2>/dev/null && break
        sleep 0.2
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
wine_service plain "$service_scans" --no-inventory
wine_service times "$((service_scans + 1))" --no-change-watch
wine_service journal "$((service_scans + 1))"
wbusy_pid=$(busy "$WINEPREFIX/drive_c/Data/share0/d0")
wine_service journal-busy "$((service_scans + 1))"
if [ -n "${BEFORE_AGENT_EXE:-}" ]; then
    cp "$(dirname "$exe")/bcryptprimitives.dll" "$(dirname "$BEFORE_AGENT_EXE")/" 2>/dev/null || true
    service_exe=$BEFORE_AGENT_EXE wine_service before-busy "$((service_scans + 1))"
fi
kill "$wbusy_pid"
grep -q "watching the disks for changes" "$work/wine-journal.log" \
    || { echo "the Windows service's change watcher did not start:" >&2; grep -i watch "$work/wine-journal.log" >&2; exit 1; }
wplain_ms=$(scan_ms "$work/wine-plain.log" 0)
wtimes_ms=$(scan_ms "$work/wine-times.log" 1)
wjournal_ms=$(scan_ms "$work/wine-journal.log" 1)
wtimes_us=$(inventory_us "$work/wine-times.log")
wjournal_us=$(inventory_us "$work/wine-journal.log")
wbusy_ms=$(scan_ms "$work/wine-journal-busy.log" 1)
wbusy_us=$(inventory_us "$work/wine-journal-busy.log")
wbefore_busy_us=""
[ -z "${BEFORE_AGENT_EXE:-}" ] || wbefore_busy_us=$(inventory_us "$work/wine-before-busy.log")
# BEFORE_AGENT_EXE=path: the same journal service under Wine with another build.
wbefore_us=""
if [ -n "${BEFORE_AGENT_EXE:-}" ]; then
    cp "$(dirname "$exe")/bcryptprimitives.dll" "$(dirname "$BEFORE_AGENT_EXE")/" 2>/dev/null || true
    service_exe=$BEFORE_AGENT_EXE wine_service before "$((service_scans + 1))"
    wbefore_us=$(inventory_us "$work/wine-before.log")
    wbefore_ms=$(scan_ms "$work/wine-before.log" 1)
fi
wunchanged=$(grep -o 'folders_unchanged=[0-9]*' "$work/wine-journal.log" | tail -1 | cut -d= -f2)
printf '%-58s %10s %12s\n' "the Windows service's scan child (median of $service_scans)" "seconds" ""
service_row "  without the inventory" "$wplain_ms"
service_row "  repeat scan by folder times (before the watcher)" "$wtimes_ms"
service_row "  repeat scan with the change journal" "$wjournal_ms"
service_row "  the inventory's own time: by folder times (before)" "$(awk -v u="$wtimes_us" 'BEGIN {printf "%.3f", u/1000}')"
service_row "  the inventory's own time: with the change journal" "$(awk -v u="$wjournal_us" 'BEGIN {printf "%.3f", u/1000}')"
[ -z "$wbefore_us" ] || service_row "  the same, BEFORE_AGENT_EXE's build" "$(awk -v u="$wbefore_us" 'BEGIN {printf "%.3f", u/1000}')"
[ -z "$wbefore_us" ] || service_row "  repeat scan with the journal, BEFORE_AGENT_EXE's build" "$wbefore_ms"
service_row "  repeat scan with the journal, documents being saved" "$wbusy_ms"
service_row "  the inventory's own time: the same" "$(awk -v u="$wbusy_us" 'BEGIN {printf "%.3f", u/1000}')"
[ -z "$wbefore_busy_us" ] || service_row "  the same, BEFORE_AGENT_EXE's build" "$(awk -v u="$wbefore_busy_us" 'BEGIN {printf "%.3f", u/1000}')"
# The scan's sources run side by side (a thread each), so the inventory's own time is
# not all added to the scan: what it adds is the scan's time with it against without.
printf '  the scan with the journal takes %s ms more than without the inventory (%s%%); documents being saved: %s ms (%s%%)\n' \
    "$((wjournal_ms - wplain_ms))" "$(awk -v a="$wjournal_ms" -v b="$wplain_ms" 'BEGIN {printf "%.1f", (a - b) * 100 / b}')" \
    "$((wbusy_ms - wplain_ms))" "$(awk -v a="$wbusy_ms" -v b="$wplain_ms" 'BEGIN {printf "%.1f", (a - b) * 100 / b}')"
printf '  the repeat inventory adds %s%% (by folder times: %s%%) to the Windows service'"'"'s scan; %s folders unseen\n' \
    "$(awk -v a="$wjournal_us" -v b="$wplain_ms" 'BEGIN {printf "%.1f", a / 10 / b}')" \
    "$(awk -v a="$wtimes_us" -v b="$wplain_ms" 'BEGIN {printf "%.1f", a / 10 / b}')" "$wunchanged"
