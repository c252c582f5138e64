#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every
# test twice — a release build, and a build with AddressSanitizer (with its
# leak checker) and UndefinedBehaviorSanitizer — both with warnings as errors.
# Tests that need a GPU skip themselves here and run in scripts/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== release build =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMLXE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== sanitizer build (address, leak, undefined) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMLXE_WERROR=ON -DMLXE_CUDA=OFF \
      -DMLXE_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE no-sanitizer
