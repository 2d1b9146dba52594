#!/usr/bin/env bash
# Benchmark: Sverka's scan of this machine beside the inventory agents schools already
# know (Debian's fusioninventory-agent and ocsinventory-agent, both in --local mode), and
# a scan of a home tree of 200,000 files beside `find` over the same tree. The scan of
# this machine is measured as shipped (with the executable inventory, no cache), with
# the inventory's cache (a repeat scan), and without the inventory (--no-inventory).
# Prints wall time and peak memory (max RSS from GNU time). Installs the peers first.
# The agent's scans are measured for two builds side by side: this machine's glibc
# build (the figure before) and the static musl build the Linux packages ship, their
# runs alternating so that a change in the machine's load falls on both (target: at
# most 10% slower, at most 20% more memory).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
tree_files=${TREE_FILES:-200000}

missing=()
command -v fusioninventory-agent >/dev/null || missing+=(fusioninventory-agent)
command -v ocsinventory-agent >/dev/null || missing+=(ocsinventory-agent)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
    echo "installing peers: ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release --locked --bin sverka-agent >&2
agent=target/release/sverka-agent
musl=x86_64-unknown-linux-musl
command -v musl-gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null; }
rustup target list --installed | grep -qx "$musl" || rustup target add "$musl" >&2
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$musl" --bin sverka-agent >&2
musl_agent=target/$musl/release/sverka-agent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure NAME RUNS COMMAND... -> prints "median_seconds max_rss_kb"
measure() {
    local runs=$1; shift
    local times=() peak=0
    for _ in $(seq "$runs"); do
        local started ended
        # Bash's own clock: a `date` process on each side would add its start-up
        # (a few milliseconds on this machine) to a 20 ms scan.
        started=$EPOCHREALTIME
        /usr/bin/time -o "$work/time" -f '%M' "$@" >/dev/null 2>&1 || true
        ended=$EPOCHREALTIME
        read -r rss < <(tail -n 1 "$work/time")
        seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.4f", b - a}')
        times+=("$seconds")
        ((rss > peak)) && peak=$rss
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$median $peak"
}

# measure_builds RUNS ARGS... -> prints "glibc_s glibc_kb musl_s musl_kb": the agent's
# two builds with the same arguments, one run of each in turn.
measure_builds() {
    local runs=$1; shift
    local glibc_times=() musl_times=() glibc_s glibc_kb musl_s musl_kb glibc_peak=0 musl_peak=0
    for _ in $(seq "$runs"); do
        read -r glibc_s glibc_kb < <(measure 1 "$agent" "$@")
        read -r musl_s musl_kb < <(measure 1 "$musl_agent" "$@")
        glibc_times+=("$glibc_s") musl_times+=("$musl_s")
        ((glibc_kb > glibc_peak)) && glibc_peak=$glibc_kb
        ((musl_kb > musl_peak)) && musl_peak=$musl_kb
    done
    median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    echo "$(median_of "${glibc_times[@]}") $glibc_peak $(median_of "${musl_times[@]}") $musl_peak"
}

packages=$(dpkg-query -W -f '${db:Status-Abbrev}\n' | grep -c '^ii' || true)
echo "machine: $(nproc) cores, $packages dpkg packages installed" >&2

read -r sverka_s sverka_kb musl_s musl_kb < <(measure_builds "$runs" scan --format json --inventory)
# The same scan without the executable inventory, and with its cache (a repeat scan).
read -r noinv_s noinv_kb musl_noinv_s musl_noinv_kb < <(measure_builds "$runs" scan --format json --no-inventory)
"$agent" scan --format json --inventory-cache "$work/executables.json" >/dev/null 2>&1 || true
read -r cached_s cached_kb < <(measure "$runs" "$agent" scan --format json --inventory-cache "$work/executables.json")
mkdir -p "$work/fusion" "$work/ocs"
read -r fusion_s fusion_kb < <(measure 3 fusioninventory-agent --local "$work/fusion")
read -r ocs_s ocs_kb < <(measure 3 ocsinventory-agent --local="$work/ocs")

