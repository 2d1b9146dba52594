#!/usr/bin/env bash
# Benchmark: sverka-agent.exe (release build for x86_64-pc-windows-gnu) scanning a Wine
# prefix with 5 profiles (4 logged off, read from their NTUSER.DAT and UsrClass.dat)
# and 50,000 files in the walked folders (AppData\Roaming, AppData\Local, Downloads,
# Desktop of every profile, Program Files, ProgramData), 1,000 of them programs whose
# version resource is read. Prints wall time (median of RUNS), the agent's own
# duration_ms, and peak memory (max RSS from GNU time), beside `wine cmd /c exit` as
# the floor Wine itself costs. Installs what it needs first (as scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
total_files=${FILES:-50000}
profiles=5

missing=()
command -v wine >/dev/null || missing+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v x86_64-w64-mingw32-windres >/dev/null || missing+=(binutils-mingw-w64-x86-64)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu

cargo build --release --locked --target x86_64-pc-windows-gnu -p sverka-agent --bin sverka-agent >&2
agent=$PWD/target/x86_64-pc-windows-gnu/release/sverka-agent.exe
x86_64-w64-mingw32-gcc -shared -O2 -o "$(dirname "$agent")/bcryptprimitives.dll" \
    tests/wine/bcryptprimitives.c tests/wine/bcryptprimitives.def -ladvapi32

# The 64-bit loader by name: with Debian's wine32 installed too (the 32-bit agent's
# tests), plain `wine` is the 32-bit one and would write the registry's 32-bit view.
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine=$(command -v wine64)
export WINELOADER=$wine

work=$(mktemp -d)
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml="
unset DISPLAY
cleanup() { wineserver -k >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$wine" wineboot -i >/dev/null 2>&1
wineserver -w
# Wine links the user's Desktop, Downloads, ... to the Unix home: plain folders instead,
# so that nothing is written to, or walked in, this machine's home.
find "$WINEPREFIX/drive_c/users" -mindepth 2 -maxdepth 2 -type l -exec sh -c 'rm "$1" && mkdir "$1"' _ {} \;

# Two programs with a version resource: a neutral one, and Viber for the renamed copy.
source bench/windows-programs.sh
windows_program "$work" tool "Some Vendor" "Some Tool"
windows_program "$work" viber "Viber Media S.a r.l." "Viber"

# Profiles: the prefix's own user (logged on) and four logged-off ones with hive files.
reg=$work/profiles.reg
{
    printf 'Windows Registry Editor Version 5.00\r\n\r\n'
    for index in 1 2 3 4; do
        printf '[HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\S-1-5-21-1111-2222-3333-100%d]\r\n' "$index"
        printf '"ProfileImagePath"="C:\\\\users\\\\pupil%d"\r\n\r\n' "$index"
    done
} >"$reg"
"$wine" regedit /S "$reg"
wineserver -w

python3 - "$WINEPREFIX/drive_c" "$total_files" "$work" tests/fixtures/windows <<'PY'
import os, shutil, sys
drive, total, work, fixtures = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
users = sorted(name for name in os.listdir(os.path.join(drive, "users")) if name != "Public")
homes = [os.path.join(drive, "users", name) for name in users] + [
    os.path.join(drive, "users", f"pupil{index}") for index in range(1, 5)]
for home in homes[len(users):]:
    os.makedirs(os.path.join(home, "AppData", "Local", "Microsoft", "Windows"), exist_ok=True)
    shutil.copy(os.path.join(fixtures, "anna-NTUSER.DAT"), os.path.join(home, "NTUSER.DAT"))
    shutil.copy(os.path.join(fixtures, "anna-UsrClass.dat"),
                os.path.join(home, "AppData", "Local", "Microsoft", "Windows", "UsrClass.dat"))
folders = []
for home in homes:
    for relative in ("AppData/Roaming", "AppData/Local", "Downloads", "Desktop"):
        folders.append(os.path.join(home, relative))
for relative in ("Program Files", "Program Files (x86)", "ProgramData"):
    folders.append(os.path.join(drive, relative))
real_drive = os.path.realpath(drive)
for folder in folders:  # never write outside the prefix
    assert os.path.realpath(folder).startswith(real_drive + os.sep), folder
tool = open(os.path.join(work, "tool.exe"), "rb").read()
programs = 1000
per_folder = 25  # files per folder, as in an application's install tree
for index in range(total):
    group = index // per_folder
    base = folders[group % len(folders)]
    folder = os.path.join(base, f"vendor{group % 7}", f"d{group}")
    os.makedirs(folder, exist_ok=True)
    if index % (total // programs) == 0:
        open(os.path.join(folder, f"tool{index}.exe"), "wb").write(tool)
    else:
        open(os.path.join(folder, f"file{index}.dat"), "wb").write(b"x" * 64)
shutil.copy(os.path.join(work, "viber.exe"), os.path.join(homes[-1], "Downloads", "homework.exe"))
PY

# measure RUNS COMMAND... -> "median_seconds max_rss_kb"
measure() {
    local runs=$1; shift
    local times=() peak=0
    for _ in $(seq "$runs"); do
        local started ended
        started=$(date +%s.%N)
        /usr/bin/time -o "$work/time" -f '%M' "$@" >"$work/out.json" 2>/dev/null || true
        ended=$(date +%s.%N)
        read -r rss < <(tail -n 1 "$work/time")
        times+=("$(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.3f", b - a}')")
        ((rss > peak)) && peak=$rss
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$median $peak"
}

wineserver -p # keep one wineserver for every run, outside the measured processes
wine "$agent" scan --format json >/dev/null 2>&1 || true # warm-up
read -r floor_s floor_kb < <(measure "$runs" "$wine" cmd /c exit)
read -r scan_s scan_kb < <(measure "$runs" "$wine" "$agent" scan --format json)
grep -q '"app": "viber"' "$work/out.json" || { echo "the scan missed the renamed Viber" >&2; exit 1; }
own_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["duration_ms"])' "$work/out.json")
walked=$(find "$WINEPREFIX/drive_c" -type f | wc -l)

printf '\nprefix: %d profiles, %d files in the prefix (%d generated), %d cores\n' "$profiles" "$walked" "$total_files" "$(nproc)"
printf '%-52s %10s %10s\n' "what" "seconds" "peak MB"
printf '%-52s %10s %10.1f\n' "wine cmd /c exit (Wine's own floor, median of $runs)" "$floor_s" "$(awk -v k="$floor_kb" 'BEGIN {print k/1024}')"
printf '%-52s %10s %10.1f\n' "wine sverka-agent.exe scan (median of $runs)" "$scan_s" "$(awk -v k="$scan_kb" 'BEGIN {print k/1024}')"
printf '%-52s %10s\n' "  of which the scan itself (duration_ms)" "$(awk -v m="$own_ms" 'BEGIN {printf "%.3f", m/1000}')"
