#!/usr/bin/env python3
"""When `apt-get update` could not fetch an i386 package index (a Debian mirror caught
mid-sync answers "File has unexpected size" for as long as it is out of step), a
library installed for both architectures cannot be installed for i386: it must be the
same version in both, and the amd64 index offers versions apt knows no i386 build of.

This script, run by scripts/test.sh only after the install failed:
  1. fetches every i386 index that is missing beside its amd64 one, as the mirror
     serves it, and places it where `apt-get update` would have (its size and hash
     are not the ones the suite's Release file names: say so, and use it only on a
     test machine);
  2. writes an apt preferences file (the path in argv[1]) that pins each library
     installed for both architectures, whose amd64 and i386 candidates differ, to the
     highest version both architectures have.
Prints what it did; exits 1 when it found nothing to mend (no index missing, no
versions apart).
"""

import lzma
import os
import re
import subprocess
import sys
import urllib.request

LISTS = "/var/lib/apt/lists"


def missing_i386_indexes():
    """The list-file names of the i386 indexes missing beside an amd64 one."""
    names = os.listdir(LISTS)
    missing = []
    for name in names:
        if "_binary-amd64_Packages" not in name:
            continue
        stem = name.split("_binary-amd64_Packages")[0] + "_binary-i386_Packages"
        if not any(other.startswith(stem) for other in names):
            missing.append(stem)
    return sorted(set(missing))


def fetch(list_name):
    """Fetches an index by its list-file name (the URI without its scheme, `/` as
    `_`); the uncompressed text, or None."""
    path = list_name.replace("_", "/") + ".xz"
    for scheme in ("http", "https"):
        url = f"{scheme}://{path}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return url, lzma.decompress(response.read())
        except Exception as error:  # a failed try is reported by the caller
            last = f"{url}: {error}"
    print(f"cannot fetch {last}", file=sys.stderr)
    return None, None


def multi_arch_same(index):
    packages = []
    for stanza in index.decode("utf-8", "replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" ")
        )
        if fields.get("Multi-Arch") == "same" and "Package" in fields:
            packages.append(fields["Package"])
    return sorted(set(packages))


def version_tables(packages):
    """{name: (candidate, [versions])} for each `pkg` and `pkg:i386` apt knows."""
    names = [name for package in packages for name in (package, f"{package}:i386")]
    tables = {}
    for start in range(0, len(names), 400):
        output = subprocess.run(
            ["apt-cache", "policy", *names[start : start + 400]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        current = None
        for line in output.splitlines():
            if not line.startswith(" "):
                current = line.rstrip(":")
                tables[current] = [None, []]
            elif current and line.strip().startswith("Candidate:"):
                tables[current][0] = line.split(":", 1)[1].strip()
            elif current and re.match(r"^ (\*\*\*| {3}) \S+ -?\d+$", line):
                tables[current][1].append(line.split()[-2])
    return tables


def newest(versions):
    """The highest of `versions` by dpkg's rules."""
    best = None
    for version in versions:
        if best is None or subprocess.run(["dpkg", "--compare-versions", version, "gt", best]).returncode == 0:
            best = version
    return best


def main():
    preferences = sys.argv[1]
    fetched = 0
    for list_name in missing_i386_indexes():
        url, index = fetch(list_name)
        if index is None:
            continue
        with open(os.path.join(LISTS, list_name), "wb") as out:
            out.write(index)
        fetched += 1
        print(f"placed {url} as apt's index, unverified (the mirror is mid-sync)", file=sys.stderr)
    packages = set()
    for name in os.listdir(LISTS):
        if "_binary-i386_Packages" in name and not name.endswith((".lz4", ".xz", ".gz")):
            with open(os.path.join(LISTS, name), "rb") as index:
                packages.update(multi_arch_same(index.read()))
    tables = version_tables(sorted(packages))
    pins = []
    for package in sorted(packages):
        amd64, i386 = tables.get(package), tables.get(f"{package}:i386")
        if not amd64 or not i386 or amd64[0] in (None, "(none)") or amd64[0] == i386[0]:
            continue
        common = newest(set(amd64[1]) & set(i386[1]))
        if common:
            pins.append((package, common))
    with open(preferences, "w") as out:
        for package, version in pins:
            out.write(f"Package: {package} {package}:i386\nPin: version {version}\nPin-Priority: 1001\n\n")
    for package, version in pins:
        print(f"pinned {package} (amd64 and i386) to {version}", file=sys.stderr)
    return 0 if fetched or pins else 1


if __name__ == "__main__":
    sys.exit(main())
