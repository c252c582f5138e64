#!/usr/bin/env bash
# A CUDA-enabled build opens cuBLAS at run time (src/runtime/cuda/cuda_blas.c)
# instead of linking it: neither the tool nor the library names libcublas as
# a dependency, and `mlxengine --help` and a CPU generate on the tiny fixture
# stay under 64 MB of peak resident memory (with cuBLAS linked, --help alone
# took ~220 MB: libcublasLt's pages). Checked in every build (a CPU-only one
# must pass as well).
set -euo pipefail
tool=$1 library=$2 models=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
for f in "$tool" "$library"; do
  if readelf -d "$f" | grep -i "NEEDED.*cublas"; then fail "$f links cuBLAS (it should be opened at run time)"; fi
done
peak_mb() { # command...: the child's peak resident memory in MB
  /usr/bin/python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' "$@"
}
help_mb=$(peak_mb "$tool" --help)
[ "$help_mb" -lt 64 ] || fail "mlxengine --help peaked at $help_mb MB (limit 64)"
generate_mb=$(peak_mb "$tool" generate --model "$models/llama-f32" --prompt-ids 1,2 --max-tokens 3 --device cpu)
[ "$generate_mb" -lt 64 ] || fail "a CPU generate on the tiny fixture peaked at $generate_mb MB (limit 64)"
echo "ok: no cuBLAS dependency; peak RSS --help $help_mb MB, CPU generate $generate_mb MB"
