#!/usr/bin/env bash
# bench/cuda/compare.sh — mlxengine against llama.cpp on one NVIDIA GPU, side by side in one
# command (issue 7's proof of speed). In order:
#   1. builds ours with CUDA (scripts/gpu_check.sh with its tests but no benchmarks: the same
#      build, MLXE_DEBS for missing libraries, and the CUDA tests as a correctness check);
#   2. unpacks llama.cpp (llama-bench, llama-quantize and their libraries, built for sm_90 from the
#      source bundled in node-llama-cpp 3.21.1 — bench/cuda/README.md says how) and checks that
#      it starts; builds bench/cuda/copy_bandwidth.cu with nvcc;
#   3. per model shape: writes the random BF16 model (bench/make_random_model.py --jobs: all cores), its
#      GGUF copy (bench/cuda/gguf_bf16.py = bench/llamacpp/make_gguf.py with llama.cpp's gguf-py),
#      runs the BF16 pair; then converts ours to MLX 8- and 4-bit, group 64 (`mlxengine convert
#      --quantize`, or bench/quantize_model.py when the tool cannot start) and the GGUF to Q8_0 and
#      Q4_0 (llama-quantize), deleting the BF16 files before the quantized pairs run (disk);
#   4. per round (>= 2): the copy bandwidth, then for each pair llama-bench (-p 512 -n 128 -d 0,512
#      -ngl 99 -fa 1 -r 3 -o json) and our mlxe-bench-model (the harness of `mlxengine bench`:
#      --device cuda --repeat 3 --ubatch 512) one after the other, the order swapped every round,
#      each with nvidia-smi sampling memory.used for its peak VRAM. Decode is measured at two
#      depths, the same for both engines: tg128 as llama-bench defines it (128 tokens decoded
#      from an empty context: ours --prompt-tokens 1 --gen-tokens 128, the one prompt token at
#      position 0) and 128 tokens after a 512-token prompt (llama-bench -d 512; ours
#      --prompt-tokens 512 --gen-tokens 128, the run that also gives our pp512);
#   5. bench/cuda/table.py prints the table (medians of the rounds) into $OUT/table.md.
# Everything it runs leaves its output in $OUT (default build-gpu/compare): table.md, steps.log
# and, at the end, every raw log packed into raw.tar.gz.
#
#   bench/cuda/compare.sh [--models 1b|8b|1b,8b] [--rounds 2] [--pairs bf16,q8,q4]
#
# Environment: LLAMA_CUDA (a folder with bin/ and gguf-py/, or a .tar.xz of one; default
# .dev/llamacuda/llamacuda.tar.xz next to the source tree, then /work/main/.dev/llamacuda/...),
# MODELS_DIR (default /dev/shm/mlxe-compare when it has room, else /tmp/mlxe-compare), MLXE_DEBS
# and MLXE_CUDA_ARCHS (as scripts/gpu_check.sh; default 90-real), LLAMA_QUANT_FLAGS (e.g. --pure:
# every matrix in the one type; by default llama-quantize keeps its own mix: Q6_K output matrix
# for Q4_0), COMPARE_BUDGET_S (default 560: later rounds are skipped past it so the table still
# comes out inside a 600 s call). For trying the script out without a GPU: COMPARE_SKIP_BUILD=1
# (use build-gpu as it is), COMPARE_DEVICE (default cuda), COMPARE_PROMPT / COMPARE_GEN /
# COMPARE_REPEAT (default 512 / 128 / 3), and --models also takes any bench/make_random_model.py
# name (e.g. qwen2.5-0.5b). COMPARE_VARIANTS="A=1 B=0,C=2": after the rounds of each model, ours
# once more per variant (its environment, commas between assignments) on the same folders, decode
# tok/s into steps.log beside a fresh default run (an A/B of ours, not part of the table).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
SRC=$PWD
OUT=${OUT:-$SRC/build-gpu/compare}
mkdir -p "$OUT"
started=$(date +%s)
budget=${COMPARE_BUDGET_S:-560}
prompt=${COMPARE_PROMPT:-512}
gen=${COMPARE_GEN:-128}
repeat=${COMPARE_REPEAT:-3}
models=1b
rounds=2
pairs="bf16,q8,q4"
while [ $# -gt 0 ]; do
  case $1 in
    --models) models=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    *) echo "usage: $0 [--models 1b|8b|1b,8b] [--rounds N] [--pairs bf16,q8,q4]" >&2; exit 2 ;;
  esac
