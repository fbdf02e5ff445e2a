# Sourced by the scripts. The openssl crate finds the system OpenSSL through pkg-config;
# a fresh Debian with only Rust and libssl-dev may lack pkg-config, so point it at the
# library and headers directly in that case.
if ! command -v pkg-config >/dev/null 2>&1 && [ -z "${OPENSSL_DIR:-}${OPENSSL_LIB_DIR:-}" ]; then
  for d in "/usr/lib/$(uname -m)-linux-gnu" /usr/lib64 /usr/lib; do
    if [ -e "$d/libssl.so" ]; then
      export OPENSSL_LIB_DIR="$d"
      break
    fi
  done
  if [ -e /usr/include/openssl/ssl.h ]; then
    export OPENSSL_INCLUDE_DIR=/usr/include
  fi
fi

# The default build compiles OpenSSL 3.6 from source (feature vendored-openssl), which
# needs a C compiler, make and a full perl (IPC::Cmd). Where they are missing the scripts
# build against the system OpenSSL instead (no pbmac1 PFX target before OpenSSL 3.4).
# MTLSCTL_CARGO_FEATURES holds the cargo flags for that choice; set it beforehand to force
# one ("" for vendored, "--no-default-features" for the system OpenSSL).
if [ -z "${MTLSCTL_CARGO_FEATURES+set}" ]; then
  if perl -MIPC::Cmd -e1 >/dev/null 2>&1 && command -v make >/dev/null 2>&1 &&
    command -v cc >/dev/null 2>&1; then
    MTLSCTL_CARGO_FEATURES=""
  else
    MTLSCTL_CARGO_FEATURES="--no-default-features"
    echo "note: building against the system OpenSSL: install perl (with IPC::Cmd), make and gcc for the vendored OpenSSL 3.6 (scripts/deps.sh does it as root)" >&2
  fi
fi
export MTLSCTL_CARGO_FEATURES
