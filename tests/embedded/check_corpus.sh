#!/bin/bash
# tests/embedded/check_corpus.sh SOURCE_DIR — runs scripts/embedded/prepare_corpus.py into a
# temporary folder and checks that it reproduces tests/embedded/heldout_sample.txt (the text
# whose transformers perplexity golden.json records) and reads every verse of the KJV.
set -euo pipefail
src=$1
out=$(mktemp -d /tmp/mlxe-corpus-XXXXXX)
trap 'rm -rf "$out"' EXIT
/usr/bin/python3 "$src/scripts/embedded/prepare_corpus.py" "$out" > "$out/stdout"
cmp "$out/heldout_sample.txt" "$src/tests/embedded/heldout_sample.txt"
/usr/bin/python3 - "$out/stats.json" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
assert stats["verses"] == 31102, stats
assert stats["chapters"] == 1189 and stats["heldout_chapters"] == 30, stats
assert stats["train_conversations"] > 60000, stats
PY
# The conversations are ChatML-ready messages and never leak held-out verses into training.
/usr/bin/python3 - "$out" <<'PY'
import gzip, json, re, sys
d = sys.argv[1]
held = {re.match(r"^(.+? \d+:\d+) ", l).group(1) for l in open(d + "/heldout.txt") if l.strip()}
assert len(held) > 700 and "Genesis 18:1" in held, len(held)
for line in gzip.open(d + "/train_chat.jsonl.gz", "rt"):
    msgs = json.loads(line)["messages"]
    assert msgs[-1]["role"] == "assistant" and msgs[-2]["role"] == "user", msgs
    answer = msgs[-1]["content"]
    ref = answer[answer.rfind("(") + 1:-1] if answer.endswith(")") else answer.split(" says: ")[0]
    assert ref not in held, ref
PY
echo "corpus reproducible"
