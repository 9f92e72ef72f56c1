#!/usr/bin/env bash
# Runs the whole dkimd test suite, installing on Debian what the tests need
# when it is missing: the DKIM peers (dkimpy, OpenDKIM), Postfix and Cyrus
# SASL (the milter inside a real MTA), Chromium (the control panel's
# browser tests), SoftHSM (PKCS#11 keys), OpenSSL's libcrypto (RSA
# signing), PostgreSQL (the tests start throwaway servers of their own;
# no system cluster is created or needed), and bind9, unbound and dig
# (delegated DKIM and DNS UPDATE).
# Usage: scripts/test.sh [extra go test flags]
# Set DKIMD_REQUIRE_PEERS=1 to make a missing peer fail its tests instead of
# skipping them (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
/usr/bin/python3 -c 'import dkim' 2>/dev/null || need+=(python3-dkim)
/usr/bin/python3 -c 'import dns.resolver' 2>/dev/null || need+=(python3-dnspython)
command -v opendkim >/dev/null || need+=(opendkim)
command -v opendkim-testkey >/dev/null || need+=(opendkim-tools)
[ -x /usr/bin/chromium ] || need+=(chromium)
# A private Postfix with Cyrus SASL runs the milter's end-to-end tests.
[ -x /usr/sbin/postfix ] || need+=(postfix)
command -v saslpasswd2 >/dev/null || need+=(sasl2-bin)
ls /usr/lib/*/sasl2/libsasldb.so* >/dev/null 2>&1 || need+=(libsasl2-modules)
# Delegated DKIM and DNS UPDATE: a real BIND, a real recursive resolver, dig.
[ -x /usr/sbin/named ] || need+=(bind9)
[ -x /usr/sbin/unbound ] || need+=(unbound)
command -v dig >/dev/null || need+=(dnsutils)
# systemd-analyze verifies the shipped unit (contrib/systemd).
command -v systemd-analyze >/dev/null || need+=(systemd)
# SoftHSM: the PKCS#11 token the keys/pkcs11 tests generate and sign in.
{ command -v softhsm2-util >/dev/null && [ -f /usr/lib/softhsm/libsofthsm2.so ]; } || need+=(softhsm2)
# libcrypto.so.3: dkimd signs RSA through it when it loads (keys.LoadOpenSSL).
/sbin/ldconfig -p 2>/dev/null | grep -q 'libcrypto\.so\.3 ' || need+=(libssl3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    echo "test.sh: missing ${need[*]} and cannot install as $(id -un); their tests will skip" >&2
  else
    echo "test.sh: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    # Postfix without configuring (or starting) the system's instance.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    if [[ " ${need[*]} " == *" postgresql "* ]]; then
      # The package would create and start a system cluster; the tests
      # start their own (internal/store/postgres/pgtest).
      $SUDO mkdir -p /etc/postgresql-common
      echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    # No system service may start from a package's postinst (BIND and
    # unbound would fight over port 53): the tests run private instances.
    # Images made for containers forbid it already; elsewhere, for the
    # install only.
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
      $SUDO chmod 755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
  fi
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# Without cgo there is no PKCS#11 backend; the rest must still build.
CGO_ENABLED=0 go build ./...
CGO_ENABLED=0 go vet ./internal/keys/pkcs11/...
go test -race -count=1 -timeout 20m "$@" ./...
# go-smtp as patched for dkimd (third_party/go-smtp/DKIMD.md): the copy is
# upstream with third_party/go-smtp.patch applied, its own tests and the
# patch's equivalence tests pass.
scripts/third-party-patch.sh go-smtp check
(cd third_party/go-smtp && go vet . && go test -race -count=1 .)
# go-milter as patched for dkimd (third_party/go-milter/DKIMD.md): likewise;
# its own tests race in its client and test harness (unpatched too), so
# -race only where the patch is.
scripts/third-party-patch.sh go-milter check
(cd third_party/go-milter && go vet -composites=false ./... && go test -count=1 ./... && go test -race -count=1 ./internal/wire)
