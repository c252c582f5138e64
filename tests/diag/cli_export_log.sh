#!/bin/bash
# MLXE_LOG_FILE keeps a run's log (redacted), for both tools and every
# mlxengine command, and export-log reads it back, filtered by level and time.
set -euo pipefail
tool=$1; main_tool=$2; source_dir=$3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
token=hf_ExportExportExport0123456789abcdefgh
/usr/bin/python3 "$source_dir/tests/diag/make_fixture_cache.py" "$work/hub" > /dev/null
export MLXE_LOG_FILE="$work/mlxengine.log"
# A cache path holding a token: the log must not keep it.
mkdir -p "$work/$token"
MLXE_LOG=debug HF_HUB_CACHE="$work/$token" HF_TOKEN=$token "$tool" report --no-gpu > /dev/null 2>&1
MLXE_LOG=debug HF_HUB_CACHE="$work/hub" "$tool" cleanup-cache > /dev/null 2>&1
[ -s "$MLXE_LOG_FILE" ]
if grep -q "$token" "$MLXE_LOG_FILE"; then echo "token in the log file"; exit 1; fi
[ "$(stat -c %a "$MLXE_LOG_FILE")" = 600 ]
"$tool" export-log --level debug > "$work/all.txt"
grep -q "debug diag .* building a debug report" "$work/all.txt"
grep -q "info  diag .* cache clean-up: removed" "$work/all.txt"
"$tool" export-log --level info --json > "$work/info.jsonl"
/usr/bin/python3 - "$work/info.jsonl" <<'PY'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1])]
assert records and all(r["level"] in ("info", "warn", "error") for r in records), records
assert all("cache clean-up" in r["message"] for r in records)
PY
[ -z "$("$tool" export-log --since 2099-01-01T00:00:00Z)" ]
[ "$("$tool" export-log --since 1h --level debug | wc -l)" = "$(wc -l < "$work/all.txt")" ]
# Every mlxengine command honours MLXE_LOG_FILE, not only `mlxengine debug`.
MLXE_LOG=debug HF_HUB_CACHE="$work/hub" HF_TOKEN=$token MLXE_LOG_FILE="$work/main.log" "$main_tool" list \
  > /dev/null 2>&1
"$tool" export-log --file "$work/main.log" --level debug > "$work/main.txt"
grep -q "debug hub .* hub: endpoint .* with a token" "$work/main.txt"
grep -q "debug hub .* cache scan of $work/hub" "$work/main.txt"
if grep -q "$token" "$work/main.log"; then echo "token in mlxengine's log file"; exit 1; fi
unset MLXE_LOG_FILE
"$main_tool" debug export-log --file "$work/mlxengine.log" --level error > "$work/none.txt"
[ ! -s "$work/none.txt" ]
set +e
"$tool" export-log --since yesterday > /dev/null 2>&1; [ $? -eq 2 ] || exit 1
"$tool" export-log --level loud > /dev/null 2>&1; [ $? -eq 2 ] || exit 1
"$tool" export-log --file "$work/absent.log" > /dev/null 2>&1; [ $? -eq 1 ] || exit 1
set -e
echo "1 passed, 0 failed"
