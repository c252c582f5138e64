#!/usr/bin/env bash
# Runs the tokenizer oracle comparison. Extracts llama.cpp's vocab test
# vectors (models/ggml-vocab-*) from the git bundle that node-llama-cpp
# ships, into LLAMA_DIR (an ignored cache folder), the first time.
# usage: run_oracle.sh NODE CLIENT ORACLE_DIR CORPUS LLAMA_DIR MLXENGINE
set -euo pipefail
node=$1 client=$2 oracle=$3 corpus=$4 llama=$5 tool=$6
bundle=$oracle/node_modules/node-llama-cpp/llama/gitRelease.bundle
if [ ! -d "$oracle/node_modules" ]; then
  echo "SKIP: $oracle/node_modules is missing; run scripts/setup.sh to install the npm oracles"
  exit 77
fi
if [ -f "$bundle" ] && [ ! -f "$llama/.mlxe-extracted" ]; then
  rm -rf "$llama"
  mkdir -p "$(dirname "$llama")"
  git clone -q --no-checkout "$bundle" "$llama"
  git -C "$llama" checkout -q HEAD -- models
  touch "$llama/.mlxe-extracted"
fi
exec "$node" "$(dirname "$0")/oracle_compare.mjs" "$client" "$oracle" "$corpus" "$llama" "$tool"
