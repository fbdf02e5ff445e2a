#!/usr/bin/env bash
# Benchmark: `mtlsctl crl --env prod` signing a CRL of 10,000 revocations (size, time to
# sign, peak memory), against `openssl ca -gencrl` over an index of the same 10,000
# serials with the same kind of key, on this machine, in this run.
# Prints a markdown section on stdout; progress goes to stderr.
#
#   scripts/bench-crl.sh              # 10,000 revocations, 10 runs each
#   N=2000 RUNS=3 scripts/bench-crl.sh   # a quicker look
#   scripts/bench-crl.sh --write      # also replace its section of docs/performance.md
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
RUNS=${RUNS:-10}

log() { echo "bench-crl: $*" >&2; }

log "building release"
. scripts/env.sh
# shellcheck disable=SC2086 # the flags are words
cargo build --release --quiet $MTLSCTL_CARGO_FEATURES >&2
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/mtlsctl"
[ -x "$BIN" ] || BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/release/mtlsctl"
[ -x "$BIN" ] || { echo "no release binary found" >&2; exit 1; }

export SSL_CERT_FILE=/dev/null
unset SSL_CERT_DIR || true
export NO_COLOR=1 MTLSCTL_NO_INPUT=1
unset MTLSCTL_WORKSPACE || true

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
now_ns() { date +%s%N; }
commas() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

# ---------------------------------------------------------------- mtlsctl

log "workspace with a one-tier P-256 CA and $N recorded revocations"
printf 'bench passphrase, long enough\n' > "$TMP/pass"
"$BIN" init "$TMP/ws" --org Bench >/dev/null
sed -i 's/^  tiers: 2 /  tiers: 1 /' "$TMP/ws/mtlsctl.yaml"
"$BIN" -C "$TMP/ws" ca init --env prod --ca-passphrase-file "$TMP/pass" >/dev/null
python3 - "$TMP/ws/pki/prod/ca/state.json" "$N" "$TMP/index.txt" <<'PY'
import json, secrets, sys
path, n, index = sys.argv[1], int(sys.argv[2]), sys.argv[3]
st = json.load(open(path))
reasons = ["key-compromise", "superseded", "cessation-of-operation", "unspecified"]
with open(index, "w") as ix:
    for i in range(n):
        s = "%032x" % (secrets.randbits(127) | (1 << 126))
        st["revocations"].append({
            "serial": s, "revoked_at": "2026-01-01T00:00:00Z",
            "reason": reasons[i % 4], "not_after": "2036-01-01T00:00:00Z",
        })
        oreason = ["keyCompromise", "superseded", "cessationOfOperation", "unspecified"][i % 4]
        ix.write("R\t360101000000Z\t260101000000Z,%s\t%s\tunknown\t/CN=bench-%d\n" % (oreason, s.upper(), i))
json.dump(st, open(path, "w"))
PY
declare -a T
for ((r = 0; r < RUNS; r++)); do
  a=$(now_ns)
  "$BIN" -C "$TMP/ws" -q crl --env prod --ca-passphrase-file "$TMP/pass" >/dev/null
  b=$(now_ns)
  T+=($(((b - a) / 1000000)))
done
M_MS=$(printf '%s\n' "${T[@]}" | median)
M_RSS=$(rss "$BIN" -C "$TMP/ws" -q crl --env prod --ca-passphrase-file "$TMP/pass")
CRL="$TMP/ws/pki/prod/ca/crl.pem"
openssl crl -in "$CRL" -outform DER -out "$TMP/m.der"
M_PEM=$(stat -c %s "$CRL")
M_DER=$(stat -c %s "$TMP/m.der")
M_N=$(openssl crl -in "$CRL" -noout -text | grep -c 'Serial Number:')
openssl crl -in "$CRL" -CAfile "$TMP/ws/pki/prod/ca/ca.crt" -noout 2>&1 | grep -q 'verify OK'
# the cost of the key derivation alone: --if-due finds nothing to do and unlocks no key
a=$(now_ns)
"$BIN" -C "$TMP/ws" -q crl --env prod --if-due >/dev/null
b=$(now_ns)
IFDUE_MS=$(((b - a) / 1000000))

