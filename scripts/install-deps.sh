#!/usr/bin/env bash
# Installs the Debian 12 packages t5gemma.cpp builds and tests with. Idempotent; run as root (or with sudo).
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git xz-utils
  nlohmann-json3-dev libcli11-dev          # config/HTTP JSON, command line
  libgtest-dev libgmock-dev libbenchmark-dev   # tests, microbenchmarks
  libcurl4-openssl-dev libcpp-httplib-dev libssl-dev   # hub downloads, mock hub server, HTTP server
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev # image decoders
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
