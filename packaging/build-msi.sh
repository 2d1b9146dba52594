#!/usr/bin/env bash
# Builds the Windows agent's MSI on Linux with wixl (Debian's `wixl` and `msitools`)
# from an sverka-agent.exe already cross-compiled (no compilation here):
#
#   cargo build --release --target x86_64-pc-windows-gnu --bin sverka-agent
#   packaging/build-msi.sh --exe target/x86_64-pc-windows-gnu/release/sverka-agent.exe \
#       --out dist [--version 0.1.0]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exe="" out="" version=""
while (($#)); do
    case "$1" in
        --exe) exe=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$exe" ] && [ -n "$out" ] || { echo "usage: $0 --exe sverka-agent.exe --out DIR [--version V]" >&2; exit 2; }
if [ -z "$version" ]; then
    version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml")
fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$exe" "$work/sverka-agent.exe"
x86_64-w64-mingw32-strip --strip-all "$work/sverka-agent.exe"
# wixl's own warnings about attributes it ignores go to stderr; failures still fail.
# wixl finds sources relative to the .wxs file.
cp "$here/windows/sverka-agent.wxs" "$work/"
out=$(cd "$out" && pwd)
(cd "$work" && wixl -a x64 -D "Version=$version" -D AgentExe=sverka-agent.exe \
    -o "$out/sverka-agent-$version.msi" sverka-agent.wxs 2> >(grep -v -e '^$' -e 'GLib-GObject-WARNING' >&2))
echo "$out/sverka-agent-$version.msi"