# ---------------------------------------------------------------- openssl ca

log "openssl ca -gencrl over the same $N serials"
mkdir -p "$TMP/o"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/o/ca.key" 2>/dev/null
openssl req -x509 -key "$TMP/o/ca.key" -subj "/CN=Bench CA" -days 3650 -out "$TMP/o/ca.crt" 2>/dev/null
cp "$TMP/index.txt" "$TMP/o/index.txt"
echo 01 > "$TMP/o/crlnumber"
cat > "$TMP/o/ca.cnf" <<CNF
[ca]
default_ca = bench
[bench]
database = $TMP/o/index.txt
crlnumber = $TMP/o/crlnumber
certificate = $TMP/o/ca.crt
private_key = $TMP/o/ca.key
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
CNF
declare -a O
for ((r = 0; r < RUNS; r++)); do
  a=$(now_ns)
  openssl ca -config "$TMP/o/ca.cnf" -gencrl -out "$TMP/o/crl.pem" 2>/dev/null
  b=$(now_ns)
  O+=($(((b - a) / 1000000)))
done
O_MS=$(printf '%s\n' "${O[@]}" | median)
O_RSS=$(rss openssl ca -config "$TMP/o/ca.cnf" -gencrl -out "$TMP/o/crl.pem")
openssl crl -in "$TMP/o/crl.pem" -outform DER -out "$TMP/o.der"
O_DER=$(stat -c %s "$TMP/o.der")
O_N=$(openssl crl -in "$TMP/o/crl.pem" -noout -text | grep -c 'Serial Number:')

# ---------------------------------------------------------------- report

report() {
cat <<MD
## crl with $(commas "$N") revocations

Method: \`scripts/bench-crl.sh\` (only this section: \`just bench-crl\`), release build. A
one-tier workspace with a P-256 CA whose state.json records $(commas "$N") revocations
(random 128-bit serials, four reasons, none expired), signed by \`mtlsctl crl --env prod\`
(load the state, restore any revocation it lacks from the leaves and the previous CRL,
decrypt the CA key, which is PBKDF2 with 600,000 iterations, sign, write state and CRL
atomically, journal and audit). Median of $RUNS runs by date +%s%N; peak memory by
/usr/bin/time -f %M. The baseline is \`openssl ca -gencrl\` over an index.txt of the same
serials and reasons with an unencrypted P-256 key.

| measurement | entries listed | wall time (median) | peak RSS | CRL size (DER) |
|---|---:|---:|---:|---:|
| \`mtlsctl crl --env prod\` | $(commas "$M_N") | $M_MS ms | $((M_RSS / 1024)) MiB | $(commas "$M_DER") bytes ($(commas "$M_PEM") PEM) |
| \`mtlsctl crl --env prod --if-due\` (nothing due: no key unlocked) | - | $IFDUE_MS ms | | |
| \`openssl ca -gencrl\` | $(commas "$O_N") | $O_MS ms | $((O_RSS / 1024)) MiB | $(commas "$O_DER") bytes |

- Size: about $((M_DER / N)) bytes per entry (serial, revocation time, reason code); a
  gateway that fetches the CRL every hour downloads $(awk -v b="$M_DER" 'BEGIN { printf "%.0f", b / 1024 }') KiB.
  Entries of expired certificates leave the CRL (docs/revocation.md), so its size follows
  the revoked certificates still valid, not every revocation ever made.
- openssl verifies the CRL against the CA (\`openssl crl -CAfile\`: verify OK).
MD
}

if [ "${1:-}" = "--write" ]; then
  report > "$TMP/section.md"
  python3 - docs/performance.md "$TMP/section.md" <<'PY'
import re, sys
doc, sec = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n"
text = open(doc).read()
pat = re.compile(r"^## crl with .*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda m: sec + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open(doc, "w").write(text.rstrip("\n") + "\n")
PY
  log "wrote its section of docs/performance.md"
fi
report
