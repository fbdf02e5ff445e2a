#!/usr/bin/env bash
# Benchmark: requests per second of the test gateway `mtlsctl serve` against nginx, with
# the same certificates (one server certificate and one client certificate from the
# same CA, the same CRL), the same client and the same machine, with one and with four
# clients. Prints a markdown section on stdout; progress goes to stderr.
#
#   scripts/bench-serve.sh               # 500 requests per client, 3 rounds, best kept
#   N=100 ROUNDS=1 scripts/bench-serve.sh   # a quicker look
#   scripts/bench.sh serve              # run it and update only this section of docs/performance.md
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-500}          # requests per client
ROUNDS=${ROUNDS:-3}  # rounds per case; the best round counts

log() { echo "bench-serve: $*" >&2; }
. scripts/env.sh
for t in nginx curl; do
  command -v "$t" >/dev/null || { echo "bench-serve needs $t (apt-get install nginx-light curl)" >&2; exit 1; }
done

if [ -n "${MTLSCTL_BIN:-}" ]; then
  BIN=$MTLSCTL_BIN
else
  # shellcheck disable=SC2086 # the flags are words
  cargo build --release --quiet $MTLSCTL_CARGO_FEATURES >&2
  target=${CARGO_TARGET_DIR:-target}
  case $target in /*) ;; *) target="$(pwd)/$target" ;; esac
  BIN="$target/release/mtlsctl"
fi
[ -x "$BIN" ] || { echo "no release binary at $BIN" >&2; exit 1; }

export MTLSCTL_NO_INPUT=1 NO_COLOR=1
unset MTLSCTL_WORKSPACE MTLSCTL_CA_PASSPHRASE || true

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  shuf -i 20000-60000 -n 1; }
wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  exit 1
}
# the value of "key": "..." in a JSON report
field() { sed -n "s/^ *\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$2" | head -1; }

log "workspace, CA, client and server certificates"
WS=$TMP/ws
printf 'bench passphrase\n' >"$TMP/pass"
"$BIN" init "$WS" --org "Bench Org" --tenant acme >/dev/null
"$BIN" -C "$WS" ca init --env prod --ca-passphrase-file "$TMP/pass" >/dev/null
"$BIN" -C "$WS" -o json issue --tenant acme --env prod --ca-passphrase-file "$TMP/pass" >"$TMP/client.json"
"$BIN" -C "$WS" -o json issue --tenant acme --env prod --kind server --ip 127.0.0.1 --dns localhost \
  --ca-passphrase-file "$TMP/pass" >"$TMP/server.json"
CA=$WS/pki/prod/ca/ca.crt
CRL=$WS/pki/prod/ca/crl.pem
CCERT=$(field fullchain "$TMP/client.json")
CKEY=$(field key "$TMP/client.json")
SCERT=$(field fullchain "$TMP/server.json")
SKEY=$(field key "$TMP/server.json")
for f in "$CA" "$CRL" "$CCERT" "$CKEY" "$SCERT" "$SKEY"; do
  [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
done

log "nginx"
NPORT=$(free_port)
mkdir -p "$TMP/nginx/logs" "$TMP/nginx/tmp"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $SCERT;
        ssl_certificate_key $SKEY;
        ssl_client_certificate $CA;
        ssl_crl $CRL;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/stderr" &
PIDS+=($!)
wait_port "$NPORT"

log "mtlsctl serve"
SPORT=$(free_port)
"$BIN" -C "$WS" serve --env prod --listen "127.0.0.1:$SPORT" --cert "$SCERT" --key "$SKEY" \
  >/dev/null 2>"$TMP/serve.stderr" &
PIDS+=($!)
wait_port "$SPORT"

# One round: $2 curl processes at once, each making N requests in sequence, each request
# on a new TLS connection with a full handshake (Connection: close, no session
# resumption); prints requests per second of answers 200.
round() {
  local port=$1 clients=$2 i a b ok cpids=()
  a=$(date +%s.%N)
  for ((i = 0; i < clients; i++)); do
    curl -s --no-sessionid --cacert "$CA" --cert "$CCERT" --key "$CKEY" -H 'Connection: close' \
      -w '\nCODE=%{http_code}\n' "https://127.0.0.1:$port/r[1-$N]" >"$TMP/out.$i" 2>&1 &
    cpids+=($!)
  done
  wait "${cpids[@]}"
  b=$(date +%s.%N)
  ok=$(cat "$TMP"/out.* | grep -c '^CODE=200$' || true)
  rm -f "$TMP"/out.*
  [ "$ok" -eq $((clients * N)) ] || { echo "only $ok of $((clients * N)) requests answered 200 on port $port" >&2; exit 1; }
  awk -v n="$ok" -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", n / (b - a) }'
}

best() {
  local port=$1 clients=$2 r b=0 k
  for ((k = 0; k < ROUNDS; k++)); do
    r=$(round "$port" "$clients")
    [ "$r" -gt "$b" ] && b=$r
  done
  echo "$b"
}

declare -A RPS
for c in 1 4; do
  for who in nginx serve; do
    port=$NPORT
    [ "$who" = serve ] && port=$SPORT
    log "$who, $c client(s), $ROUNDS x $((c * N)) requests"
    RPS[$who-$c]=$(best "$port" "$c")
  done
done

pct() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%.0f%%", 100 * x / y }'; }
verdict() { awk -v x="$1" -v y="$2" 'BEGIN { print (x >= 0.7 * y) ? "met" : "**missed**" }'; }

echo "## serve against nginx, requests per second"
echo
echo "Measured on $(date -u +%Y-%m-%d): $(nproc) cores, nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $("$BIN" --version | head -1)"
echo "with $([ -z "$MTLSCTL_CARGO_FEATURES" ] && echo "its built-in OpenSSL" || echo "the system OpenSSL"); curl $(curl --version | head -1 | cut -d' ' -f2) with $(openssl version | cut -d' ' -f1-2)."
echo
echo "Method: \`scripts/bench-serve.sh\` makes a workspace with one environment, issues a client"
echo "certificate and a server certificate (P-256) from its CA, and starts nginx (\`worker_processes"
echo "auto\`, TLS 1.2 and 1.3, \`ssl_verify_client on\` with the CA and its CRL, \`return 200\`)"
echo "and \`mtlsctl serve --cert --key\` (echo mode: a JSON answer, one log line per request) with"
echo "those same files. The client is curl: each client is one curl process making $N requests in"
echo "sequence, each on a new TLS connection with a full TLS 1.3 handshake and the client"
echo "certificate (\`Connection: close\`, \`--no-sessionid\`); four clients are four such processes"
echo "at once. Requests per second of HTTP 200 answers, best of $ROUNDS rounds."
echo "The target (issue 14): serve at least 70% of nginx, with one and with four clients."
echo
echo "| clients | nginx req/s | mtlsctl serve req/s | serve / nginx | target 70% |"
echo "|---:|---:|---:|---:|---|"
for c in 1 4; do
  n=${RPS[nginx-$c]} s=${RPS[serve-$c]}
  echo "| $c | $n | $s | $(pct "$s" "$n") | $(verdict "$s" "$n") |"
done
echo
echo "Every request costs both servers a full handshake (ECDHE, a signature, the client chain"
echo "and CRL checked), and the clients share the 2 cores with the server, so these figures say"
echo "that serve is no bottleneck for a rehearsal or a CI suite, not that it would outrun nginx"
echo "as a production gateway. serve rebuilds its TLS context only when the CRL file changes."
