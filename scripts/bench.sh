#!/usr/bin/env bash
# Runs the benchmarks on this machine and rewrites docs/performance.md with the figures.
#
#   scripts/bench.sh                 # every section: issue, expiry, serve, crl, ocsp
#   scripts/bench.sh serve           # only the named sections: each replaces its own part
#                                    # of docs/performance.md (between its bench: markers,
#                                    # appended at the end when it has none yet)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ALL=(issue expiry serve crl ocsp)
for s in "$@"; do
  case " ${ALL[*]} " in *" $s "*) ;; *) echo "unknown section '$s' (choose from: ${ALL[*]})" >&2; exit 2 ;; esac
done
# shellcheck disable=SC2086 # the flags are words
cargo build --release --quiet $MTLSCTL_CARGO_FEATURES

# one section, between markers that a later partial run finds
section() {
  echo "<!-- bench:$1 -->"
  "./scripts/bench-$1.sh"
  echo "<!-- /bench:$1 -->"
}

out=$(mktemp)
if [ $# -eq 0 ]; then
  {
    echo "# Performance"
    echo
    echo "Measured by \`./scripts/bench.sh\` (or \`just bench\`) on $(date -u +%Y-%m-%d): $(nproc) cores,"
    echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) memory, $(openssl version | cut -d' ' -f1-2),"
    echo "$(rustc --version | cut -d' ' -f1-2). Each section compares mtlsctl with the plain OpenSSL"
    echo "recipe that scripts use today (or, for serve, with nginx), on the same machine in the same run."
    echo "\`./scripts/bench.sh SECTION\` reruns one section (issue, expiry, serve, crl or ocsp) and replaces only it."
    for s in "${ALL[@]}"; do
      echo
      section "$s"
    done
  } >"$out"
  mv "$out" docs/performance.md
  echo "wrote docs/performance.md"
  exit 0
fi

cp docs/performance.md "$out"
for s in "$@"; do
  part=$(mktemp)
  {
    section "$s"
  } >"$part"
  next=$(mktemp)
  awk -v name="$s" -v file="$part" '
    $0 == "<!-- bench:" name " -->" {
      while ((getline l < file) > 0) print l
      skip = 1; found = 1; next
    }
    $0 == "<!-- /bench:" name " -->" { skip = 0; next }
    !skip { print }
    END { if (!found) { print ""; while ((getline l < file) > 0) print l } }
  ' "$out" >"$next"
  mv "$next" "$out"
  rm -f "$part"
done
mv "$out" docs/performance.md
echo "updated the $* section(s) of docs/performance.md"
