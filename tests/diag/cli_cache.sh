#!/bin/bash
# The cache subcommands on a fixture cache: list-models reports each repo's
# state (quick and hashed); cleanup-cache --dry-run prints exactly the lines
# cleanup-cache then prints, and exactly those paths disappear; a repo whose
# download lock is held is skipped; complete models survive; and the
# JavaScript Hub client's scanCacheDir, which flags the broken and dangling
# repos before, finds the layout valid after. `mlxengine debug` answers the same.
set -euo pipefail
tool=$1; main_tool=$2; source_dir=$3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cache="$work/hub"
/usr/bin/python3 "$source_dir/tests/diag/make_fixture_cache.py" "$cache" > "$work/expected.json"
export HF_HUB_CACHE="$cache"
oracle="$source_dir/tests/diag/scan_cache_oracle.mjs"
if [ ! -d "$source_dir/tests/oracles/hub/node_modules/@huggingface/hub" ]; then
  echo "tests/oracles/hub/node_modules is missing: run scripts/setup.sh"; exit 1
fi

"$tool" list-models --json > "$work/verified.json"
"$tool" list-models --json --quick > "$work/quick.json"
"$main_tool" debug list-models --json --quick > "$work/quick2.json"
cmp "$work/quick.json" "$work/quick2.json"
"$tool" list-models > "$work/list.txt"
grep -q "corrupted .* org/broken" "$work/list.txt"
grep -q "ref to a missing snapshot: main -> " "$work/list.txt"
/usr/bin/python3 - "$work/expected.json" "$work/quick.json" "$work/verified.json" <<'PY'
import json, sys
expected = json.load(open(sys.argv[1]))["repos"]
for path, key in ((sys.argv[2], "quick"), (sys.argv[3], "verified")):
    listing = json.load(open(path))
    got = {r["id"]: r["state"] for r in listing["repos"]}
    want = {k: v[key] for k, v in expected.items()}
    assert got == want, (key, got, want)
    assert listing["hashes_checked"] == (key == "verified")
    assert any("stray.txt" in w for w in listing["warnings"])
PY
"$tool" show-model-info org/complete > "$work/info.txt"
grep -q "model_type: llama" "$work/info.txt"
grep -q "sub/tokenizer.json  (hash ok)" "$work/info.txt"
if "$tool" show-model-info org/absent 2> "$work/err.txt"; then echo "absent model shown"; exit 1; fi
grep -q "not in the cache" "$work/err.txt"

node "$oracle" "$cache" > "$work/oracle-before.json"
(cd "$cache" && find . -mindepth 1) | LC_ALL=C sort > "$work/before.txt"
busy_lock=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["busy_lock"])' "$work/expected.json")
# Hold the busy repo's lock the way huggingface_hub's filelock does (flock).
flock "$busy_lock" "$tool" cleanup-cache --dry-run > "$work/dry.txt" 2> "$work/dry.err"
(cd "$cache" && find . -mindepth 1) | LC_ALL=C sort > "$work/after-dry.txt"
cmp "$work/before.txt" "$work/after-dry.txt"
grep -q "nothing was changed" "$work/dry.err"
flock "$busy_lock" "$tool" cleanup-cache > "$work/real.txt" 2> "$work/real.err"
diff "$work/dry.txt" "$work/real.txt"
(cd "$cache" && find . -mindepth 1) | LC_ALL=C sort > "$work/after.txt"
node "$oracle" "$cache" > "$work/oracle-after.json"
/usr/bin/python3 - "$work" "$cache" <<'PY'
import json, os, sys
work, cache = sys.argv[1], sys.argv[2]
lines = open(os.path.join(work, "real.txt")).read().splitlines()
planned = [l.split(" ", 2) for l in lines]
removed_paths = [p for verb, kind, p in planned if verb == "remove"]
skipped = [p for verb, kind, p in planned if verb == "skip"]
assert all(verb in ("remove", "skip") for verb, _, _ in planned), lines
assert len(skipped) == 1 and skipped[0].startswith(os.path.join(cache, "models--org--busy")), skipped
before = set(os.path.join(cache, p[2:]) for p in open(os.path.join(work, "before.txt")).read().split("\n") if p)
after = set(os.path.join(cache, p[2:]) for p in open(os.path.join(work, "after.txt")).read().split("\n") if p)
gone = before - after
assert not (after - before), after - before
def covered(path):
    return any(path == r or path.startswith(r + "/") for r in removed_paths)
assert all(covered(p) for p in gone), sorted(p for p in gone if not covered(p))
assert all(r in before and r not in after for r in removed_paths), [r for r in removed_paths if r in after]
for repo in ("models--org--complete", "datasets--org--data", "models--org--busy", "models--org--corrupted"):
    assert not any(p.startswith(os.path.join(cache, repo) + "/") or p == os.path.join(cache, repo) for p in gone), repo
oracle_before = json.load(open(os.path.join(work, "oracle-before.json")))
oracle_after = json.load(open(os.path.join(work, "oracle-after.json")))
warned = " ".join(oracle_before["warnings"])
assert len(oracle_before["warnings"]) == 2 and "missing commit" in warned, oracle_before["warnings"]
assert oracle_after["warnings"] == [], oracle_after["warnings"]
ids = {r["id"] for r in oracle_after["repos"]}
assert ids == {"org/complete", "org/partial", "org/corrupted", "org/orphans", "org/broken", "org/busy", "org/data"}, ids
complete = [r for r in oracle_after["repos"] if r["id"] == "org/complete"][0]
assert sorted(ref for rev in complete["revisions"] for ref in rev["refs"]) == ["main", "v1"], complete
PY
# Our own listing agrees with the oracle on repos, commits and refs.
"$tool" list-models --json --quick > "$work/after-list.json"
/usr/bin/python3 - "$work/after-list.json" "$work/oracle-after.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["repos"]; theirs = json.load(open(sys.argv[2]))["repos"]
ours = sorted(({"id": r["id"], "type": r["type"], "revisions": sorted(({"commit": v["commit"], "refs": sorted(v["refs"])} for v in r["revisions"]), key=lambda v: v["commit"])} for r in ours), key=lambda r: r["id"])
assert ours == theirs, (ours, theirs)
for r in json.load(open(sys.argv[1]))["repos"]:
    if r["id"] != "org/busy":
        assert r["partial_downloads"] == 0 and r["orphan_blobs"] == 0 and r["dangling_refs"] == [], r
PY
# Named removal of a complete model, and bad usage.
"$main_tool" debug cleanup-cache --model org/complete > "$work/named.txt" 2>/dev/null
grep -q "^remove repo $cache/models--org--complete$" "$work/named.txt"
[ ! -e "$cache/models--org--complete" ]
set +e
"$tool" cleanup-cache --model org/absent > /dev/null 2>&1; [ $? -eq 1 ] || exit 1
"$tool" no-such-subcommand > /dev/null 2>&1; [ $? -eq 2 ] || exit 1
"$tool" list-models --bogus > /dev/null 2>&1; [ $? -eq 2 ] || exit 1
set -e
echo "1 passed, 0 failed"
