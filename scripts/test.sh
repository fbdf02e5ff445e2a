#!/usr/bin/env bash
# The whole test suite: `cargo test` over every crate of the workspace, after installing
# the independent judges the tests use when they are missing (scripts/deps.sh), with the
# system OpenSSL found even where pkg-config is missing. Extra arguments go to cargo test.
# The last line is one total over every test binary: `summary: N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
. scripts/env.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# shellcheck disable=SC2086 # the flags are words
cargo test $MTLSCTL_CARGO_FEATURES "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$rc"
