#!/usr/bin/env bash
# Installs and starts what ward's build and test suite need on a fresh Debian/Ubuntu machine.
# Idempotent: re-running it skips what is already there. Needs root (or sudo) for apt-get.
#
#   system packages  iproute2 (network namespaces for live-capture tests), curl, dnsmasq (DNS in
#                    namespaces), nginx, vsftpd, openssh-server, redis-server, busybox-static
#                    (telnetd) (scanner lab),
#                    postgresql (hub store tests), haproxy (bench-hub's load balancer in front
#                    of several hub replicas; run by the bench as a child, never as a service),
#                    build tools for -sys crates
#   python packages  aiosmtpd (a real SMTP server for notification tests), stix2-validator 3.2.0
#                    and stix2 (every STIX object the hub writes is checked by OASIS's tools)
#   services         PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`)
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "setup: run as root or install sudo: apt-get needs root" >&2; exit 1
    fi
fi

APT_PACKAGES=(
    build-essential pkg-config
    iproute2 iputils-ping curl dnsutils dnsmasq-base
    nginx-light vsftpd openssh-server redis-server busybox-static
    postgresql postgresql-client
    haproxy
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # Services must not auto-start on install: the tests start their own instances.
    echo -e '#!/bin/sh\nexit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d
fi

# module=pip requirement. stix2-validator 3.2.0 is the last release that ships its schemas.
# taxii2-client reads the hub's TAXII server in tests/taxii.rs; medallion is bench-taxii's peer.
PIP_PACKAGES=(aiosmtpd=aiosmtpd stix2validator=stix2-validator==3.2.0 stix2=stix2 taxii2client=taxii2-client==2.3.0 medallion=medallion==3.0.0)
for entry in "${PIP_PACKAGES[@]}"; do
    module=${entry%%=*}
    requirement=${entry#*=}
    python3 -c "import ${module}" 2>/dev/null || python3 -m pip install -q "$requirement"
done

# PostgreSQL: start the cluster if it is not answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    cluster=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$cluster" ]; then
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
echo "setup: ready"
