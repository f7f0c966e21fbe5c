#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to for real: Apache as the
# upstream, and the firewall tools the kernel-ban tests drive inside network
# namespaces they create; and promtool, which checks the Prometheus alert
# rules. Idempotent: does nothing, quietly, when all are there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
[ -x /usr/sbin/apache2 ] || packages+=(apache2)
command -v nft >/dev/null 2>&1 || packages+=(nftables)
command -v ipset >/dev/null 2>&1 || packages+=(ipset)
command -v iptables >/dev/null 2>&1 || packages+=(iptables)
command -v conntrack >/dev/null 2>&1 || packages+=(conntrack)
command -v ip >/dev/null 2>&1 || packages+=(iproute2)
# TLS tests: certificates made with openssl, real clients curl (with HTTP/2) and Node's http2.
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v curl >/dev/null 2>&1 || packages+=(curl)
# Cluster mode: a real Redis the tests start on a free loopback port.
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
[ -x /usr/bin/systemd-analyze ] || packages+=(systemd)   # deploy tests: verify and score deploy/portcullis.service
command -v setcap >/dev/null 2>&1 || packages+=(libcap2-bin)   # deploy tests: the image's file capabilities
command -v logrotate >/dev/null 2>&1 || packages+=(logrotate)   # deploy tests: deploy/logrotate/portcullis, run for real

if [ ${#packages[@]} -gt 0 ]; then
  echo "test setup: installing Debian packages: ${packages[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "test setup: need root or sudo to run: apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  # Debian starts the packaged Apache on :80; the tests run their own instances.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet apache2 2>/dev/null; then
    "${sudo[@]}" systemctl stop apache2 || true
  fi
  # The same for Redis on :6379.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    "${sudo[@]}" systemctl stop redis-server || true
  fi
fi

# promtool without the prometheus package (300 MB, and a server we do not
# want running): the .deb is only downloaded and unpacked into the repo's
# cache, where test/support/promtool.ts finds it. promtool needs only libc.
promtool_dir=.cache/promtool
if ! command -v promtool >/dev/null 2>&1 && [ ! -x "$promtool_dir/usr/bin/promtool" ]; then
  echo "test setup: unpacking promtool into $promtool_dir"
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  # apt-get download needs no root, only package lists; on a fresh machine
  # there are none yet, so update once and try again.
  if ! (cd "$download" && apt-get download -qq prometheus >"$download/log" 2>&1); then
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq
    elif command -v sudo >/dev/null 2>&1; then
      sudo apt-get update -qq
    else
      cat "$download/log" >&2
      echo "test setup: apt-get download prometheus failed; need root or sudo to run apt-get update" >&2
      exit 1
    fi
    if ! (cd "$download" && apt-get download -qq prometheus >"$download/log" 2>&1); then
      cat "$download/log" >&2
      exit 1
    fi
  fi
  dpkg-deb -x "$download"/prometheus_*.deb "$download/root"
  # Only promtool is kept: the server binary next to it is another 50 MB.
  mkdir -p "$promtool_dir/usr/bin"
  cp "$download/root/usr/bin/promtool" "$promtool_dir/usr/bin/promtool"
  "$promtool_dir/usr/bin/promtool" --version >/dev/null
fi
