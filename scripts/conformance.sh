#!/usr/bin/env bash
# Runs the x509-limbo path-validation suite through `mtlsctl verify` (see
# docs/conformance.md). Two passes:
#   1. the default template (the score the targets are stated in), which must reach
#      MIN_PASS (default 145) passed cases;
#   2. the extended template, with the IP-name (--ip), CRL (--crl) and chain-depth
#      (--max-depth) cases enabled.
# The suite and its runner live outside the crate; LIMBO_RUNNER points to run.py.
# Extra arguments go to both runs (e.g. -v to list every failure).
set -euo pipefail
cd "$(dirname "$0")/.."
runner="${LIMBO_RUNNER:-../shared/conformance/x509-limbo/run.py}"
min_pass="${MIN_PASS:-145}"
if [ ! -f "$runner" ]; then
  echo "x509-limbo runner not found at $runner: set LIMBO_RUNNER=/path/to/run.py" >&2
  exit 2
fi
. scripts/env.sh
# shellcheck disable=SC2086 # the flags are words
cargo build --release --quiet $MTLSCTL_CARGO_FEATURES
bin="${CARGO_TARGET_DIR:-target}/release/mtlsctl"

echo "== default template"
set +e
default_out=$(python3 "$runner" --mtlsctl "$bin" --invalid-codes 1 "$@")
set -e
echo "$default_out" | tail -n 25
last=$(echo "$default_out" | tail -n 1)
passed=$(echo "$last" | awk '{print $1}')

echo
echo "== with --ip, --crl and --max-depth cases"
set +e
python3 "$runner" --mtlsctl "$bin" --invalid-codes 1 --ip-flag=--ip --crl-flag=--crl --depth-flag=--max-depth "$@" | tail -n 3
set -e

if [ "${passed:-0}" -lt "$min_pass" ]; then
  echo "conformance: $passed passed, below the floor of $min_pass" >&2
  exit 1
fi
echo "conformance: $passed passed (floor $min_pass)"
