#!/usr/bin/env bash
# Bounded libFuzzer run of the chat-template fuzz target
# (fuzz/fuzz_template.c): builds it with clang (-DMLXE_FUZZ=ON,
# AddressSanitizer + UBSan) in build-fuzz/ and runs it for SECONDS
# (default 60). Crashes are written to build-fuzz/crashes/.
# usage: scripts/fuzz_template.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMLXE_CUDA=OFF -DMLXE_FUZZ=ON \
  -DMLXE_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_template
mkdir -p build-fuzz/crashes build-fuzz/corpus-template
MLXE_FUZZ_SEED_DIR=build-fuzz/corpus-template build-fuzz/fuzz/fuzz_template -max_total_time="$seconds" -max_len=8192 \
  -timeout=10 -artifact_prefix=build-fuzz/crashes/template- build-fuzz/corpus-template
