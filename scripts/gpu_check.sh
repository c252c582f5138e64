#!/usr/bin/env bash
# scripts/gpu_check.sh — everything the GPU machine checks, in one command:
# builds the project with CUDA (-DMLXE_CUDA=ON, -j16), runs the CUDA tests
# (required to find a GPU: MLXE_REQUIRE_GPU=1) and then every other test,
# times the CUDA ops against the card's copy bandwidth (bench_cuda_ops), and
# runs the CUDA op tests once more under compute-sanitizer (memcheck), and
# benchmarks whole models (bench/bench_model.c) on the CPU and the GPU side by
# side on random-weight models of real shapes (bench/make_random_model.py,
# BF16, and 8-/4-bit conversions). Logs go to $OUT (or build-gpu/out); the
# last lines printed are a summary.
#
# Knobs: MLXE_CUDA_ARCHS (e.g. 90-real: build for this card only, faster),
# MLXE_GPU_SKIP (words: tests opsbench ctest memcheck modelbench; tests: build only, for timing runs),
# MLXE_BENCH_MODELS (default "qwen2.5-0.5b llama-3.2-1b"),
# MLXE_BENCH_QUANT (default "8 4": bit widths converted and benchmarked),
# MLXE_BENCH_DEVICES (default cpu,cuda; for the BF16 models), MLXE_BENCH_GEN
# (decoded tokens, default 128), MLXE_BENCH_NOGRAPH=1 (each model on the GPU
# again with MLXE_CUDA_GRAPH=0).
#
# Missing libraries: when pkg-config (or a package this project needs) is
# absent, Debian packages from $MLXE_DEBS (a folder of .deb files, e.g. made
# with `apt-get download libcjson-dev libcjson1 ...`) are unpacked into a
# private prefix under /tmp — never into / — and the build is pointed there.
# MLXE_FORCE_DEBS=1 takes this path even when all is installed (to try it).
# Libraries nothing links against are dropped (--as-needed), so libcurl's own
# dependencies need not exist on the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build-gpu/out}
mkdir -p "$OUT"
JOBS=${JOBS:-16}
summary=()
note() { echo "== $*"; summary+=("$*"); }

{ date -u; nvidia-smi; nvcc --version; cmake --version; gcc --version | head -1; cat /etc/os-release 2>/dev/null | head -2; } \
  >"$OUT/machine.txt" 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader \
  2>/dev/null | sed 's/^/GPU: /'

# ---- dependencies ----
modules="libcjson libpcre2-8 libutf8proc libcurl libmicrohttpd libcrypto cmocka"
missing=""
if command -v pkg-config >/dev/null; then
  for m in $modules; do pkg-config --exists "$m" || missing="$missing $m"; done
else
  missing="pkg-config $modules"
