#!/usr/bin/env bash
# Writes the agent's settings into a copy of the MSI (its Property table), for Group
# Policy's Software Installation, which cannot pass properties on a command line:
#
#   packaging/msi-with-settings.sh sverka-agent-0.1.0.msi school5/sverka-agent-0.1.0.msi \
#       SERVER_URL=https://sverka.edu.example ENROLL_SECRET=12.3f9c... [CA_FILE=...] [ALLOW_HTTP=1]
#
# The copy holds the school's secret: keep it as private as the secret. Needs msitools.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 IN.msi OUT.msi NAME=VALUE..." >&2; exit 2; }
in=$1 out=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
msiinfo export "$in" Property > "$work/Property.idt"
for setting in "$@"; do
    name=${setting%%=*} value=${setting#*=}
    case "$name" in
        SERVER_URL|ENROLL_SECRET|CA_FILE|ALLOW_HTTP) ;;
        *) echo "unknown property: $name (SERVER_URL, ENROLL_SECRET, CA_FILE, ALLOW_HTTP)" >&2; exit 2 ;;
    esac
    case "$value" in
        *$'\t'*|*$'\n'*|*$'\r'*|'') echo "$name: an empty value or one with a tab or line break" >&2; exit 2 ;;
    esac
    # An earlier value of the same property is replaced.
    grep -v "^$name	" "$work/Property.idt" > "$work/Property.new" || true
    printf '%s\t%s\r\n' "$name" "$value" >> "$work/Property.new"
    mv "$work/Property.new" "$work/Property.idt"
done
mkdir -p "$(dirname "$out")"
cp "$in" "$out"
# msibuild -i replaces the whole table with the exported one plus the settings.
msibuild "$out" -i "$work/Property.idt"
echo "$out"
