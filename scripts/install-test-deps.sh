#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to for real: Apache as the
# upstream, and the firewall tools the kernel-ban tests drive inside network
# namespaces they create. Idempotent: does nothing when all are there.
set -euo pipefail

packages=()
[ -x /usr/sbin/apache2 ] || packages+=(apache2)
command -v nft >/dev/null 2>&1 || packages+=(nftables)
command -v ipset >/dev/null 2>&1 || packages+=(ipset)
command -v iptables >/dev/null 2>&1 || packages+=(iptables)
command -v conntrack >/dev/null 2>&1 || packages+=(conntrack)
command -v ip >/dev/null 2>&1 || packages+=(iproute2)

if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

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
