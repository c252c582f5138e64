#!/bin/bash
# list-remote-models, download-model and show-model-info --remote against the
# fake hub (tests/hub/fake_hub.py): what the hub layer downloads, list-models
# then finds complete with every hash verified, and the token never reaches
# the log.
set -euo pipefail
tool=$1; main_tool=$2; source_dir=$3
work=$(mktemp -d)
/usr/bin/python3 "$source_dir/tests/hub/fake_hub.py" --port 0 > "$work/port.txt" 2> "$work/hub.err" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true; wait $hub_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q PORT "$work/port.txt" && break; sleep 0.1; done
port=$(awk '/PORT/{print $2}' "$work/port.txt")
[ -n "$port" ]
export HF_ENDPOINT="http://127.0.0.1:$port" HF_HUB_CACHE="$work/hub" HF_TOKEN=hf_good
export MLXE_LOG=debug MLXE_LOG_FILE="$work/log.jsonl" HF_HUB_DISABLE_PROGRESS_BARS=1

"$tool" list-remote-models tiny > "$work/search.txt" 2>/dev/null
grep -q "^org/tiny-mlx " "$work/search.txt"
snapshot=$("$main_tool" debug download-model org/tiny-mlx 2>/dev/null)
[ -f "$snapshot/config.json" ]
"$tool" list-models --json > "$work/list.json" 2>/dev/null
/usr/bin/python3 - "$work/list.json" <<'PY'
import json, sys
listing = json.load(open(sys.argv[1]))
assert listing["hashes_checked"]
(repo,) = listing["repos"]
assert repo["id"] == "org/tiny-mlx" and repo["state"] == "complete", repo
(revision,) = repo["revisions"]
assert revision["refs"] == ["main"] and revision["has_tree_record"] and revision["bad_files"] == 0, revision
assert repo["problems"] == [] and repo["orphan_blobs"] == 0, repo
PY
"$tool" show-model-info org/tiny-mlx --remote > "$work/info.txt" 2>/dev/null
grep -q "quantization: 4 bits, group size 64" "$work/info.txt"
grep -q "^on the Hub (http://127.0.0.1:$port)" "$work/info.txt"
if grep -q hf_good "$work/log.jsonl"; then echo "token in the log"; exit 1; fi
grep -q '"category":"hub"' "$work/log.jsonl"
set +e
"$tool" list-remote-models > /dev/null 2>&1; [ $? -eq 2 ] || exit 1
"$tool" download-model > /dev/null 2>&1; [ $? -eq 2 ] || exit 1
set -e
echo "1 passed, 0 failed"
