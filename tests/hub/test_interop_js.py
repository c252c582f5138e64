#!/usr/bin/python3
"""Cache interop with the official JavaScript client (@huggingface/hub, pinned in
tests/oracles/hub): a cache its snapshotDownload / downloadFileToCacheDir wrote from the fake hub
is used by mlxengine offline with no request at all, and a cache mlxengine wrote passes its
scanCacheDir with the same repos, commits, refs, files and sizes, and its snapshotDownload finds
our files without downloading them again.
usage: test_interop_js.py MLXENGINE"""
import json
import os
import shutil
import sys

from hubtest import HERE, FakeHub, check, run, temp_dir

ORACLE = os.path.join(HERE, "..", "oracles", "hub", "node_modules", "@huggingface", "hub")
if not os.path.isdir(ORACLE) or not shutil.which("node"):
    print("SKIP: run scripts/setup.sh to install the npm oracle (tests/oracles/hub)")
    sys.exit(77)

tool = sys.argv[1]
hub = FakeHub()
js = ["node", os.path.join(HERE, "js_client.mjs")]

# 1. The JS client writes a cache; we read it offline.
js_cache = temp_dir()
snap = run(js + ["download", hub.url, js_cache, "org/tiny-mlx"]).stdout.strip().splitlines()[-1]
run(js + ["file", hub.url, js_cache, "org/sharded", "model-00001-of-00002.safetensors"])
commit, sizes = hub.tree("org/tiny-mlx", "main")
sharded_commit, _ = hub.tree("org/sharded", "main")
check(snap.endswith("/snapshots/" + commit), f"JS snapshot path {snap}")
hub.reset()
offline = {"HF_HUB_CACHE": js_cache, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub.url, "HF_TOKEN": ""}
out = json.loads(run([tool, "pull", "org/tiny-mlx", "--json"], env=offline).stdout)
check(out["path"] == snap, f"we resolved {out['path']}, JS wrote {snap}")
for name in ("config.json", "model.safetensors", "extra/notes.txt"):
    check(os.path.getsize(os.path.join(out["path"], name)) == sizes[name], f"{name} size")
listed = json.loads(run([tool, "list", "--json"], env=offline).stdout)
ours = {(r["id"], r["commit"]) for r in listed}
check(("org/tiny-mlx", commit) in ours, f"list does not show the JS download: {listed}")
check(("org/sharded", sharded_commit) in ours, f"list does not show the JS single file: {listed}")
run([tool, "show", "org/tiny-mlx", "--json"], env=offline)
check(hub.log() == [], f"offline use of the JS cache made requests: {hub.log()}")
# Online with the commit: the files are there, nothing is downloaded again.
hub.reset()
online = {"HF_HUB_CACHE": js_cache, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "HF_TOKEN": ""}
run([tool, "pull", f"org/tiny-mlx@{commit}", "--all"], env=online)
gets = [e for e in hub.log() if "/resolve/" in e["path"] or "/cdn/" in e["path"]]
check(gets == [], f"files the JS client downloaded were fetched again: {gets}")

# 2. We write a cache; the JS client's scanCacheDir agrees with it.
our_cache = temp_dir()
env = {"HF_HUB_CACHE": our_cache, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "HF_TOKEN": ""}
run([tool, "pull", "org/tiny-mlx", "--all"], env=env)
run([tool, "pull", "org/tiny-mlx@v1", "--all"], env=env)
run([tool, "pull", "org/sharded"], env=env)
scan = json.loads(run(js + ["scan", our_cache]).stdout)
check(scan["warnings"] == [], f"scanCacheDir warnings on our cache: {scan['warnings']}")
listed = json.loads(run([tool, "list", "--json"], env=env).stdout)
check(sorted(r["id"] for r in scan["repos"]) == ["org/sharded", "org/tiny-mlx"], f"repos {scan['repos']}")
expect = {}
for repo, rev in (("org/tiny-mlx", "main"), ("org/tiny-mlx", "v1"), ("org/sharded", "main")):
    c, files = hub.tree(repo, rev)
    expect[(repo, c)] = files
for r in scan["repos"]:
    for v in r["revisions"]:
        key = (r["id"], v["commit"])
        check(key in expect, f"JS sees an unknown revision {key}")
        # scanCacheDir lists the top-level files of a snapshot (it skips folders).
        want = {p: s for p, s in expect[key].items() if "/" not in p}
        if r["id"] == "org/sharded":
            want = {p: s for p, s in want.items() if p.endswith((".json", ".safetensors"))}
        got = {f["path"]: f["size"] for f in v["files"]}
        check(got == want, f"{key}: JS sees {got}, the hub has {want}")
        mine = [x for x in listed if x["id"] == r["id"] and x["commit"] == v["commit"]]
        check(len(mine) == 1 and sorted(mine[0]["refs"]) == v["refs"], f"{key}: refs {v['refs']} vs {mine}")
check(len(expect) == sum(len(r["revisions"]) for r in scan["repos"]), "revision count")
# The JS client's snapshotDownload finds every file we downloaded: it fetches none of them.
hub.reset()
js_snap = run(js + ["download", hub.url, our_cache, "org/tiny-mlx"]).stdout.strip().splitlines()[-1]
check(js_snap.endswith("/snapshots/" + commit), f"JS snapshot of our cache {js_snap}")
fetched = [e["path"] for e in hub.log() if "/resolve/" in e["path"] or "/cdn/" in e["path"]]
check(fetched == [], f"the JS client downloaded again what we had: {fetched}")
print("ok: JS cache used offline with no request; our cache scanned by the JS client")
