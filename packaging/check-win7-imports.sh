#!/usr/bin/env bash
# Lists the functions a Windows program imports (x86_64-w64-mingw32-objdump -p) and
# fails when it imports one that Windows 7 SP1 lacks: such a program does not start
# there ("The procedure entry point ... could not be located").
#
#   packaging/check-win7-imports.sh target/x86_64-win7-windows-gnu/release/sverka-agent.exe
#
# It reads 32-bit programs (i686-win7-windows-gnu) as well: mingw's x64 objdump knows
# both formats.
#
# The list holds what Rust's standard library and this project's dependencies are known
# to reach for on Windows 8 and newer; it is not every function newer Windows added, so
# a pass means "none of these", not "proven to run on Windows 7".
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PROGRAM.exe" >&2; exit 2; }
exe=$1
objdump=x86_64-w64-mingw32-objdump
command -v "$objdump" >/dev/null || { echo "$objdump is missing: apt-get install binutils-mingw-w64-x86-64" >&2; exit 1; }
# DLL and function pairs, as the import table names them.
imports=$("$objdump" -p "$exe" | awk '
    /^[ \t]*DLL Name: / { dll = tolower($3); next }
    dll != "" && /^[ \t]*[0-9a-f]+[ \t]+[0-9]+[ \t]+[A-Za-z_]/ { print dll, $3 }
    /^$/ { dll = "" }')
# Newer than Windows 7 SP1 (Windows 8 and later).
missing_on_win7=(
    ProcessPrng                     # bcryptprimitives.dll, Windows 10
    WaitOnAddress                   # Windows 8
    WakeByAddressSingle             # Windows 8
    WakeByAddressAll                # Windows 8
    GetSystemTimePreciseAsFileTime  # Windows 8
    GetCurrentThreadStackLimits     # Windows 8
    SetThreadDescription            # Windows 10 1607
    GetThreadDescription            # Windows 10 1607
    CreateFile2                     # Windows 8
    CopyFile2                       # Windows 8
    GetFileInformationByName        # Windows 11
    RoGetActivationFactory          # WinRT, Windows 8
    RoOriginateErrorW               # WinRT, Windows 8
)
bad=()
for function in "${missing_on_win7[@]}"; do
    if grep -qw "$function" <<<"$imports"; then
        bad+=("$(grep -w "$function" <<<"$imports" | head -n 1)")
    fi
done
# Any import from an API set (api-ms-win-*) or a DLL Windows 7 does not have.
while read -r dll _; do
    case "$dll" in
        api-ms-win-core-synch-l1-2-0.dll|api-ms-win-core-winrt-*|bcryptprimitives.dll|api-ms-win-core-path-*)
            bad+=("$dll") ;;
    esac
done <<<"$imports"
echo "$(wc -l <<<"$imports") imports from $(awk '{print $1}' <<<"$imports" | sort -u | wc -l) DLLs: $(awk '{print $1}' <<<"$imports" | sort -u | tr '\n' ' ')"
if ((${#bad[@]})); then
    printf 'not on Windows 7 SP1: %s\n' "${bad[@]}" | sort -u >&2
    exit 1
fi
echo "none of the functions known to be missing on Windows 7 SP1 is imported"
