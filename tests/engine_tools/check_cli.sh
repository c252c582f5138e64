#!/usr/bin/env bash
# Checks the generate/logits commands: usage errors exit 2, load errors exit
# 1 with the library's message, generate prints exactly the reference greedy
# ids for every fixture, logits prints 10 "ID LOGIT" lines whose first id is
# the reference's argmax at the last position.
set -euo pipefail
tool=$1
models=$2
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_rc() { # expected_rc command...
    local want=$1; shift
    set +e
    "$@" >/tmp/mlxe-cli-out.$$ 2>/tmp/mlxe-cli-err.$$
    local rc=$?
    set -e
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat /tmp/mlxe-cli-err.$$)"
}
trap 'rm -f /tmp/mlxe-cli-out.$$ /tmp/mlxe-cli-err.$$' EXIT

model=$models/llama-f32
expect_rc 2 "$tool" generate --model "$model" --prompt-ids 1,2 --max-tokens 3 --bogus
grep -q "unknown option '--bogus'" /tmp/mlxe-cli-err.$$ || fail "no message for a bad flag"
expect_rc 2 "$tool" generate --model "$model" --prompt-ids 1,a --max-tokens 3
expect_rc 2 "$tool" generate --model "$model" --prompt-ids 1,2
expect_rc 2 "$tool" generate --model "$model" --prompt-ids 1 --max-tokens 3 --temp abc
expect_rc 2 "$tool" generate --model "$model" --prompt-ids 1 --max-tokens 3 --top-p 2
expect_rc 2 "$tool" logits --model "$model"
expect_rc 2 "$tool" logits --prompt-ids 1 --model
expect_rc 1 "$tool" generate --model /nonexistent/model --prompt-ids 1 --max-tokens 3
grep -q "/nonexistent/model" /tmp/mlxe-cli-err.$$ || fail "load error does not name the folder"
expect_rc 1 "$tool" logits --model "$model" --prompt-ids 1,99999
grep -q "99999" /tmp/mlxe-cli-err.$$ || fail "bad id error does not name the id"
[ ! -s /tmp/mlxe-cli-out.$$ ] || fail "logits printed on stdout despite an error"
# --device: an unknown device is refused by name; cpu and auto run (auto: the GPU when usable)
expect_rc 1 "$tool" generate --model "$model" --prompt-ids 1,2 --max-tokens 3 --device tpu
grep -q "tpu" /tmp/mlxe-cli-err.$$ || fail "device error does not name the device"
expect_rc 0 "$tool" generate --model "$model" --prompt-ids 1,2 --max-tokens 3 --device cpu
cpu_ids=$(cat /tmp/mlxe-cli-out.$$)
expect_rc 0 "$tool" generate --model "$model" --prompt-ids 1,2 --max-tokens 3 --device auto
[ "$(cat /tmp/mlxe-cli-out.$$)" = "$cpu_ids" ] || fail "--device auto generated other ids than --device cpu"
expect_rc 0 "$tool" logits --model "$model" --prompt-ids 1,2 --device cpu
# perplexity takes --device too (the embedded default model: it has a tokenizer)
head -c 600 "$(dirname "$0")/../../README.md" > /tmp/mlxe-cli-text.$$
expect_rc 1 "$tool" perplexity --file /tmp/mlxe-cli-text.$$ --device tpu
grep -q "tpu" /tmp/mlxe-cli-err.$$ || fail "perplexity --device tpu: the error does not name the device"
expect_rc 0 "$tool" perplexity --file /tmp/mlxe-cli-text.$$ --device cpu --window 64
grep -q "^perplexity " /tmp/mlxe-cli-out.$$ || fail "perplexity --device cpu printed no result"
rm -f /tmp/mlxe-cli-text.$$

for dir in "$models"/*/; do
    ref=$dir/reference.json
    [ -f "$ref" ] || continue
    prompt=$($py -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['greedy']['prompt'])))" "$ref")
    # bf16 fixtures: we compute in float32, as their float32_compute reference
    expected=$($py -c "
import json, sys
g = json.load(open(sys.argv[1]))['greedy']
g = g.get('float32_compute', g)
print(' '.join(map(str, g['generate'])))" "$ref")
    expect_rc 0 "$tool" generate --model "$dir" --prompt-ids "$prompt" --max-tokens 32 --print-ids
    got=$(cat /tmp/mlxe-cli-out.$$)
    [ "$got" = "$expected" ] || fail "$dir: generate printed '$got', expected '$expected'"
    grep -q "tok/s" /tmp/mlxe-cli-err.$$ || fail "$dir: no stats on stderr"

    # sampling with a seed is reproducible
    expect_rc 0 "$tool" generate --model "$dir" --prompt-ids "$prompt" --max-tokens 8 --temp 0.9 --top-k 20 \
        --top-p 0.9 --min-p 0.02 --repeat-penalty 1.2 --seed 7
    first=$(cat /tmp/mlxe-cli-out.$$)
    expect_rc 0 "$tool" generate --model "$dir" --prompt-ids "$prompt" --max-tokens 8 --temp 0.9 --top-k 20 \
        --top-p 0.9 --min-p 0.02 --repeat-penalty 1.2 --seed 7
    [ "$first" = "$(cat /tmp/mlxe-cli-out.$$)" ] || fail "$dir: same seed gave different tokens"
    [ "$(echo "$first" | wc -w)" = 8 ] || fail "$dir: expected 8 sampled ids, got '$first'"

    # logits: the argmax of the last position of the longest sequence
    read -r ids argmax < <($py -c "
import json, sys
r = json.load(open(sys.argv[1]))
s = max(r['sequences'], key=lambda s: len(s['input_ids']))
last = s.get('logits_float32_compute', s['logits'])[-1]
print(','.join(map(str, s['input_ids'])), max(range(len(last)), key=lambda i: last[i]))" "$ref")
    expect_rc 0 "$tool" logits --model "$dir" --prompt-ids "$ids"
    [ "$(wc -l < /tmp/mlxe-cli-out.$$)" = 10 ] || fail "$dir: logits printed $(wc -l < /tmp/mlxe-cli-out.$$) lines"
    [ "$(head -1 /tmp/mlxe-cli-out.$$ | cut -d' ' -f1)" = "$argmax" ] || fail "$dir: top logit id differs from $argmax"
done
echo "engine tools: ok"