done
elapsed() { echo $(( $(date +%s) - started )); }
say() { echo "[$(elapsed) s] $*" | tee -a "$OUT/steps.log"; }
# The device tool brings back a limited number of files: the raw logs travel as one archive
# (table.py table DIR works on it unpacked), on failure too.
pack_raw() {
  tar -czf /tmp/compare-raw.tar.gz -C "$OUT" . && mv /tmp/compare-raw.tar.gz "$OUT/raw.tar.gz" &&
    find "$OUT" -mindepth 1 -maxdepth 1 ! -name raw.tar.gz ! -name table.md ! -name steps.log -exec rm -rf {} +
}
fail() { say "FAIL: $*"; pack_raw; exit 1; }
has_pair() { [[ ",$pairs," == *",$1,"* ]]; }

# ---- 1. ours ----
mkdir -p "$OUT/ours-build"
if [ "${COMPARE_SKIP_BUILD:-0}" != 1 ]; then
  OUT="$OUT/ours-build" MLXE_CUDA_ARCHS=${MLXE_CUDA_ARCHS:-90-real} \
    MLXE_GPU_SKIP="opsbench ctest memcheck modelbench" scripts/gpu_check.sh >"$OUT/ours-build/gpu_check.txt" 2>&1
  say "ours: scripts/gpu_check.sh rc $? ($(grep -c '^== PASS' "$OUT/ours-build/gpu_check.txt") PASS," \
      "$(grep -c '^== FAIL' "$OUT/ours-build/gpu_check.txt") FAIL lines; ours-build/gpu_check.txt)"
fi
bench_model=$SRC/build-gpu/bench/mlxe-bench-model
[ -x "$bench_model" ] || { tail -30 "$OUT/ours-build/gpu_check.txt"; fail "no build-gpu/bench/mlxe-bench-model"; }
deps=/tmp/mlxe-deps/usr/lib/x86_64-linux-gnu  # where gpu_check.sh unpacks MLXE_DEBS, if it had to
[ -d "$deps" ] && export LD_LIBRARY_PATH="$deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# .commit: written beside a `git archive` copy (bench/cuda/README.md); the copy has no .git of its own
ours_commit=$(cat "$SRC/.commit" 2>/dev/null || echo "?")

py=/usr/bin/python3
"$py" -c 'import numpy, yaml' 2>/dev/null || py=python3
"$py" -c 'import numpy, yaml' || fail "no python with numpy and yaml (gguf-py needs both)"

# ---- 2. llama.cpp and the copy bandwidth ----
llama_src=${LLAMA_CUDA:-}
if [ -z "$llama_src" ]; then
  for c in "$SRC/.dev/llamacuda/llamacuda.tar.xz" "$SRC/../llamacuda/llamacuda.tar.xz" \
           "$SRC/../../.dev/llamacuda/llamacuda.tar.xz" /work/main/.dev/llamacuda/llamacuda.tar.xz; do
    [ -f "$c" ] && { llama_src=$c; break; }
  done
fi
[ -n "$llama_src" ] || fail "no llama.cpp bundle: set LLAMA_CUDA (bench/cuda/README.md)"
if [ -f "$llama_src" ]; then
  LLAMA=/tmp/llamacuda
  rm -rf "$LLAMA"; mkdir -p "$LLAMA"
  tar -xJf "$llama_src" -C "$LLAMA" || fail "cannot unpack $llama_src"
