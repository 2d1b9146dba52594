#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Debian's
# rpm, rpmbuild and Berkeley DB tools for real rpm databases, util-linux's setpriv,
# mingw-w64 and Wine for the Windows agent, wixl, msitools and systemd for the
# packages, and Rust's x86_64-pc-windows-gnu target),
# then checks formatting and lints (for Linux and for Windows) and runs every test of
# the workspace, the Windows ones under Wine.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v rpm >/dev/null || need_packages+=(rpm)
command -v rpmbuild >/dev/null || need_packages+=(rpm)
command -v db5.3_load >/dev/null || need_packages+=(db5.3-util)
command -v setpriv >/dev/null || need_packages+=(util-linux)
command -v x86_64-w64-mingw32-gcc >/dev/null || need_packages+=(gcc-mingw-w64-x86-64)
command -v x86_64-w64-mingw32-windres >/dev/null || need_packages+=(binutils-mingw-w64-x86-64)
command -v wine >/dev/null || need_packages+=(wine wine64)
# Packaging: wixl builds the MSI, msiinfo reads it, systemd-analyze checks the units,
# strip and objdump prepare the binaries for the deb and rpm packages.
command -v wixl >/dev/null || need_packages+=(wixl)
command -v msiinfo >/dev/null || need_packages+=(msitools)
command -v systemd-analyze >/dev/null || need_packages+=(systemd)
command -v objdump >/dev/null || need_packages+=(binutils)
if ((${#need_packages[@]})); then
    echo "installing: ${need_packages[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
windows_target=x86_64-pc-windows-gnu
rustup target list --installed | grep -qx "$windows_target" || rustup target add "$windows_target"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Windows build (the collector and the Linux-only test crate are not part of it).
cargo clippy --target "$windows_target" -p sverka-agent -p sverka-shared --all-targets --locked -- -D warnings
# The Wine tests build sverka-agent.exe themselves; building it here first keeps that
# (slow, on two cores) step out of a test's time.
cargo build --target "$windows_target" -p sverka-agent --bin sverka-agent --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
