#!/usr/bin/env bash
# Builds every shipped artifact from source on Debian 12 with rustup, installing what it
# lacks, and prints their paths:
#   the Linux agent and collector as deb and rpm (static musl binaries, no libc needed),
#   the x64 and the x86 MSI of the Windows agent, and the Windows 7 MSIs (x64, x86).
#
#   bash packaging/build-all.sh --out dist [--version 0.1.0] [--without-win7]
#
# The Windows 7 agents are built for the tier-3 targets x86_64-win7-windows-gnu and
# i686-win7-windows-gnu with `-Z build-std` (the stable toolchain with
# RUSTC_BOOTSTRAP=1 and its rust-src, in their own target folder so the usual builds
# keep their cache); build-msi.sh checks their imports with check-win7-imports.sh.
# --without-win7 leaves them out.
#
# The parts: cargo for x86_64-unknown-linux-musl, x86_64-pc-windows-gnu and
# i686-pc-windows-gnu, then packaging/build-linux.sh and packaging/build-msi.sh.
# Binaries land in $CARGO_TARGET_DIR (default target/). Uses sccache when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="" version_args=() with_win7=1
while (($#)); do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --without-win7) with_win7=0; shift ;;
        --version) version_args=(--version "$2"); shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "usage: $0 --out DIR [--version V] [--without-win7]" >&2; exit 2; }

# Debian packages: the C compilers for musl and mingw, the packaging tools.
need=()
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v x86_64-w64-mingw32-strip >/dev/null || need+=(binutils-mingw-w64-x86-64)
command -v i686-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-i686)
command -v i686-w64-mingw32-strip >/dev/null || need+=(binutils-mingw-w64-i686)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v wixl >/dev/null || need+=(wixl)
command -v msiinfo >/dev/null || need+=(msitools)
command -v objdump >/dev/null || need+=(binutils)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
targets=(x86_64-unknown-linux-musl x86_64-pc-windows-gnu i686-pc-windows-gnu)
installed=$(rustup target list --installed)
for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target" >&2
done
if command -v sccache >/dev/null && [ -z "${RUSTC_WRAPPER:-}" ]; then
    export RUSTC_WRAPPER=sccache CARGO_INCREMENTAL=0
fi

# SQLite (libsqlite3-sys) and ring are C: for musl they are compiled by musl-gcc.
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --release --locked --target x86_64-unknown-linux-musl \
    -p sverka-agent -p sverka-collector --bin sverka-agent --bin sverka-collector >&2
cargo build --release --locked --target x86_64-pc-windows-gnu -p sverka-agent --bin sverka-agent >&2
cargo build --release --locked --target i686-pc-windows-gnu -p sverka-agent --bin sverka-agent >&2

target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$out"
bash packaging/build-linux.sh "${version_args[@]}" --out "$out" \
    --agent "$target_dir/x86_64-unknown-linux-musl/release/sverka-agent" \
    --collector "$target_dir/x86_64-unknown-linux-musl/release/sverka-collector"
bash packaging/build-msi.sh "${version_args[@]}" --out "$out" --arch x64 \
    --exe "$target_dir/x86_64-pc-windows-gnu/release/sverka-agent.exe"
bash packaging/build-msi.sh "${version_args[@]}" --out "$out" --arch x86 \
    --exe "$target_dir/i686-pc-windows-gnu/release/sverka-agent.exe"

[ "$with_win7" = 1 ] || exit 0
rustup component add rust-src >&2
win7_dir=${CARGO_TARGET_DIR:-$PWD/target}/win7
# windows_slim_errors: windows-result then imports nothing Windows 7 lacks (its rich
# error information needs Windows 8's RoOriginateErrorW).
for arch in x64 x86; do
    case "$arch" in
        x64) triple=x86_64-win7-windows-gnu linker=x86_64-w64-mingw32-gcc ;;
        x86) triple=i686-win7-windows-gnu linker=i686-w64-mingw32-gcc ;;
    esac
    linker_variable=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$triple")_LINKER
    env RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$win7_dir" RUSTFLAGS="--cfg windows_slim_errors" \
        "$linker_variable=$linker" \
        cargo build --release --locked -Z build-std=std,panic_abort --target "$triple" \
        -p sverka-agent --bin sverka-agent >&2
    bash packaging/build-msi.sh "${version_args[@]}" --out "$out" --arch "win7-$arch" \
        --exe "$win7_dir/$triple/release/sverka-agent.exe"
done
