#!/usr/bin/env bash
# Builds the Windows agent's MSI on Linux with wixl (Debian's `wixl` and `msitools`)
# from an sverka-agent.exe already cross-compiled (no compilation here):
#
#   cargo build --release --target x86_64-pc-windows-gnu --bin sverka-agent
#   packaging/build-msi.sh --exe target/x86_64-pc-windows-gnu/release/sverka-agent.exe \
#       --out dist [--version 0.1.0]                     -> sverka-agent-0.1.0.msi (x64)
#
#   cargo build --release --target i686-pc-windows-gnu --bin sverka-agent
#   packaging/build-msi.sh --arch x86 --exe target/i686-pc-windows-gnu/release/sverka-agent.exe \
#       --out dist                                       -> sverka-agent-0.1.0-x86.msi
#
#   packaging/build-msi.sh --arch win7-x64 --exe .../sverka-agent.exe (the Windows 7
#       build, see build-all.sh) --out dist            -> sverka-agent-0.1.0-win7-x64.msi
#   packaging/build-msi.sh --arch win7-x86 --exe .../sverka-agent.exe (the 32-bit
#       Windows 7 build) --out dist                    -> sverka-agent-0.1.0-win7-x86.msi
#
# All have the same properties for Group Policy and the same upgrade code, so each
# replaces the others. The x86 ones install into the 32-bit Program Files and registry
# view (on 64-bit Windows: `Program Files (x86)`, `WOW6432Node`), where its agent reads
# its settings; the agent scans the 64-bit system all the same.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exe="" out="" version="" arch=x64
while (($#)); do
    case "$1" in
        --exe) exe=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        --arch) arch=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$exe" ] && [ -n "$out" ] || { echo "usage: $0 --exe sverka-agent.exe --out DIR [--arch x64|x86|win7-x64|win7-x86] [--version V]" >&2; exit 2; }
case "$arch" in
    x64) machine=x86-64 strip=x86_64-w64-mingw32-strip program_files=ProgramFiles64Folder win64=yes suffix="" wixl_arch=x64 ;;
    x86) machine="Intel 80386" strip=i686-w64-mingw32-strip program_files=ProgramFilesFolder win64=no suffix=-x86 wixl_arch=x86 ;;
    # The x64 MSI around the agent built for x86_64-win7-windows-gnu (build-all.sh).
    win7-x64) machine=x86-64 strip=x86_64-w64-mingw32-strip program_files=ProgramFiles64Folder win64=yes suffix=-win7-x64 wixl_arch=x64 ;;
    # The x86 MSI around the agent built for i686-win7-windows-gnu.
    win7-x86) machine="Intel 80386" strip=i686-w64-mingw32-strip program_files=ProgramFilesFolder win64=no suffix=-win7-x86 wixl_arch=x86 ;;
    *) echo "--arch is x64, x86, win7-x64 or win7-x86, not $arch" >&2; exit 2 ;;
esac
# An exe of the other architecture would install and never start.
objdump -f "$exe" | grep -q "architecture: i386:x86-64" && exe_machine=x86-64 || exe_machine="Intel 80386"
if [ "$exe_machine" != "$machine" ]; then
    echo "$exe is an $exe_machine program, not one for an $arch MSI" >&2
    exit 1
fi
# The Windows 7 MSI takes only a program that imports nothing Windows 7 lacks.
[[ "$arch" != win7-* ]] || bash "$here/check-win7-imports.sh" "$exe" >&2
if [ -z "$version" ]; then
    version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml")
fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$exe" "$work/sverka-agent.exe"
"$strip" --strip-all "$work/sverka-agent.exe"
# wixl's own warnings about attributes it ignores go to stderr; failures still fail.
# wixl finds sources relative to the .wxs file.
cp "$here/windows/sverka-agent.wxs" "$work/"
out=$(cd "$out" && pwd)
(cd "$work" && wixl -a "$wixl_arch" -D "Version=$version" -D AgentExe=sverka-agent.exe \
    -D "ProgramFilesFolder=$program_files" -D "Win64=$win64" \
    -o "$out/sverka-agent-$version$suffix.msi" sverka-agent.wxs 2> >(grep -v -e '^$' -e 'GLib-GObject-WARNING' >&2))
echo "$out/sverka-agent-$version$suffix.msi"
