#!/usr/bin/python3
"""Builds a Hugging Face hub cache fixture for the diagnostics tests.

Usage: make_fixture_cache.py CACHE_DIR

Writes the layout huggingface_hub uses (shared/docs/HUB.md section 3), with blob names computed
here by Python's hashlib (git blob sha1 for regular files, sha256 for LFS files), independently
of mlxengine's own hashing. Repos, and what a scan must say about each:

  models--org--complete    complete: two revisions (main, v1) sharing a blob, a file in a
                           subfolder, trees/{commit}.json, .no_exist/ entry
  models--org--partial     partial: config.json, the shard index and shard 1 present, shard 2
                           only as blobs/{sha}.incomplete (with an unheld lock file); README.md
                           listed in the tree record but not selected (not a problem)
  models--org--corrupted   corrupted (seen with hash verification only): config.json's content
                           changed after download, same size
  models--org--orphans     complete, plus a blob no snapshot uses and an empty subfolder
  models--org--broken      corrupted: config.json links to a missing blob
  models--org--shell       empty: blobs/, refs/, snapshots/{commit}/ all empty
  models--org--dangling    partial: refs/main names a commit with no snapshot; a partial blob
  models--org--busy        partial, being downloaded: the test holds .locks/.../{sha}.lock
  datasets--org--data      complete dataset
  stray.txt                not a repo

A JSON summary of the expected facts is printed on standard output.
"""
import hashlib
import json
import os
import sys


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def commit(seed):
    return hashlib.sha1(seed.encode()).hexdigest()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class RepoBuilder:
    def __init__(self, cache, folder):
        self.root = os.path.join(cache, folder)
        os.makedirs(os.path.join(self.root, "blobs"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "refs"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "snapshots"), exist_ok=True)

    def blob(self, data, lfs):
        name = sha256(data) if lfs else git_sha1(data)
        write(os.path.join(self.root, "blobs", name), data)
        return name

    def link(self, commit_hash, path, blob_name):
        link = os.path.join(self.root, "snapshots", commit_hash, path)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        depth = path.count("/")
        os.symlink("../../" + "../" * depth + "blobs/" + blob_name, link)

    def ref(self, name, commit_hash):
        write(os.path.join(self.root, "refs", name), commit_hash.encode())

    def tree(self, commit_hash, files):
        """files: {path: (data, lfs)}"""
        record = {"format_version": 1, "files": {}}
        for path, (data, lfs) in files.items():
            entry = {"size": len(data), "blob_id": git_sha1(data)}
            if lfs:
                entry["lfs_sha256"] = sha256(data)
                entry["lfs_size"] = len(data)
            record["files"][path] = entry
        write(os.path.join(self.root, "trees", commit_hash + ".json"), json.dumps(record).encode())

    def snapshot(self, commit_hash, files, record=True):
        for path, (data, lfs) in files.items():
            self.link(commit_hash, path, self.blob(data, lfs))
        if record:
            self.tree(commit_hash, files)


