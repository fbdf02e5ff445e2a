#!/usr/bin/env bash
# The whole test suite: `cargo test`, after installing the independent judges the tests
# use when they are missing (scripts/deps.sh), with the system OpenSSL found even where
# pkg-config is missing. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
. scripts/env.sh
# shellcheck disable=SC2086 # the flags are words
exec cargo test $MTLSCTL_CARGO_FEATURES "$@"