fi
cmake_extra=()
[ "${MLXE_FORCE_DEBS:-0}" = 1 ] && missing="${missing:- (forced by MLXE_FORCE_DEBS)}"
if [ -n "$missing" ]; then
  echo "missing here:$missing"
  if [ -z "${MLXE_DEBS:-}" ] || ! ls "$MLXE_DEBS"/*.deb >/dev/null 2>&1; then
    note "FAIL: missing$missing and no MLXE_DEBS folder of .deb files"; exit 1
  fi
  prefix=/tmp/mlxe-deps
  rm -rf "$prefix" && mkdir -p "$prefix"
  for deb in "$MLXE_DEBS"/*.deb; do
    if command -v dpkg >/dev/null; then dpkg -x "$deb" "$prefix"
    else (cd "$prefix" && ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -x -J 2>/dev/null || \
          ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -x --zstd); fi
  done
  libdir="$prefix/usr/lib/x86_64-linux-gnu"
  # The .pc files name /usr (in variables, or in -I/-L flags as cmocka's
  # does); point them into the prefix. Private requirements
  # (gnutls, nghttp2, ...) only matter for static links: drop them.
  sed -i -e "s#^\([a-z_]*\)=/usr#\1=$prefix/usr#" -e "s#-\([IL]\)/usr/#-\1$prefix/usr/#g" \
      -e '/^Requires.private:/d' "$libdir"/pkgconfig/*.pc
  export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! command -v pkg-config >/dev/null; then
    cmake_extra+=("-DPKG_CONFIG_EXECUTABLE=$prefix/usr/bin/pkgconf")
  fi
  cmake_extra+=("-DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed -Wl,--allow-shlib-undefined -Wl,-rpath-link,$libdir"
                "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--as-needed -Wl,-rpath-link,$libdir")
  note "dependencies from $MLXE_DEBS unpacked into $prefix (missing:$missing)"
fi

# ---- build ----
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
start=$(date +%s)
[ -n "${MLXE_CUDA_ARCHS:-}" ] && cmake_extra+=("-DMLXE_CUDA_ARCHS=$MLXE_CUDA_ARCHS")
skip=" ${MLXE_GPU_SKIP:-} "
if ! timeout 420 cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMLXE_CUDA=ON \
      "${cmake_extra[@]}" >"$OUT/build.log" 2>&1 ||
   ! timeout 420 cmake --build build-gpu -j"$JOBS" >>"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  note "FAIL: build (see build.log)"; printf '%s\n' "${summary[@]}"; exit 1
fi
note "build with CUDA: $(( $(date +%s) - start )) s, $(grep -c -i 'warning' "$OUT/build.log") warning lines"

# ---- CUDA tests (a missing GPU is a failure here) ----
export MLXE_REQUIRE_GPU=1
status=0
cuda_tests=(build-gpu/tests/test_runtime_cuda_* build-gpu/tests/test_models_cuda build-gpu/tests/test_models_cuda_int8 build-gpu/tests/test_chat_cuda)
[[ "$skip" == *" tests "* ]] && { note "CUDA tests skipped (build only)"; cuda_tests=(); }
for t in "${cuda_tests[@]}"; do
  name=$(basename "$t")
  started_ns=$(date +%s%N)
  if timeout 120 "$t" >"$OUT/$name.log" 2>&1; then r=PASS; else r=FAIL; status=1; fi
  note "$r: $name ($(( ($(date +%s%N) - started_ns) / 1000000 )) ms)"
  [ "$r" = FAIL ] && tail -30 "$OUT/$name.log"
done

grep -h "GPU:" "$OUT/test_models_cuda.log" 2>/dev/null | sed 's/^/   /'
# once more without the recorded decode graphs (the direct path), and with
# the switches that keep the older ways (the argmax after the logits, no
# L2 prefetch, no pipelined decode)
direct="MLXE_CUDA_GRAPH=0 MLXE_CUDA_ARGMAX_OVERLAP=0 MLXE_CUDA_PREFETCH=0 MLXE_DECODE_PIPELINE=0"
if [[ "$skip" == *" tests "* ]]; then :
elif env $direct timeout 120 build-gpu/tests/test_models_cuda >"$OUT/test_models_cuda-nograph.log" 2>&1; then
  note "PASS: test_models_cuda with $direct"
else note "FAIL: test_models_cuda with $direct"; tail -20 "$OUT/test_models_cuda-nograph.log"; status=1; fi

# ---- the debug log on the GPU: which GPU, which kernels ----
fixture=tests/fixtures/models/qwen2-f32
MLXE_LOG=debug timeout 30 build-gpu/bench/mlxe-bench-model --model "$fixture" --device cuda --prompt-tokens 8 \
  --gen-tokens 8 --repeat 1 >"$OUT/debug-log.txt" 2>&1
grep -E "cuda:0|graph" "$OUT/debug-log.txt" | head -8
# ---- the command line (needs every library the tool links, libcurl's too) ----
for d in cpu cuda; do
  build-gpu/mlxengine --help >/dev/null 2>&1 || { note "generate: tool cannot start here (missing libraries)"; break; }
  MLXE_LOG=debug timeout 30 build-gpu/mlxengine generate --model "$fixture" --prompt-ids 1,2,3,4 --max-tokens 16 \
    --device "$d" >"$OUT/generate-$d.txt" 2>"$OUT/generate-$d.log"
done
if [ -s "$OUT/generate-cuda.txt" ]; then
  if cmp -s "$OUT/generate-cpu.txt" "$OUT/generate-cuda.txt"; then
    note "generate --device cuda: same tokens as --device cpu ($(cat "$OUT/generate-cuda.txt"))"
  else note "FAIL: generate --device cuda differs from cpu (generate-*.txt/log)"; status=1; fi
fi

# ---- benchmark ----
if [[ "$skip" == *" opsbench "* ]]; then note "ops bench skipped"
elif timeout 240 build-gpu/bench/bench_cuda_ops >"$OUT/bench.md" 2>&1; then note "bench: bench.md"
else note "FAIL: bench (see bench.md)"; status=1; fi
if [[ "$skip" != *" opsbench "* ]]; then
  cat "$OUT/bench.md"
  # A second run of the same binary: differences between the two are noise.
  timeout 90 build-gpu/bench/bench_cuda_ops --quick >"$OUT/bench-repeat.md" 2>&1 || true
fi

# ---- whole models, CPU and GPU side by side ----
if [[ "$skip" != *" modelbench "* ]]; then
  models_dir=/tmp/mlxe-bench-models
  py=/usr/bin/python3
  "$py" -c 'import numpy' 2>/dev/null || py=python3
  for m in ${MLXE_BENCH_MODELS:-qwen2.5-0.5b llama-3.2-1b}; do
    [ -f "$models_dir/$m/model.safetensors" ] ||
      timeout 150 "$py" bench/make_random_model.py --out "$models_dir" "$m" >>"$OUT/models.log" 2>&1
    variants=("$m")
    for bits in ${MLXE_BENCH_QUANT:-8 4}; do
      # bench/quantize_model.py (numpy): the mlxengine tool may lack libcurl's libraries here
      [ -d "$models_dir/$m-q$bits" ] ||
        timeout 120 "$py" bench/quantize_model.py "$models_dir/$m" "$models_dir/$m-q$bits" --bits "$bits" \
          --group-size 64 >>"$OUT/models.log" 2>&1
      variants+=("$m-q$bits")
    done
    for v in "${variants[@]}"; do
      # the CPU column for the BF16 model only (it takes most of the time)
      devices=cuda
      [ "$v" = "$m" ] && devices=${MLXE_BENCH_DEVICES:-cpu,cuda}
      if timeout 150 build-gpu/bench/mlxe-bench-model --model "$models_dir/$v" --device "$devices" \
           --prompt-tokens 512 --gen-tokens "${MLXE_BENCH_GEN:-128}" --repeat 2 --ubatch 512 >"$OUT/model-$v.md" 2>&1; then
        note "model bench $v: $(grep -E 'decode|prefill' "$OUT/model-$v.md" | tr -s ' ' | tr '\n' ' ')"
        if [ -n "${MLXE_BENCH_NOGRAPH:-}" ]; then
          MLXE_CUDA_GRAPH=0 timeout 100 build-gpu/bench/mlxe-bench-model --model "$models_dir/$v" --device cuda \
            --prompt-tokens 512 --gen-tokens "${MLXE_BENCH_GEN:-128}" --repeat 2 --ubatch 512 \
            >"$OUT/model-$v-nograph.md" 2>&1
          note "  without graphs: $(grep -E 'decode' "$OUT/model-$v-nograph.md" | tr -s ' ')"
        fi
      else note "FAIL: model bench $v (see model-$v.md)"; tail -5 "$OUT/model-$v.md"; status=1; fi
    done
  done
fi

# ---- every test ----
# Except the numpy oracle and the install check: they need Debian's python3-numpy
# and system-wide packages, which the GPU machine lacks (CI runs them).
if [[ "$skip" == *" ctest "* ]]; then note "ctest skipped"
elif timeout 240 ctest --test-dir build-gpu --output-on-failure -j8 -LE "oracle|install" >"$OUT/ctest.log" 2>&1; then
  note "ctest: $(grep -E 'tests passed' "$OUT/ctest.log")"
else
  note "FAIL ctest: $(grep -E 'tests passed|tests failed' "$OUT/ctest.log")"; grep -E 'Failed|\*\*\*' "$OUT/ctest.log" | head
  status=1
fi

# ---- compute-sanitizer on the CUDA op tests ----
if [[ "$skip" != *" memcheck "* ]] && command -v compute-sanitizer >/dev/null; then
  if timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/test_runtime_cuda_ops \
       >"$OUT/memcheck.log" 2>&1; then note "memcheck: clean"
  else note "memcheck: rc $? (see memcheck.log)"; tail -20 "$OUT/memcheck.log"; fi
fi

echo; echo "==== summary ===="
printf '%s\n' "${summary[@]}"
exit $status
