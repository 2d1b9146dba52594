#!/usr/bin/env bash
# Builds the Linux packages from binaries already built (no compilation here):
#   sverka-agent_<V>_amd64.deb, sverka-collector_<V>_amd64.deb      (Astra Linux, Debian)
#   sverka-agent-<V>-1.x86_64.rpm, sverka-collector-<V>-1.x86_64.rpm (ALT Linux, RED OS)
#
#   packaging/build-linux.sh --agent target/release/sverka-agent \
#       --collector target/release/sverka-collector --out dist [--version 0.1.0]
#
# Needs dpkg-deb (dpkg) and rpmbuild (Debian's `rpm` package); binutils' strip.
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

# The newest glibc symbol version the binaries need: the packages' libc6 dependency.
glibc=$(objdump -T "$work/bin/sverka-agent" "$work/bin/sverka-collector" \
    | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)

deb() { # name, description, maintainer-scripts folder, then install commands via a function
    local name=$1 description=$2 tree=$work/deb-$1
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
Depends: libc6 (>= $glibc)
Section: admin
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

# rpm: xz payload and SHA-256 digests, which the rpm of RED OS 7 and ALT reads.
for name in sverka-agent sverka-collector; do
    rpmbuild -bb --quiet \
        --define "_topdir $work/rpm" \
        --define "_rpmdir $out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "_binary_payload w9.xzdio" \
        --define "_binary_filedigest_algorithm 8" \
        --define "sverka_version $version" \
        --define "sverka_packaging $here" \
        --define "sverka_agent_binary $work/bin/sverka-agent" \
        --define "sverka_collector_binary $work/bin/sverka-collector" \
        "$here/linux/rpm/$name.spec" >/dev/null
done
ls -1 "$out"/*.deb "$out"/*.rpm