else LLAMA=$llama_src; fi
cuda_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && cuda_libs="$cuda_libs:$d"
done
# NCCL (llama.cpp's CUDA backend links it): the toolkit's, else a Python wheel's
if ! ldd "$LLAMA/bin/libggml-cuda.so" 2>/dev/null | grep -q 'libnccl.*=> /' ; then
  read -r -a site_dirs <<<"$("$py" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)"
  nccl=$(find /usr/local/cuda*/ /usr/lib /opt "${site_dirs[@]}" -name 'libnccl.so.2*' 2>/dev/null | head -1)
  if [ -n "$nccl" ]; then cuda_libs="$cuda_libs:$(dirname "$nccl")"
  elif ldd "$LLAMA/bin/libggml-cuda.so" 2>/dev/null | grep -q 'libnccl.*not found'; then
    mkdir -p /tmp/nccl-stub
    gcc -shared -fPIC -O2 -Wl,-soname,libnccl.so.2 bench/cuda/nccl_stub.c -o /tmp/nccl-stub/libnccl.so.2 &&
      cuda_libs="$cuda_libs:/tmp/nccl-stub" && say "no NCCL here: bench/cuda/nccl_stub.c stands in (one GPU never calls it)"
  fi
fi
llama_env=(env "LD_LIBRARY_PATH=$LLAMA/bin$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
if ldd "$LLAMA/bin/llama-bench" 2>/dev/null | grep -q "not found"; then
  "${llama_env[@]}" ldd "$LLAMA/bin/llama-bench" "$LLAMA/bin/libggml-cuda.so" | grep "not found" | sort -u | tee -a "$OUT/steps.log"
fi
"${llama_env[@]}" "$LLAMA/bin/llama-bench" --list-devices >"$OUT/llama-devices.txt" 2>&1 ||
  { cat "$OUT/llama-devices.txt"; fail "llama-bench does not start (llama-devices.txt)"; }
say "llama.cpp: $(head -1 "$LLAMA/VERSION" 2>/dev/null); $(grep -m1 -i 'CUDA' "$OUT/llama-devices.txt")"

nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc" -O2 -arch=sm_90 bench/cuda/copy_bandwidth.cu -o build-gpu/copy_bandwidth >"$OUT/copy_bandwidth-build.log" 2>&1 ||
  fail "copy_bandwidth.cu does not build (copy_bandwidth-build.log)"
{ echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "ours: $ours_commit"
  echo "prompt: $prompt"
  echo "gen: $gen"
  echo "llama.cpp: $(head -1 "$LLAMA/VERSION" 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /'
} >"$OUT/meta.txt"

# ---- models ----
models_dir=${MODELS_DIR:-}
if [ -z "$models_dir" ]; then
  need_gb=12
  [[ "$models" == *8b* ]] && need_gb=48
  shm_gb=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)
  if [ "${shm_gb:-0}" -ge "$need_gb" ]; then models_dir=/dev/shm/mlxe-compare; else models_dir=/tmp/mlxe-compare; fi
fi
mkdir -p "$models_dir"
say "models in $models_dir ($(df -h --output=avail "$models_dir" | tail -1 | tr -d ' ') free)"
export PYTHONPATH="$LLAMA/gguf-py${PYTHONPATH:+:$PYTHONPATH}"
record_weights() { "$py" bench/cuda/table.py weights "$2" >"$OUT/weights-$1.json" 2>>"$OUT/models.log"; }
ours_convert() {  # src dst bits
  if "$SRC/build-gpu/mlxengine" --help >/dev/null 2>&1; then
    "$SRC/build-gpu/mlxengine" convert "$1" "$2" --quantize --bits "$3" --group-size 64 --quiet
  else
    "$py" bench/quantize_model.py "$1" "$2" --bits "$3" --group-size 64 --jobs 6
  fi
}

# ---- one engine, one pair, one round ----
vram_start() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 >"$1" 2>/dev/null &
               vram_pid=$!; sleep 0.3; }
