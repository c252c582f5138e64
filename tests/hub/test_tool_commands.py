#!/usr/bin/python3
"""The Hub commands of the mlxengine tool against the fake hub: pull (aliases from a user
registry file, @revision, :QUANT, --include/--exclude, errors with exit code 1 and the token
never printed), search, list, show, du, rm, each with --json checked against the hub's own
answers. usage: test_tool_commands.py MLXENGINE"""
import json
import os
import sys

from hubtest import FakeHub, check, run, temp_dir

tool = sys.argv[1]
hub = FakeHub()
home = temp_dir()
config = temp_dir()
os.makedirs(os.path.join(config, "mlxengine"))
with open(os.path.join(config, "mlxengine", "models.json"), "w") as f:
    json.dump({"models": [{"alias": "tiny:1m", "id": "org/tiny-mlx", "context_length": 2048}]}, f)
env = {"HF_HOME": home, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "XDG_CONFIG_HOME": config,
       "HF_TOKEN": "hf_good", "HF_HUB_CACHE": "", "MLXE_LOG": "debug"}
cache = os.path.join(home, "hub")

# pull by alias: the snapshot path on stdout, progress lines on stderr, no token anywhere.
p = run([tool, "pull", "tiny:1m"], env=env)
commit, sizes = hub.tree("org/tiny-mlx", "main")
snap = p.stdout.strip()
check(snap == f"{cache}/models--org--tiny-mlx/snapshots/{commit}", f"pull printed {snap!r}")
check("done:" in p.stderr, "no progress lines on a non-terminal")
check("hf_good" not in p.stdout + p.stderr, "the token was printed")
check(os.path.getsize(os.path.join(snap, "model.safetensors")) == sizes["model.safetensors"], "weights size")
check(not os.path.exists(os.path.join(snap, "README.md")), "README.md is not an MLX default file")

# @revision and --include/--exclude; :QUANT for GGUF.
v1, v1_sizes = hub.tree("org/tiny-mlx", "v1")
out = json.loads(run([tool, "pull", "org/tiny-mlx@v1", "--include", "*.md", "--include", "onnx/",
                      "--exclude", "*.onnx", "--json"], env=env).stdout)
check(out["path"].endswith(v1) and os.listdir(out["path"]) == ["README.md"], f"include/exclude: {out}")
out = json.loads(run([tool, "pull", "org/tiny-gguf:Q8_0", "--json"], env=env).stdout)
check(os.listdir(out["path"]) == ["tiny-Q8_0.gguf"], f"gguf quant: {os.listdir(out['path'])}")

# Errors: exit code 1 and a sentence that says what to do.
p = run([tool, "pull", "org/gated"], env=dict(env, HF_TOKEN="hf_notlisted"), check=False)
check(p.returncode == 1 and "access list" in p.stderr and "hf_notlisted" not in p.stderr, p.stderr)
p = run([tool, "pull", "org/nothing-here"], env=env, check=False)
check(p.returncode == 1 and "org/nothing-here" in p.stderr and "not found" in p.stderr, p.stderr)
p = run([tool, "pull", "org/tiny-mlx@nope"], env=env, check=False)
check(p.returncode == 1 and "'nope'" in p.stderr, p.stderr)
p = run([tool, "pull", "not-a-model"], env=env, check=False)
check(p.returncode == 2, f"bad id exit code {p.returncode}")
p = run([tool, "pull", "org/sharded"], env=dict(env, HF_HUB_OFFLINE="1"), check=False)
check(p.returncode == 1 and "HF_HUB_OFFLINE" in p.stderr, p.stderr)

# search: the hub's own sorted answer is the oracle.
found = json.loads(run([tool, "search", "--mlx", "--sort", "likes", "--limit", "5", "--json"], env=env).stdout)
oracle = sorted((m for m in hub.json("/api/models?filter=mlx&limit=100") + hub.json(
    "/api/models?filter=mlx&limit=100&cursor=3") + hub.json("/api/models?filter=mlx&limit=100&cursor=6")
    + hub.json("/api/models?filter=mlx&limit=100&cursor=9")), key=lambda m: -m["likes"])[:5]
check([m["id"] for m in found] == [m["id"] for m in oracle], f"search: {[m['id'] for m in found]}")
table = run([tool, "search", "tiny"], env=env).stdout
check("org/tiny-mlx" in table and "org/tiny-gguf" in table and "DOWNLOADS" in table, table)

# list / du / show.
listed = json.loads(run([tool, "list", "--json"], env=env).stdout)
rows = {(r["id"], r["commit"]): r for r in listed}
check(set(rows) == {("org/tiny-mlx", commit), ("org/tiny-mlx", v1), ("org/tiny-gguf", hub.tree("org/tiny-gguf", "main")[0])},
      f"list: {set(rows)}")
main_row = rows[("org/tiny-mlx", commit)]
check(main_row["refs"] == ["main"] and main_row["quantization"] == "4bit" and main_row["architecture"] == "llama"
      and main_row["complete"], f"list row {main_row}")
du = json.loads(run([tool, "du", "--json"], env=env).stdout)
blobs = sum(os.path.getsize(os.path.join(root, f)) for root, _, fs in os.walk(cache) for f in fs
            if "/blobs" in root)
check(du["size_on_disk"] == blobs, f"du {du['size_on_disk']} vs {blobs} bytes of blobs")
show = json.loads(run([tool, "show", "tiny:1m", "--json"], env=dict(env, HF_HUB_OFFLINE="1")).stdout)
check(show["config"]["model_type"] == "llama" and show["chat_template"] is True, f"show {show}")
check(show["memory"]["weights_bytes"] == sizes["model.safetensors"], f"show memory {show['memory']}")
remote = json.loads(run([tool, "show", "org/sharded", "--json"], env=env).stdout)
check({f["path"]: f["size"] for f in remote["files"]} == hub.tree("org/sharded", "main")[1], f"remote show {remote}")
reg = json.loads(run([tool, "list", "--registry", "--json"], env=env).stdout)
check(any(e["alias"] == "tiny:1m" for e in reg) and any(e["alias"] == "qwen3:0.6b" for e in reg), "registry list")

# rm one revision, then the model.
out = json.loads(run([tool, "rm", "org/tiny-mlx@v1", "--json"], env=env).stdout)
check(out["freed_bytes"] == v1_sizes["README.md"], f"rm v1 freed {out}")
check(os.path.getsize(os.path.join(snap, "model.safetensors")) == sizes["model.safetensors"], "main survived")
run([tool, "rm", "tiny:1m"], env=env)
check(not os.path.exists(f"{cache}/models--org--tiny-mlx"), "rm left the model folder")
p = run([tool, "rm", "org/tiny-mlx"], env=env, check=False)
check(p.returncode == 1 and "not in the cache" in p.stderr, p.stderr)
print("ok: pull, search, list, show, du, rm")
