#!/usr/bin/env bash
# Installs every Debian package that HyperGate's build, tests and benchmarks need.
# Idempotent and non-interactive: packages already present are skipped, so a second run is quick.
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
  # libraries
  libdpdk-dev liburing-dev libboost1.81-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpcap-dev libtomlplusplus-dev libcli11-dev libnats-dev libabsl-dev zlib1g-dev libfmt-dev
  # real peers and tools the tests and benchmarks drive
  nats-server wrk nginx-light tshark libhdrhistogram-java default-jre-headless
  default-jdk-headless curl python3
  iproute2 procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer it up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
