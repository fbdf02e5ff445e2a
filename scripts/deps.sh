#!/usr/bin/env bash
# Installs what the build and the tests' independent judges need, when missing:
# gcc, make and a full perl to build the vendored OpenSSL (the default), libssl-dev and
# pkg-config for the system-OpenSSL build; openssl, keytool, curl, nginx, promtool and
# Python's cryptography (a PBMAC1 reader) and kubernetes (the Secret schema) to judge.
# Needs root and apt-get; otherwise it only names what is missing.
set -euo pipefail
need=()
command -v openssl    >/dev/null 2>&1 || need+=(openssl)
command -v keytool    >/dev/null 2>&1 || need+=(default-jre-headless)
command -v curl       >/dev/null 2>&1 || need+=(curl)
command -v nginx      >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v promtool   >/dev/null 2>&1 || need+=(prometheus)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3    >/dev/null 2>&1 || need+=(python3)
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
# OpenSSL's Configure needs IPC::Cmd, which Debian's perl-base lacks
perl -MIPC::Cmd -e1 >/dev/null 2>&1 || need+=(perl)
command -v make       >/dev/null 2>&1 || need+=(make)
command -v cc         >/dev/null 2>&1 || need+=(gcc)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
root_apt=false
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && root_apt=true
if [ ${#need[@]} -gt 0 ]; then
  if $root_apt; then
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing (tests that need them will fail or say they skip): ${need[*]}" >&2
  fi
fi
# the pip wheel bundles a current OpenSSL (Debian's python3-cryptography links 3.0, which
# cannot read PBMAC1); PEP 668 systems refuse a plain pip install, hence the fallback
if ! python3 -c 'import cryptography, kubernetes, yaml' >/dev/null 2>&1; then
  if $root_apt || [ -n "${VIRTUAL_ENV:-}" ]; then
    echo "installing: cryptography, kubernetes (pip)" >&2
    python3 -m pip install --quiet cryptography kubernetes ||
      python3 -m pip install --quiet --break-system-packages cryptography kubernetes
  else
    echo "missing (the PBMAC1 and Kubernetes Secret tests need them): python3 -m pip install cryptography kubernetes" >&2
  fi
fi
