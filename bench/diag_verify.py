#!/usr/bin/python3
"""Times `mlxengine-debug-report list-models` (every blob hashed) against the peer tools that
check the same bytes: `sha256sum` (LFS blobs) and `git hash-object` (regular files), on a
fixture cache holding one LFS blob and one regular-file blob of SIZE MiB each.

Usage: bench/diag_verify.py BUILD_DIR [SIZE_MIB]   (default 256; the page cache is warmed first)
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import time

build, size_mib = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 256
tool = os.path.join(build, "mlxengine-debug-report")
with tempfile.TemporaryDirectory() as work:
    repo = os.path.join(work, "hub", "models--bench--model")
    commit = "0" * 40
    os.makedirs(os.path.join(repo, "blobs"))
    os.makedirs(os.path.join(repo, "refs"))
    os.makedirs(os.path.join(repo, "snapshots", commit))
    data = os.urandom(size_mib << 20)
    lfs = hashlib.sha256(data).hexdigest()
    git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    for name, path in ((lfs, "model.safetensors"), (git, "other.bin")):
        with open(os.path.join(repo, "blobs", name), "wb") as f:
            f.write(data)
        os.symlink("../../blobs/" + name, os.path.join(repo, "snapshots", commit, path))
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    del data
    env = dict(os.environ, HF_HUB_CACHE=os.path.join(work, "hub"))
    blobs = [os.path.join(repo, "blobs", lfs), os.path.join(repo, "blobs", git)]

    def timed(command, **kwargs):
        best = None
        for _ in range(3):
            start = time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True, **kwargs).stdout
            elapsed = time.perf_counter() - start
            best = elapsed if best is None or elapsed < best else best
        return best, out

    subprocess.run(["cat"] + blobs, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
    ours, listing = timed([tool, "list-models"], env=env)
    assert "complete" in listing and "every blob's content was checked" in listing, listing
    sha, out = timed(["sha256sum", blobs[0]])
    assert out.startswith(lfs)
    githash, out = timed(["git", "hash-object", blobs[1]])
    assert out.strip() == git
    total = 2 * size_mib
    print(f"| what ({total} MiB: one sha256 blob, one git-sha1 blob) | seconds | MiB/s |")
    print("| --- | --- | --- |")
    print(f"| mlxengine-debug-report list-models | {ours:.3f} | {total / ours:.0f} |")
    print(f"| sha256sum + git hash-object | {sha + githash:.3f} | {total / (sha + githash):.0f} |")
    print(f"| (sha256sum alone, {size_mib} MiB) | {sha:.3f} | {size_mib / sha:.0f} |")
    print(f"| (git hash-object alone, {size_mib} MiB) | {githash:.3f} | {size_mib / githash:.0f} |")