vram_stop() { kill "$vram_pid" 2>/dev/null; wait "$vram_pid" 2>/dev/null; }
run_llama() {  # stem round gguf
  vram_start "$OUT/$1-r$2-llama-vram.txt"
  timeout 300 "${llama_env[@]}" "$LLAMA/bin/llama-bench" -m "$3" -p "$prompt" -n "$gen" -d "0,$prompt" -ngl 99 -fa 1 \
    -r "$repeat" -o json \
    >"$OUT/$1-r$2-llama.json" 2>"$OUT/$1-r$2-llama.log" || say "llama-bench $1 round $2: rc $? ($1-r$2-llama.log)"
  vram_stop
}
run_ours() {  # stem round folder
  vram_start "$OUT/$1-r$2-ours-vram.txt"
  timeout 300 "$bench_model" --model "$3" --device "${COMPARE_DEVICE:-cuda}" --prompt-tokens "$prompt" \
    --gen-tokens "$gen" --repeat "$repeat" --ubatch 512 \
    >"$OUT/$1-r$2-ours.txt" 2>"$OUT/$1-r$2-ours.log" || say "mlxe-bench-model $1 round $2: rc $? ($1-r$2-ours.log)"
  # decode from an empty context (llama-bench's tg): one prompt token, then the generated ones
  timeout 300 "$bench_model" --model "$3" --device "${COMPARE_DEVICE:-cuda}" --prompt-tokens 1 \
    --gen-tokens "$gen" --repeat "$repeat" --ubatch 512 \
    >"$OUT/$1-r$2-ours-d0.txt" 2>"$OUT/$1-r$2-ours-d0.log" || say "mlxe-bench-model $1 round $2 (depth 0): rc $?"
  vram_stop
}
# rounds over the given pairs of one model: "key pair:ours_folder:gguf ..."
run_rounds() {
  local key=$1; shift
  for r in $(seq 1 "$rounds"); do
    if [ "$r" -gt 1 ] && [ "$(elapsed)" -gt "$budget" ]; then say "time budget reached: round $r skipped"; break; fi
    build-gpu/copy_bandwidth >"$OUT/copy-$key-${1%%:*}-r$r.txt" 2>&1
    for spec in "$@"; do
      IFS=: read -r pair folder gguf <<<"$spec"
      if [ $((r % 2)) = 1 ]; then run_llama "$key-$pair" "$r" "$gguf"; run_ours "$key-$pair" "$r" "$folder"
      else run_ours "$key-$pair" "$r" "$folder"; run_llama "$key-$pair" "$r" "$gguf"; fi
      say "$key $pair round $r: ours $(grep -E 'prefill|decode' "$OUT/$key-$pair-r$r-ours.txt" | awk -F'|' '{printf "%s ", $3}')" \
          "$(grep -E 'decode' "$OUT/$key-$pair-r$r-ours-d0.txt" | awk -F'|' '{printf "%s ", $3}')" \
          "llama.cpp $("$py" -c 'import json,sys; print(" ".join("%.1f" % max(r["samples_ts"]) for r in json.load(open(sys.argv[1]))))' \
          "$OUT/$key-$pair-r$r-llama.json" 2>/dev/null) tok/s (ours: pp, tg at depth 512, tg; llama.cpp: pp, tg, pp and tg at depth 512)"
    done
  done
  [ -n "${COMPARE_VARIANTS:-}" ] || return 0
  for spec in "$@"; do
    IFS=: read -r pair folder gguf <<<"$spec"
    local line="$key $pair decode: default $(ours_decode "$folder")"
    for v in $COMPARE_VARIANTS; do line="$line | $v $(ours_decode "$folder" "${v//,/ }")"; done
    say "variants: $line"
  done
}
ours_decode() {  # folder [env assignments]: our decode tok/s
  # shellcheck disable=SC2086
  env ${2:-} timeout 300 "$bench_model" --model "$1" --device "${COMPARE_DEVICE:-cuda}" --prompt-tokens "$prompt" \
    --gen-tokens "$gen" --repeat "$repeat" --ubatch 512 2>/dev/null | grep decode | awk -F'|' '{print $3}' | tr -d ' '
}

for key in ${models//,/ }; do
  case $key in 1b) name=llama-3.2-1b ;; 8b) name=llama-3.1-8b ;; *) name=$key ;; esac
  if [ "$(elapsed)" -gt "$budget" ]; then say "time budget reached: $key skipped"; break; fi
  base=$models_dir/$name
  rm -rf "$base" "$base"-*
  "$py" bench/make_random_model.py --out "$models_dir" "$name" --jobs "$(nproc)" >>"$OUT/models.log" 2>&1 ||
    fail "make_random_model.py $name (models.log)"
  say "$(tail -1 "$OUT/models.log")"
  if has_pair bf16; then
    t0=$(date +%s)
    "$py" bench/cuda/gguf_bf16.py "$base" "$base-bf16.gguf" >>"$OUT/models.log" 2>&1 || fail "gguf_bf16.py (models.log)"
    say "GGUF BF16 written in $(( $(date +%s) - t0 )) s"
    record_weights "$key-bf16-ours" "$base"
    record_weights "$key-bf16-llama" "$base-bf16.gguf"
    run_rounds "$key" "bf16:$base:$base-bf16.gguf"
  fi
  quant=()
  t0=$(date +%s)
  pids=()
  for bits in 8 4; do  # both widths at once: the machine has the cores, the call has the clock
    has_pair "q$bits" || continue
    ours_convert "$base" "$base-q$bits" "$bits" >"$OUT/convert-$key-q$bits.log" 2>&1 &
    pids+=($!)
    quant+=("q$bits:$base-q$bits:$base-q${bits}_0.gguf")
  done
  for pid in "${pids[@]}"; do wait "$pid" || fail "our conversion (convert-$key-q*.log)"; done
  for bits in 8 4; do
    has_pair "q$bits" || continue
    record_weights "$key-q$bits-ours" "$base-q$bits"
  done
  [ ${#pids[@]} -gt 0 ] && say "ours converted to ${quant[*]%%:*} in $(( $(date +%s) - t0 )) s" \
    "($("$SRC/build-gpu/mlxengine" --help >/dev/null 2>&1 && echo "mlxengine convert" || echo "bench/quantize_model.py: the tool cannot start here"))"
  if [ ${#quant[@]} -gt 0 ]; then
    [ -f "$base-bf16.gguf" ] || "$py" bench/cuda/gguf_bf16.py "$base" "$base-bf16.gguf" >>"$OUT/models.log" 2>&1 ||
      fail "gguf_bf16.py (models.log)"
    rm -f "$base/model.safetensors"
    for bits in 8 4; do
      has_pair "q$bits" || continue
      t0=$(date +%s)
      # shellcheck disable=SC2086
      "${llama_env[@]}" "$LLAMA/bin/llama-quantize" ${LLAMA_QUANT_FLAGS:-} "$base-bf16.gguf" "$base-q${bits}_0.gguf" \
        "Q${bits}_0" "$(nproc)" >"$OUT/llama-quantize-$key-q$bits.log" 2>&1 || fail "llama-quantize Q${bits}_0"
      say "llama-quantize Q${bits}_0 in $(( $(date +%s) - t0 )) s"
      record_weights "$key-q$bits-llama" "$base-q${bits}_0.gguf"
    done
    rm -f "$base-bf16.gguf"
    run_rounds "$key" "${quant[@]}"
  fi
  rm -rf "$base" "$base"-*
done

"$py" bench/cuda/table.py table "$OUT" >"$OUT/table.md" 2>"$OUT/table.log" || cat "$OUT/table.log"
echo
cat "$OUT/table.md"
say "done"
pack_raw
