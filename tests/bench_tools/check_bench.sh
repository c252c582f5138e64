#!/bin/bash
# tests/bench_tools/check_bench.sh TOOL MODEL_DIR — `mlxengine bench`: the
# rows bench/llamacpp/compare.py reads (prefill/decode tok/s, peak RSS, the
# context size), positive rates, and exit codes 2 (usage) and 1 (no model).
set -u
tool=$1 model=$2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$out" "$err" >&2; exit 1; }

"$tool" bench --model "$model" --prompt-tokens 8 --gen-tokens 4 --repeat 2 --threads 2 >"$out" 2>"$err" ||
    fail "bench exited with $?"
grep -Eq '^model: .*device cpu-[a-z0-9-]+, context [0-9.]+ MB$' "$out" || fail "no model line"
for row in "prefill tok/s (8 tokens)" "decode tok/s (4 tokens)" "peak RSS (MB)" "load time (s)"; do
    value=$(grep -F "| $row" "$out" | sed -E 's/.*\|[[:space:]]*([0-9.]+)[[:space:]]*\|$/\1/')
    [ -n "$value" ] || fail "no row '$row'"
    case "$row" in
        *tok/s*) awk -v v="$value" 'BEGIN { exit !(v > 0) }' || fail "'$row' is $value" ;;
    esac
done

"$tool" bench --model "$model" --gen-tokens x >"$out" 2>"$err"
[ $? = 2 ] || fail "a bad number should exit 2"
grep -q "usage: mlxengine bench" "$err" || fail "no usage on stderr"
"$tool" bench >"$out" 2>"$err"
[ $? = 2 ] || fail "a missing --model should exit 2"
"$tool" bench --model /nonexistent/model >"$out" 2>"$err"
[ $? = 1 ] || fail "a missing folder should exit 1"
grep -q "/nonexistent/model" "$err" || fail "the error should name the folder"
"$tool" bench --help >"$out" 2>"$err" || fail "--help should exit 0"
grep -q "usage: mlxengine bench" "$out" || fail "--help prints usage"
echo "bench tools: ok"
