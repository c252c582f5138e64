#!/bin/bash
# The JSON report validates against docs/debug-report.schema.json (with and
# without a cache scan, with and without GPU probing), describes the fixture
# cache correctly, and carries no secret; a broken report is rejected, so the
# schema does constrain.
set -euo pipefail
tool=$1; source_dir=$3; fake_nvml=$4
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$source_dir/tests/diag/make_fixture_cache.py" "$work/hub" > "$work/expected.json"
token=hf_SchemaSchemaSchema0123456789abcdefgh
export HF_HUB_CACHE="$work/hub" MLXE_LOG=debug HF_TOKEN=$token
export HF_ENDPOINT="https://alice:s3cretpass@hub.example" MLXE_SOME_API_KEY=plainsecretvalue
"$tool" report --json --output "$work/full.json" 2>/dev/null
"$tool" report --json --no-gpu --no-cache --log 0 > "$work/small.json" 2>/dev/null
MLXE_NVML_LIBRARY=$fake_nvml "$tool" report --json --no-cache > "$work/gpu.json" 2>/dev/null
/usr/bin/python3 "$source_dir/tests/diag/validate_report.py" "$source_dir/docs/debug-report.schema.json" \
  "$work/full.json" "$work/small.json" "$work/gpu.json"
for secret in $token s3cretpass plainsecretvalue; do
  if grep -q -- "$secret" "$work/full.json" "$work/small.json"; then echo "secret $secret leaked"; exit 1; fi
done
/usr/bin/python3 - "$work/full.json" "$work/small.json" <<'PY'
import json, sys
full = json.load(open(sys.argv[1])); small = json.load(open(sys.argv[2]))
cache = full["hub_cache"]
assert cache["scanned"] and cache["exists"], cache
assert cache["repo_count"] == 9 and cache["model_count"] == 8, cache
assert cache["partial_downloads"] == 3 and cache["partial_bytes"] == 1000 + 10 + 500, cache
states = {r["id"]: r["state"] for r in cache["repos"]}
assert states["org/broken"] == "corrupted" and states["org/shell"] == "empty" and states["org/partial"] == "partial", states
assert cache["corrupted_repos"] == 1 and cache["partial_repos"] == 3, cache
env = {e["name"]: e for e in full["environment"]}
assert env["HF_TOKEN"]["redacted"] and env["MLXE_SOME_API_KEY"]["value"] == "[REDACTED]", env
assert env["HF_ENDPOINT"]["value"] == "https://[REDACTED]@hub.example", env["HF_ENDPOINT"]
assert any("cache scan" in r["message"] for r in full["recent_log"]), full["recent_log"]
assert small["hub_cache"]["scanned"] is False and small["gpus"]["status"] == "not_probed"
assert small["recent_log"] == []
PY
/usr/bin/python3 - "$work/gpu.json" <<'PY'
import json, sys
gpus = json.load(open(sys.argv[1]))["gpus"]
assert gpus["status"] == "found" and gpus["source"] == "nvml" and len(gpus["devices"]) == 2, gpus
assert gpus["driver_version"] == "550.54.15" and gpus["cuda_driver_version"] == "12.4", gpus
assert gpus["devices"][1]["name"] == "Fake GPU 1" and gpus["devices"][0]["compute_capability"] == "9.0", gpus
PY
# A report missing a section, or with a wrong type, must fail validation.
/usr/bin/python3 - "$work/full.json" "$work/bad1.json" "$work/bad2.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
bad = dict(report); del bad["library"]; json.dump(bad, open(sys.argv[2], "w"))
bad = json.loads(json.dumps(report)); bad["hub_cache"]["repos"][0]["state"] = "fine"; json.dump(bad, open(sys.argv[3], "w"))
PY
for bad in bad1 bad2; do
  if /usr/bin/python3 "$source_dir/tests/diag/validate_report.py" "$source_dir/docs/debug-report.schema.json" \
       "$work/$bad.json" > /dev/null; then echo "schema accepted $bad.json"; exit 1; fi
done
echo "1 passed, 0 failed"