# A home with $tree_files files in nested folders, and one portable Telegram in it.
python3 - "$work/tree" "$tree_files" <<'PY'
import os, sys
root, total = sys.argv[1], int(sys.argv[2])
home = os.path.join(root, "home", "anna")
os.makedirs(os.path.join(root, "etc"), exist_ok=True)
open(os.path.join(root, "etc", "passwd"), "w").write("anna:x:1000:1000::/home/anna:/bin/bash\n")
per_dir = 100
for index in range(total):
    folder = os.path.join(home, "projects", f"p{index // 10000}", f"d{index // per_dir}")
    if index % per_dir == 0:
        os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, f"file{index}.txt"), "w").close()
tg = os.path.join(home, "Загрузки", "Telegram")
os.makedirs(tg, exist_ok=True)
open(os.path.join(tg, "Telegram"), "wb").write(b"\x7fELF" + b"\0" * 60)
PY
find "$work/tree" -type f >/dev/null # warm the cache for both
read -r tree_s tree_kb musl_tree_s musl_tree_kb < <(measure_builds "$runs" scan --root "$work/tree" --format json)
read -r find_s find_kb < <(measure "$runs" find "$work/tree" -type f)
"$agent" scan --root "$work/tree" --format json >"$work/tree.json" || true
grep -q "\"app\": \"telegram\"" "$work/tree.json" || { echo "the tree scan missed the portable Telegram" >&2; exit 1; }
"$musl_agent" scan --root "$work/tree" --format json >"$work/tree-musl.json" || true
grep -q "\"app\": \"telegram\"" "$work/tree-musl.json" || { echo "the musl build's tree scan missed the portable Telegram" >&2; exit 1; }

faster=$(awk -v a="$fusion_s" -v b="$ocs_s" 'BEGIN {print (a < b) ? a : b}')
printf '\n%-46s %10s %12s\n' "what" "seconds" "peak MB"
printf '%-46s %10s %12.1f\n' "sverka-agent scan --inventory (this machine, median of $runs)" "$sverka_s" "$(awk -v k="$sverka_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "  the same, static musl build (shipped)" "$musl_s" "$(awk -v k="$musl_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "  the same, repeat scan (inventory cache)" "$cached_s" "$(awk -v k="$cached_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "sverka-agent scan (no inventory: the default)" "$noinv_s" "$(awk -v k="$noinv_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "  the same, static musl build (shipped)" "$musl_noinv_s" "$(awk -v k="$musl_noinv_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "fusioninventory-agent --local" "$fusion_s" "$(awk -v k="$fusion_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "ocsinventory-agent --local" "$ocs_s" "$(awk -v k="$ocs_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "sverka-agent scan --root (home of $tree_files files)" "$tree_s" "$(awk -v k="$tree_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "  the same, static musl build (shipped)" "$musl_tree_s" "$(awk -v k="$musl_tree_kb" 'BEGIN {print k/1024}')"
printf '%-46s %10s %12.1f\n' "find -type f over the same tree (baseline)" "$find_s" "$(awk -v k="$find_kb" 'BEGIN {print k/1024}')"
ratio_of() { awk -v peer="$faster" -v own="$1" 'BEGIN {printf "%.0f", (own > 0) ? peer / own : 0}'; }
ratio=$(ratio_of "$sverka_s")
printf '\nThe default scan is %sx faster than the faster peer (target: at least 30x); with the executable inventory %sx, %sx from its cache; peak %s MB (target: at most 20 MB).\n' \
    "$(ratio_of "$noinv_s")" "$ratio" "$(ratio_of "$cached_s")" \
    "$(awk -v a="$sverka_kb" -v b="$noinv_kb" -v c="$cached_kb" 'BEGIN {m = a; if (b > m) m = b; if (c > m) m = c; printf "%.1f", m/1024}')"
change() { awk -v before="$1" -v after="$2" 'BEGIN { printf "%+.0f%%", (before > 0) ? (after - before) / before * 100 : 0 }'; }
printf 'musl build against the glibc build (time, peak memory): --inventory %s, %s; default %s, %s; the tree %s, %s (targets: at most +10%% time, +20%% memory).\n' \
    "$(change "$sverka_s" "$musl_s")" "$(change "$sverka_kb" "$musl_kb")" \
    "$(change "$noinv_s" "$musl_noinv_s")" "$(change "$noinv_kb" "$musl_noinv_kb")" \
    "$(change "$tree_s" "$musl_tree_s")" "$(change "$tree_kb" "$musl_tree_kb")"
