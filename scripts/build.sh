#!/usr/bin/env bash
# Configures and builds the release tree in build/ (warnings are errors).
# Extra arguments go to cmake's configure step, e.g. -DMLXE_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMLXE_WERROR=ON "$@" >/dev/null
cmake --build build -j"$(nproc)"
