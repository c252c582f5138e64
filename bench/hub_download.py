#!/usr/bin/python3
"""bench/hub_download.py — download throughput from the local fake hub (tests/hub/fake_hub.py):
`mlxengine pull` (resume-capable, verifying sha256 while it writes, cache layout) against
`curl -L -o` (no verification) on the same LFS file, side by side, alternating runs, plus the CPU
time OpenSSL's sha256 needs for that file (the hashing share of our CPU time).
usage: bench/hub_download.py MLXENGINE [SIZE_BYTES (default 1e9)] [RUNS (default 3)]"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "hub"))
tool = sys.argv[1]
size = int(float(sys.argv[2])) if len(sys.argv) > 2 else 1_000_000_000
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3

server = subprocess.Popen(["/usr/bin/python3", os.path.join(here, "..", "tests", "hub", "fake_hub.py"),
                           "--port", "0", "--lfs-size", str(size)], stdout=subprocess.PIPE, text=True)
try:
    port = int(server.stdout.readline().split()[1])
    endpoint = f"http://127.0.0.1:{port}"
    url = f"{endpoint}/org/tiny-mlx/resolve/main/model.safetensors"
    work = tempfile.mkdtemp(prefix="mlxe-bench-hub-")

    def timed(args, env=None):
        start = time.perf_counter()
        p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"{args[0]} failed: {p.stderr.read().decode()}")
        return wall, usage.ru_utime + usage.ru_stime

    results = {"mlxengine pull": [], "curl -L": []}
    for _ in range(runs):
        out = os.path.join(work, "curl.bin")
        results["curl -L"].append(timed(["curl", "-s", "-L", "-o", out, url]))
        os.unlink(out)
        cache = os.path.join(work, "cache")
        env = dict(os.environ, HF_HUB_CACHE=cache, HF_ENDPOINT=endpoint, HF_TOKEN="", HF_HUB_OFFLINE="0",
                   HF_HUB_DISABLE_PROGRESS_BARS="1")
        results["mlxengine pull"].append(timed([tool, "pull", "org/tiny-mlx", "--include", "model.safetensors"], env))
        blob_dir = os.path.join(cache, "models--org--tiny-mlx", "blobs")
        blob = os.path.join(blob_dir, os.listdir(blob_dir)[0])
        hashing = timed(["openssl", "dgst", "-sha256", blob])
        shutil.rmtree(cache)
    print(f"downloading a {size / 1e9:.2f} GB LFS file from the local fake hub, {runs} runs each, median "
          f"({os.cpu_count()} CPUs, {os.uname().machine})")
    print(f"{'client':<16} {'wall s':>8} {'MB/s':>9} {'CPU s':>7}")
    medians = {}
    for name, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        medians[name] = wall
        print(f"{name:<16} {wall:8.2f} {size / wall / 1e6:9.1f} {cpu:7.2f}")
    print(f"{'sha256 (openssl)':<16} {'':8} {size / hashing[0] / 1e6:9.1f} {hashing[1]:7.2f}   (the hashing share of our CPU time)")
    print(f"mlxengine throughput = {100 * medians['curl -L'] / medians['mlxengine pull']:.0f}% of curl's")
    shutil.rmtree(work)
finally:
    server.terminate()
    server.wait()
