#!/usr/bin/env bash
# Sverka's proof suite at its full budget: faults, hostile input, isolation, parser
# fuzzing and the agent's resource guard, on release binaries. Prints the table of
# figures and writes it to target/proof/table.md (logs and the kept fuzz corpus go to
# target/proof/). Exits 1 when a target was missed or a part could not run.
# Needs root (tmpfs mounts, cpu cgroups). Pass part names to run only some:
#   scripts/proof.sh faults guard
set -euo pipefail
cd "$(dirname "$0")/.."

export SVERKA_TEST_RELEASE=1 # the agent and collector the suite starts: release builds
cargo build --release --locked -p sverka-agent -p sverka-collector -p sverka-tests \
    --bin sverka-agent --bin sverka-collector --bin sverka-proof >&2
mkdir -p target/proof
if (($# == 0)); then
    set -- all
fi
exec target/release/sverka-proof "$@" --artifacts target/proof --markdown target/proof/table.md
