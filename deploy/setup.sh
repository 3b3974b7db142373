#!/usr/bin/env bash
# Installs every system package Tailor needs from Debian's archive. Idempotent and
# non-interactive: packages already present are skipped by apt. CUDA, cuBLAS and cuDNN are
# expected under /usr/local/cuda already and are not installed here.
#   deploy/setup.sh            build and runtime packages
#   deploy/setup.sh --bench    also the PyTorch used as the benchmark baseline
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libopenblas-dev libjansson-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libunistring-dev
  zlib1g-dev dataset-fashion-mnist libhdf5-dev
  libmicrohttpd-dev libuv1-dev libhiredis-dev curl python3-yaml redis-server wrk
)
bench_packages=(python3-torch python3-numpy)

want=("${packages[@]}")
[[ "${1:-}" == "--bench" ]] && want+=("${bench_packages[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: system packages present"
