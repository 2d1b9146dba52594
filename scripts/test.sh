#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Debian's
# rpm, rpmbuild and Berkeley DB tools for real rpm databases, util-linux's setpriv),
# then checks formatting and lints and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v rpm >/dev/null || need_packages+=(rpm)
command -v rpmbuild >/dev/null || need_packages+=(rpm)
command -v db5.3_load >/dev/null || need_packages+=(db5.3-util)
command -v setpriv >/dev/null || need_packages+=(util-linux)
if ((${#need_packages[@]})); then
    echo "installing: ${need_packages[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
