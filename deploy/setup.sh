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
  libfaiss-dev dpkg-dev g++ libgomp1 libsqlite3-dev
  libmicrohttpd-dev libuv1-dev libhiredis-dev curl python3-yaml redis-server wrk
  chromium nodejs
)
bench_packages=(python3-torch python3-numpy)

want=("${packages[@]}")
[[ "${1:-}" == "--bench" ]] && want+=("${bench_packages[@]}")

missing=()
# Debian's npm conflicts with Node.js builds that bundle npm: add it only when npm is absent.
command -v npm >/dev/null || want+=(npm)
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# playwright-core (npm, pinned by tests/integration/package-lock.json) drives Debian's chromium
# in the browser test; it never downloads a browser of its own.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ! -d "$here/tests/integration/node_modules/playwright-core" ]]; then
  (cd "$here/tests/integration" && npm ci --no-audit --no-fund --loglevel=error)
fi
"$here/deploy/build_faiss_c.sh"
echo "setup: system packages present"