def main():
    cache = sys.argv[1]
    os.makedirs(cache, exist_ok=True)
    write(os.path.join(cache, "CACHEDIR.TAG"), b"Signature: 8a477f597d28d172789f06886806bc55\n")
    config = b'{"model_type": "llama", "hidden_size": 64}'
    weights = bytes(range(256)) * 40
    tokenizer = b'{"version": "1.0"}'
    expected = {}

    c1, c0 = commit("complete-main"), commit("complete-v1")
    r = RepoBuilder(cache, "models--org--complete")
    files = {"config.json": (config, False), "model.safetensors": (weights, True), "sub/tokenizer.json": (tokenizer, False)}
    r.snapshot(c1, files)
    r.snapshot(c0, {"config.json": (config, False)})
    r.ref("main", c1)
    r.ref("v1", c0)
    write(os.path.join(r.root, ".no_exist", c1, "generation_config.json"), b"")
    expected["org/complete"] = {"quick": "complete", "verified": "complete"}

    c2 = commit("partial-main")
    r = RepoBuilder(cache, "models--org--partial")
    index = json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                       "b": "model-00002-of-00002.safetensors"}}).encode()
    shard1, shard2 = weights[:5000], weights[5000:]
    present = {"config.json": (config, False), "model.safetensors.index.json": (index, False),
               "model-00001-of-00002.safetensors": (shard1, True)}
    r.snapshot(c2, present, record=False)
    r.tree(c2, dict(present, **{"model-00002-of-00002.safetensors": (shard2, True), "README.md": (b"# partial", False)}))
    r.ref("main", c2)
    write(os.path.join(r.root, "blobs", sha256(shard2) + ".3f2a9c1d.incomplete"), shard2[:1000])
    write(os.path.join(cache, ".locks", "models--org--partial", sha256(shard2) + ".lock"), b"")
    expected["org/partial"] = {"quick": "partial", "verified": "partial"}

    c3 = commit("corrupted-main")
    r = RepoBuilder(cache, "models--org--corrupted")
    r.snapshot(c3, {"config.json": (config, False), "model.safetensors": (weights, True)})
    r.ref("main", c3)
    damaged = bytearray(config)
    damaged[5] ^= 0x20
    write(os.path.join(r.root, "blobs", git_sha1(config)), bytes(damaged))
    expected["org/corrupted"] = {"quick": "complete", "verified": "corrupted"}

    c4 = commit("orphans-main")
    r = RepoBuilder(cache, "models--org--orphans")
    r.snapshot(c4, {"config.json": (config, False)})
    r.ref("main", c4)
    r.blob(b"an old file no revision uses", False)
    os.makedirs(os.path.join(r.root, "snapshots", c4, "unused", "deeper"))
    expected["org/orphans"] = {"quick": "complete", "verified": "complete"}

    c5 = commit("broken-main")
    r = RepoBuilder(cache, "models--org--broken")
    r.snapshot(c5, {"model.safetensors": (weights, True)}, record=False)
    r.tree(c5, {"config.json": (config, False), "model.safetensors": (weights, True)})
    r.link(c5, "config.json", "0" * 40)
    r.ref("main", c5)
    expected["org/broken"] = {"quick": "corrupted", "verified": "corrupted"}

    r = RepoBuilder(cache, "models--org--shell")
    os.makedirs(os.path.join(r.root, "snapshots", commit("shell")))
    expected["org/shell"] = {"quick": "empty", "verified": "empty"}

    r = RepoBuilder(cache, "models--org--dangling")
    r.ref("main", commit("dangling-main"))
    write(os.path.join(r.root, "blobs", sha256(weights) + ".incomplete"), weights[:10])
    expected["org/dangling"] = {"quick": "partial", "verified": "partial"}

    c8 = commit("busy-main")
    r = RepoBuilder(cache, "models--org--busy")
    r.snapshot(c8, {"config.json": (config, False)})
    r.ref("main", c8)
    write(os.path.join(r.root, "blobs", sha256(weights) + ".0badf00d.incomplete"), weights[:500])
    write(os.path.join(cache, ".locks", "models--org--busy", sha256(weights) + ".lock"), b"")
    expected["org/busy"] = {"quick": "partial", "verified": "partial"}

    c9 = commit("data-main")
    r = RepoBuilder(cache, "datasets--org--data")
    r.snapshot(c9, {"train.jsonl": (b'{"text": "hi"}\n', False)})
    r.ref("main", c9)
    expected["org/data"] = {"quick": "complete", "verified": "complete"}

    write(os.path.join(cache, "stray.txt"), b"not a repo")
    json.dump({"repos": expected, "busy_lock": os.path.join(cache, ".locks", "models--org--busy", sha256(weights) + ".lock")},
              sys.stdout)


if __name__ == "__main__":
    main()
