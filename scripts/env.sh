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
