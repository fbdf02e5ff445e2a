#!/usr/bin/env bash
# Runs every benchmark on this machine and rewrites docs/performance.md with the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
# shellcheck disable=SC2086 # the flags are words
cargo build --release --quiet $MTLSCTL_CARGO_FEATURES
out=$(mktemp)
{
  echo "# Performance"
  echo
  echo "Measured by \`./scripts/bench.sh\` (or \`just bench\`) on $(date -u +%Y-%m-%d): $(nproc) cores,"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) memory, $(openssl version | cut -d' ' -f1-2),"
  echo "$(rustc --version | cut -d' ' -f1-2). Each section compares mtlsctl with the plain OpenSSL"
  echo "recipe that scripts use today, on the same machine in the same run."
  echo
  ./scripts/bench-issue.sh
  echo
  ./scripts/bench-expiry.sh
  echo
  ./scripts/bench-crl.sh
  echo
  ./scripts/bench-ocsp.sh
} > "$out"
mv "$out" docs/performance.md
echo "wrote docs/performance.md"
