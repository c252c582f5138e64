"""tests/hub/hubtest.py — shared by the Python test drivers in tests/hub: start the fake hub on
a free 127.0.0.1 port (always stopped on exit), query it, run commands with a time limit."""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class FakeHub:
    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fake_hub.py"), "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        atexit.register(self.stop)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit("fake hub did not start")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def request(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method, data=body)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def json(self, path):
        return json.loads(self.request("GET", path))

    def reset(self):
        self.request("DELETE", "/_faults")
        self.request("DELETE", "/_log")

    def log(self):
        return self.json("/_log")

    def tree(self, repo, rev):
        """Every file of the repo at rev (following the tree's Link pages)."""
        info = self.json(f"/api/models/{repo}/revision/{rev}?blobs=true")
        return info["sha"], {s["rfilename"]: s["size"] for s in info["siblings"]}


def run(args, env=None, timeout=60, check=True):
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def temp_dir():
    d = tempfile.mkdtemp(prefix="mlxe-hubtest-")
    atexit.register(lambda: subprocess.run(["rm", "-rf", d]))
    return d


def check(condition, message):
    if not condition:
        print("FAIL:", message, file=sys.stderr)
        raise SystemExit(1)
