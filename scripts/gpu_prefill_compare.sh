#!/usr/bin/env bash
# scripts/gpu_prefill_compare.sh BEFORE_TREE — prefill speed of this tree
# against another checkout (BEFORE_TREE, e.g. main) on the same GPU in one
# call, plus this tree's CUDA tests: runs scripts/gpu_check.sh here (build,
# CUDA tests; no ops bench, ctest, memcheck or model bench), builds
# mlxe-bench-model in BEFORE_TREE meanwhile, makes the random-weight model
# (bench/make_random_model.py) and its 8-/4-bit conversions (group 64), then
# times prefill of 512 tokens (mlxe-bench-model, best of 2, a few decoded
# tokens) alternating before/after per variant, and this tree again with
# the old kernels switched back on by their knobs (MLXE_CUDA_ATTENTION=warp,
# MLXE_CUDA_EXPAND_MB=256) to split the gain between the parts. The device
# tool brings back only a few files: the results go to stdout, and
# MLXE_BUNDLE_LOGS=1 gathers every log of $OUT into $OUT/all.log at the end.
# Knobs: MLXE_BENCH_MODELS (default llama-3.2-1b), MLXE_BENCH_QUANT (default
# "8 4"), MLXE_BENCH_GEN (default 16), MLXE_BENCH_ROUNDS (default "1"; "1 2"
# alternates twice). Logs in $OUT.
set -uo pipefail
before=$(cd "${1:?usage: $0 BEFORE_TREE}" && pwd)
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build-gpu/out}
mkdir -p "$OUT"
models_dir=/tmp/mlxe-bench-models
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || py=python3
gen=${MLXE_BENCH_GEN:-16}
quant=${MLXE_BENCH_QUANT:-8 4}

# the models, in the background (numpy, one core each)
(
  for m in ${MLXE_BENCH_MODELS:-llama-3.2-1b}; do
    [ -f "$models_dir/$m/model.safetensors" ] || "$py" bench/make_random_model.py --out "$models_dir" "$m"
    for bits in $quant; do
      [ -d "$models_dir/$m-q$bits" ] ||
        "$py" bench/quantize_model.py "$models_dir/$m" "$models_dir/$m-q$bits" --bits "$bits" --group-size 64 &
    done
    wait
  done
) >"$OUT/models.log" 2>&1 &
models_pid=$!

# this tree: build and CUDA tests
JOBS=12 MLXE_GPU_SKIP="opsbench ctest memcheck modelbench" scripts/gpu_check.sh >"$OUT/gpu_check.log" 2>&1
echo "gpu_check rc $?"
grep -E "FAIL|PASS|^== |relative error|failed|\[  (ERROR|FAILED)" "$OUT/gpu_check.log" | head -80

# the other tree: the bench tool only, with the dependencies gpu_check found
extra=()
if [ -d /tmp/mlxe-deps ]; then
  libdir=/tmp/mlxe-deps/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  command -v pkg-config >/dev/null || extra+=("-DPKG_CONFIG_EXECUTABLE=/tmp/mlxe-deps/usr/bin/pkgconf")
  extra+=("-DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed -Wl,--allow-shlib-undefined -Wl,-rpath-link,$libdir"
          "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--as-needed -Wl,-rpath-link,$libdir")
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if ! { cmake -S "$before" -B "$before/build-gpu" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMLXE_CUDA=ON \
         -DMLXE_CUDA_ARCHS="${MLXE_CUDA_ARCHS:-90-real}" "${extra[@]}" &&
       cmake --build "$before/build-gpu" -j16 --target bench_bench_model; } >"$OUT/build-before.log" 2>&1; then
  tail -20 "$OUT/build-before.log"; echo "FAIL: build of $before"
fi
wait "$models_pid"
tail -3 "$OUT/models.log"

bench() { # label tool model [env...]
  local label=$1 tool=$2 model=$3; shift 3
  env "$@" timeout 100 "$tool" --model "$models_dir/$model" --device cuda --prompt-tokens 512 --gen-tokens "$gen" \
    --repeat 2 --ubatch 512 >"$OUT/bench-$label-$model.md" 2>&1
  printf '%-34s %-20s %s\n' "$label" "$model" "$(grep -E 'prefill' "$OUT/bench-$label-$model.md" | tr -s ' ' | head -2 | tr '\n' ' ')"
}
echo "==== prefill 512 tokens: before = $before, after = this tree ===="
for m in ${MLXE_BENCH_MODELS:-llama-3.2-1b}; do
  variants=("$m")
  for bits in $quant; do variants+=("$m-q$bits"); done
  for round in ${MLXE_BENCH_ROUNDS:-1}; do
    for v in "${variants[@]}"; do
      bench "before-$round" "$before/build-gpu/bench/mlxe-bench-model" "$v"
      bench "after-$round" build-gpu/bench/mlxe-bench-model "$v"
    done
  done
  bench "after-attention-warp" build-gpu/bench/mlxe-bench-model "$m" MLXE_CUDA_ATTENTION=warp
  for v in "${variants[@]:1}"; do
    bench "after-expand-mb-256" build-gpu/bench/mlxe-bench-model "$v" MLXE_CUDA_EXPAND_MB=256
  done
done

if [ "${MLXE_BUNDLE_LOGS:-0}" = 1 ]; then
  for f in "$OUT"/*; do [ "$f" = "$OUT/all.log" ] || { echo "=== $(basename "$f")"; cat "$f"; rm -f "$f"; }; done \
    >>"$OUT/all.log" 2>&1
fi
