#!/usr/bin/env bash
# bench/cuda/package_llama.sh — packs a llama.cpp CUDA build for the GPU machine, whose calls carry
# at most 64 MiB: llama-bench, llama-quantize and the shared libraries they load (stripped), the
# libraries of this machine they link that a bare image may lack (libgomp, OpenSSL's), the gguf
# Python package of the same source (bench/cuda/gguf_bf16.py and table.py use it), and a VERSION
# line, as one .tar.xz that bench/cuda/compare.sh unpacks. The build itself (once, on a machine
# with nvcc; see bench/cuda/README.md) is not done here.
#
#   bench/cuda/package_llama.sh LLAMA_SRC LLAMA_BUILD OUT.tar.xz
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 LLAMA_SRC LLAMA_BUILD OUT.tar.xz" >&2; exit 2; }
src=$(realpath "$1")
build=$(realpath "$2")
out=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/gguf-py"
for exe in llama-bench llama-quantize; do
  [ -x "$build/bin/$exe" ] || { echo "missing $build/bin/$exe (build the targets llama-bench llama-quantize)" >&2; exit 1; }
  cp "$build/bin/$exe" "$stage/bin/"
done
# the libraries under their sonames (what the loader asks for), from the build and from the system
for exe in "$stage/bin/llama-bench" "$stage/bin/llama-quantize"; do
  LD_LIBRARY_PATH="$build/bin" ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r soname path; do
  case $path in
    "$build"/*) cp -L "$path" "$stage/bin/$soname" ;;
    */libgomp.so*|*/libcrypto.so*|*/libssl.so*) cp -L "$path" "$stage/bin/$soname" ;;
  esac
done
strip --strip-unneeded "$stage"/bin/*
cp -r "$src/gguf-py/gguf" "$stage/gguf-py/"
rm -rf "$stage/gguf-py/gguf/scripts" "$stage/gguf-py/gguf/__pycache__"
{ echo "llama.cpp $(git -C "$src" log -1 --format='%h of %cs' 2>/dev/null || echo '?') (node-llama-cpp 3.21.1's bundle)," \
       "CUDA archs $(grep -o 'CMAKE_CUDA_ARCHITECTURES:[A-Z]*=.*' "$build/CMakeCache.txt" | cut -d= -f2), packed $(date -u +%F)"
  grep -E '^(GGML_CUDA|CMAKE_BUILD_TYPE|GGML_NATIVE)[A-Z_]*:' "$build/CMakeCache.txt" || true
} >"$stage/VERSION"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - . | xz -T2 -6 >"$out"
ls -la "$stage/bin"
du -h "$out"
