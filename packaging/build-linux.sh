#!/usr/bin/env bash
# Builds the Linux packages from binaries already built (no compilation here):
#   sverka-agent_<V>_amd64.deb, sverka-collector_<V>_amd64.deb      (Astra Linux, Debian)
#   sverka-agent-<V>-1.x86_64.rpm, sverka-collector-<V>-1.x86_64.rpm (ALT Linux, RED OS)
#
#   packaging/build-linux.sh \
#       --agent target/x86_64-unknown-linux-musl/release/sverka-agent \
#       --collector target/x86_64-unknown-linux-musl/release/sverka-collector \
#       --out dist [--version 0.1.0]
#
# The shipped binaries are static (musl, see README.md): their packages depend on no
# libc. A dynamically linked binary is packaged only when it needs no glibc newer than
# the floor below (RED OS 7.3's 2.17), with its libc dependency; one that needs a newer
# glibc is refused, since it would not start on Astra Linux 1.7, RED OS 7.3 or ALT 8-9.
#
# Needs dpkg-deb (dpkg) and rpmbuild (Debian's `rpm` package); binutils' strip and
# objdump.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
agent="" collector="" out="" version=""
while (($#)); do
    case "$1" in
        --agent) agent=$2; shift 2 ;;
        --collector) collector=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$agent" ] && [ -n "$collector" ] && [ -n "$out" ] || {
    echo "usage: $0 --agent BIN --collector BIN --out DIR [--version V]" >&2; exit 2; }
if [ -z "$version" ]; then
    version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Packages carry stripped binaries (debug builds shrink from tens of MB to a few).
strip_into() { install -D -m 0755 "$1" "$2"; strip --strip-all "$2"; }
strip_into "$agent" "$work/bin/sverka-agent"
strip_into "$collector" "$work/bin/sverka-collector"

# What each binary needs from the system: nothing (static), or a glibc no newer than
# the floor. Sets libc_<name> to "" (static) or the newest GLIBC_ version it needs.
glibc_floor=2.17
check_libc() { # name
    local binary=$work/bin/$1 needed newest
    needed=$(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }')
    if [ -z "$needed" ]; then
        printf -v "libc_${1//-/_}" '%s' ""
        return
    fi
    newest=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    if [ -z "$newest" ] || [ "$(printf '%s\n%s\n' "$glibc_floor" "$newest" | sort -V | tail -1)" != "$glibc_floor" ]; then
        echo "refusing $1: it needs glibc ${newest:-(unknown)}, newer than the supported floor $glibc_floor" \
            "(RED OS 7.3 has 2.17, Astra Linux 1.7 2.28); build it for x86_64-unknown-linux-musl" \
            "(see packaging/README.md)" >&2
        exit 1
    fi
    printf -v "libc_${1//-/_}" '%s' "$newest"
}
check_libc sverka-agent
check_libc sverka-collector

deb() { # name, description; the files come from deb_files_<name>
    local name=$1 description=$2 tree=$work/deb-$1 libc_var=libc_${1//-/_} depends=""
    [ -z "${!libc_var}" ] || depends="Depends: libc6 (>= ${!libc_var})"$'\n'
    mkdir -p "$tree/DEBIAN"
    "deb_files_$name" "$tree"
    local size
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    cat > "$tree/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: amd64
Maintainer: Sverka <sverka@example.invalid>
Installed-Size: $size
${depends}Section: admin
Priority: optional
Homepage: https://example.invalid/sverka
Description: $description
CONTROL
    install -m 0755 "$here/linux/deb/${name#sverka-}/postinst" "$here/linux/deb/${name#sverka-}/prerm" \
        "$here/linux/deb/${name#sverka-}/postrm" "$tree/DEBIAN/"
    (cd "$tree" && find etc -type f | sed 's|^|/|' | sort) > "$tree/DEBIAN/conffiles"
    dpkg-deb --root-owner-group -Zxz --build "$tree" "$out/${name}_${version}_amd64.deb" >/dev/null
}
deb_files_sverka-agent() {
    local tree=$1
    install -D -m 0755 "$work/bin/sverka-agent" "$tree/usr/bin/sverka-agent"
    install -D -m 0644 "$here/linux/sverka-agent.service" "$tree/lib/systemd/system/sverka-agent.service"
    install -D -m 0600 "$here/linux/agent.toml" "$tree/etc/sverka/agent.toml"
    install -D -m 0644 "$here/README.md" "$tree/usr/share/doc/sverka-agent/README.md"
}
deb_files_sverka-collector() {
    local tree=$1
    install -D -m 0755 "$work/bin/sverka-collector" "$tree/usr/bin/sverka-collector"
    install -D -m 0644 "$here/linux/sverka-collector.service" "$tree/lib/systemd/system/sverka-collector.service"
    install -D -m 0644 "$here/linux/sverka-collector.sysusers" "$tree/usr/lib/sysusers.d/sverka-collector.conf"
    install -D -m 0644 "$here/linux/collector.toml" "$tree/etc/sverka/collector.toml"
    install -D -m 0644 "$here/README.md" "$tree/usr/share/doc/sverka-collector/README.md"
}
deb sverka-agent "Sverka agent: finds banned and approved messengers on a school PC
 Scans this PC for banned foreign messengers and approved ones and reports to the
 education authority's Sverka collector, as the sverka-agent systemd service."
deb sverka-collector "Sverka collector: receives school PCs' reports on messengers
 Receives the Sverka agents' reports and keeps, per organization, which PCs carry
 banned messengers; the sverka-collector systemd service, data in /var/lib."

# rpm: xz payload and SHA-256 file digests, which the rpm of RED OS 7.3 (4.11) and of
# ALT (4.13) read; no rich or versioned rpmlib features beyond those. A static binary's
# package has automatic requirements off (they would only be the scriptlets' /bin/sh,
# which the spec names itself).
for name in sverka-agent sverka-collector; do
    libc_var=libc_${name//-/_}
    autoreq=yes
    [ -n "${!libc_var}" ] || autoreq=no
    rpmbuild -bb --quiet \
        --define "_topdir $work/rpm" \
        --define "_rpmdir $out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "_binary_payload w6.xzdio" \
        --define "sverka_autoreqprov $autoreq" \
        --define "_binary_filedigest_algorithm 8" \
        --define "sverka_version $version" \
        --define "sverka_packaging $here" \
        --define "sverka_agent_binary $work/bin/sverka-agent" \
        --define "sverka_collector_binary $work/bin/sverka-collector" \
        "$here/linux/rpm/$name.spec" >/dev/null
done
ls -1 "$out"/*.deb "$out"/*.rpm
