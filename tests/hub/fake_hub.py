#!/usr/bin/python3
"""A fake Hugging Face Hub for the tests: the routes of shared/docs/HUB.md §5, on 127.0.0.1.

Started by the tests (tests/hub/fake_hub.h, tests/hub/*.sh) with `--port 0`; it prints
"PORT <n>" on standard output once listening, and exits when its parent dies or on SIGTERM.

Repositories are generated deterministically at start (see build_repos). The hub is reached as
http://127.0.0.1:<port>; LFS files redirect to a "CDN" on the other host name,
http://localhost:<port>/cdn/..., so clients can be checked for dropping the token there.

Test control (never counted in the request log):
  POST /_faults   JSON list of rules, appended: {"match": substring of the path, "kind": ...,
                  "times": n (default 1), "skip": matching requests to let through first,
                  ...}. Kinds:
                    status      answer "status" (with "headers") instead of the route
                    raw         answer "status" with "body" verbatim (malformed JSON...)
                    drop        send "after_bytes" of the body, then close the connection
                    stall       send "after_bytes", then sleep "seconds", then close
                    wrong       serve the body with its bytes changed (same length)
                    ignore_range  answer 200 with the whole body to a Range request
                    no_commit   leave X-Repo-Commit out of a resolve answer
                    slow        send the body in 64 KiB pieces with "delay" seconds between
  DELETE /_faults clears the rules.
  GET /_log       JSON list of {method, path, headers} of every request so far.
  DELETE /_log    clears the log.
Tokens: "hf_good" may read everything; "hf_notlisted" is valid but not on the gated list;
any other bearer token is invalid.
"""
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALID_TOKENS = {"hf_good", "hf_notlisted"}
GATED_ALLOWED = {"hf_good"}


def pseudo_random_bytes(seed, size):
    """Deterministic bytes: sha256 counter stream (fast enough for a few MiB)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


HASHES = {}  # (kind, id(data)) -> hex: the data objects live as long as the server


def cached_hash(kind, data, compute):
    if len(data) < 65536:  # small (maybe short-lived) objects: id() could be reused
        return compute(data)
    key = (kind, id(data))
    if key not in HASHES:
        HASHES[key] = compute(data)
    return HASHES[key]


def git_blob_sha1(data):
    return cached_hash("sha1", data, lambda d: hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())


def sha256_hex(data):
    return cached_hash("sha256", data, lambda d: hashlib.sha256(d).hexdigest())


def make_commit(seed):
    return hashlib.sha1(seed.encode()).hexdigest()


class Repo:
    def __init__(self, repo_id, tags, downloads, likes, gated=False, params=None, created="2024-01-01T00:00:00.000Z"):
        self.repo_id = repo_id
        self.tags = tags
        self.downloads = downloads
        self.likes = likes
        self.gated = gated
        self.params = params
        self.created = created
        self.revisions = {}  # name -> commit
        self.commits = {}  # commit -> {path: (bytes, is_lfs)}

    def add_commit(self, names, files):
        commit = make_commit(self.repo_id + ":" + ",".join(names) + ":" + str(len(files)))
        self.commits[commit] = files
        for n in names:
            self.revisions[n] = commit
        return commit


def json_file(obj):
    return (json.dumps(obj, indent=2).encode(), False)


def build_repos(lfs_size):
    repos = {}

    def add(repo):
        repos[repo.repo_id] = repo
        return repo

    template = b"{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    tiny = add(Repo("org/tiny-mlx", ["mlx", "safetensors", "text-generation", "llama"], 500, 7, params=1_000_000))
    base_files = {
        "config.json": json_file({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                  "num_attention_heads": 4, "num_key_value_heads": 2,
                                  "max_position_embeddings": 2048, "vocab_size": 256,
                                  "quantization": {"group_size": 64, "bits": 4}}),
        "tokenizer.json": json_file({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}),
        "tokenizer_config.json": json_file({"eos_token": "</s>"}),
        "chat_template.jinja": (template, False),
        "model.safetensors": (pseudo_random_bytes("tiny-weights", lfs_size), True),
        "README.md": (b"# tiny\nA tiny test model.\n", False),
        "onnx/model.onnx": (pseudo_random_bytes("onnx", 4096), True),
        "extra/notes.txt": (b"notes in a subfolder\n", False),
    }
    tiny.add_commit(["main"], base_files)
    v1 = dict(base_files)
    v1["config.json"] = json_file({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1})
    tiny.add_commit(["v1", "refs/pr/1"], v1)

    sharded = add(Repo("org/sharded", ["mlx", "safetensors", "qwen2"], 90, 1, params=2_000_000))
    sharded.add_commit(["main"], {
        "config.json": json_file({"model_type": "qwen2", "hidden_size": 32}),
        "model.safetensors.index.json": json_file({"weight_map": {}}),
        "model-00001-of-00002.safetensors": (pseudo_random_bytes("shard1", lfs_size // 2 + 17), True),
        "model-00002-of-00002.safetensors": (pseudo_random_bytes("shard2", lfs_size // 3 + 5), True),
        "tokenizer.json": json_file({"version": "1.0"}),
    })

    gated = add(Repo("org/gated", ["mlx", "text-generation"], 10, 2, gated="manual"))
    gated.add_commit(["main"], {"config.json": json_file({"model_type": "llama"}),
                                "model.safetensors": (pseudo_random_bytes("gated", 2048), True)})

    gguf = add(Repo("org/tiny-gguf", ["gguf", "text-generation"], 300, 3, params=1_000_000))
    gguf.add_commit(["main"], {
        "README.md": (b"gguf\n", False),
        "tiny-Q4_K_M.gguf": (pseudo_random_bytes("q4", 5000), True),
        "tiny-Q8_0.gguf": (pseudo_random_bytes("q8", 9000), True),
    })

    huge = add(Repo("org/huge", ["mlx"], 1, 0))
    huge.add_commit(["main"], {"config.json": json_file({"model_type": "llama"}),
                               "model.safetensors": (10 ** 15, True)})

    # Many small repos so search paginates.
    for i in range(7):
        r = add(Repo(f"mlx-community/search-model-{i}", ["mlx", "text-generation"] + (["gguf"] if i % 3 == 0 else []),
                     1000 - i * 100 + (i % 2) * 450, i, params=(i + 1) * 1_000_000_000,
                     created=f"2024-0{i + 1}-01T00:00:00.000Z"))
        r.add_commit(["main"], {"config.json": json_file({"model_type": "llama", "i": i})})
    return repos


class State:
    def __init__(self, lfs_size):
        self.repos = build_repos(lfs_size)
        self.renamed = {"org/old-name": "org/tiny-mlx"}
        self.lock = threading.Lock()
        self.faults = []
        self.log = []
        self.blobs = {}  # sha256 -> bytes for the CDN
        for repo in self.repos.values():
            for files in repo.commits.values():
                for data, is_lfs in files.values():
                    if is_lfs and not isinstance(data, int):
                        self.blobs[sha256_hex(data)] = data

    def take_fault(self, path, kinds):
        with self.lock:
            for rule in self.faults:
                if rule.get("times", 1) <= 0 or rule["kind"] not in kinds:
                    continue
                if rule.get("match", "") in path:
                    if rule.get("skip", 0) > 0:
                        rule["skip"] -= 1
                        continue
                    rule["times"] = rule.get("times", 1) - 1
                    return rule
        return None


STATE = None


def entry_for(path, data, is_lfs):
    if isinstance(data, int):  # a file that only exists in listings (for the disk-space check)
        sha = hashlib.sha256(b"virtual:%d" % data).hexdigest()
        return {"type": "file", "path": path, "size": data, "oid": git_blob_sha1(sha.encode()),
                "lfs": {"oid": sha, "size": data, "pointerSize": 134}}
    entry = {"type": "file", "path": path, "size": len(data)}
    if is_lfs:
        sha = sha256_hex(data)
        entry["oid"] = git_blob_sha1(b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (sha.encode(), len(data)))
        entry["lfs"] = {"oid": sha, "size": len(data), "pointerSize": 134}
    else:
        entry["oid"] = git_blob_sha1(data)
    return entry


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"

    def log_message(self, *args):
        pass

    # ---- helpers ----
    def send_json(self, obj, status=200, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_code(self, status, code=None, message=None, extra=None):
        headers = dict(extra or {})
        if code:
            headers["X-Error-Code"] = code
        if message:
            headers["X-Error-Message"] = message
        self.send_json({"error": message or code or "error"}, status, headers)

    def token(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def check_auth(self):
        """Returns False (and answers) when the token is invalid."""
        tok = self.token()
        if tok is not None and tok not in VALID_TOKENS:
            self.send_error_code(401, None, "Invalid credentials in Authorization header")
            return False
        return True

    def find_repo(self, repo_id):
        """Answers the repo errors; returns the Repo or None."""
        repo = STATE.repos.get(repo_id)
        if repo is None:
            # Like the real hub: 401 anonymous, 404 authenticated.
            self.send_error_code(401 if self.token() is None else 404, "RepoNotFound",
                                 "Repository not found")
            return None
        if repo.gated:
            tok = self.token()
            if tok not in GATED_ALLOWED:
                self.send_error_code(401 if tok is None else 403, "GatedRepo",
                                     f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in.")
                return None
        return repo

    def resolve_rev(self, repo, rev):
        if rev in repo.revisions:
            return repo.revisions[rev]
        if rev in repo.commits:
            return rev
        self.send_error_code(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return None

    def apply_status_fault(self, path):
        rule = STATE.take_fault(path, {"status", "raw"})
        if rule and rule["kind"] == "raw":  # a verbatim answer, e.g. malformed JSON
            body = rule.get("body", "").encode()
            self.send_response(rule.get("status", 200))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True
        if rule:
            self.send_error_code(rule.get("status", 503), rule.get("code"), rule.get("message", "injected"),
                                 rule.get("headers"))
            return True
        return False

    def record(self):
        if not self.path.startswith("/_"):
            with STATE.lock:
                STATE.log.append({"method": self.command, "path": self.path,
                                  "host": self.headers.get("Host", ""),
                                  "headers": {k.lower(): v for k, v in self.headers.items()}})

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    # ---- verbs ----
    def do_HEAD(self):
        self.record()
        self.route()

    def do_GET(self):
        self.record()
        self.route()

    def do_POST(self):
        self.record()
        body = self.read_body()
        if self.path == "/_faults":
            with STATE.lock:
                STATE.faults.extend(json.loads(body))
            return self.send_json({"ok": True})
        parsed = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in parsed.path.split("/")]
        # /api/models/{org}/{name}/paths-info/{rev}
        if len(parts) >= 7 and parts[1] == "api" and parts[2] == "models" and parts[5] == "paths-info":
            if not self.check_auth() or self.apply_status_fault(parsed.path):
                return
            repo = self.find_repo(parts[3] + "/" + parts[4])
            if not repo:
                return
            commit = self.resolve_rev(repo, "/".join(parts[6:]))
            if not commit:
                return
            req = json.loads(body or b"{}")
            files = repo.commits[commit]
            out = [entry_for(p, *files[p]) for p in req.get("paths", []) if p in files]
            if req.get("expand"):
                for e in out:  # the real hub names the last commit that touched the path
                    e["lastCommit"] = {"id": commit, "title": "update", "date": repo.created}
            return self.send_json(out)
        self.send_error_code(404, None, "no such route")

    def do_DELETE(self):
        if self.path == "/_faults":
            with STATE.lock:
                STATE.faults = []
        elif self.path == "/_log":
            with STATE.lock:
                STATE.log = []
        self.send_json({"ok": True})

    def route(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        path = parsed.path
        if path == "/_log":
            with STATE.lock:
                return self.send_json(STATE.log)
        if path.startswith("/cdn/"):
            return self.serve_cdn(path[5:])
        if not self.check_auth():
            return
        if self.apply_status_fault(path):
            return
        raw = path.split("/")
        parts = [urllib.parse.unquote(p) for p in raw]
        if path == "/api/models":
            return self.search(query)
        if len(parts) >= 5 and parts[1] == "api" and parts[2] == "models":
            repo_id = parts[3] + "/" + parts[4]
            if repo_id in STATE.renamed:
                return self.redirect_renamed(raw, 3)
            repo = self.find_repo(repo_id)
            if not repo:
                return
            if len(parts) == 5:
                return self.model_info(repo, "main", query)
            if parts[5] == "revision" and len(parts) >= 7:
                return self.model_info(repo, "/".join(parts[6:]), query)
            if parts[5] == "tree" and len(parts) >= 7:
                return self.tree(repo, parts[6], "/".join(parts[7:]), query)
            return self.send_error_code(404, None, "no such route")
        # /{org}/{name}/resolve/{rev}/{path...}
        if len(parts) >= 6 and parts[3] == "resolve":
            repo_id = parts[1] + "/" + parts[2]
            if repo_id in STATE.renamed:
                return self.redirect_renamed(raw, 1)
            repo = self.find_repo(repo_id)
            if not repo:
                return
            return self.resolve(repo, parts[4], "/".join(parts[5:]))
        self.send_error_code(404, None, "no such route")

    def redirect_renamed(self, raw, index):
        new = STATE.renamed[urllib.parse.unquote(raw[index]) + "/" + urllib.parse.unquote(raw[index + 1])]
        org, name = new.split("/")
        location = "/".join(raw[:index] + [org, name] + raw[index + 2:])
        if "?" in self.path:
            location += "?" + self.path.split("?", 1)[1]
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def model_json(self, repo, commit, blobs, expand=None):
        files = repo.commits[commit]
        siblings = []
        for p in sorted(files):
            s = {"rfilename": p}
            if blobs:
                e = entry_for(p, *files[p])
                s["size"] = e["size"]
                s["blobId"] = e["oid"]
                if "lfs" in e:
                    s["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 134}
            siblings.append(s)
        obj = {"_id": "x" + commit[:23], "id": repo.repo_id, "modelId": repo.repo_id, "sha": commit,
               "lastModified": repo.created, "createdAt": repo.created, "private": False,
               "gated": repo.gated, "disabled": False, "downloads": repo.downloads, "likes": repo.likes,
               "tags": repo.tags, "library_name": "mlx" if "mlx" in repo.tags else None,
               "pipeline_tag": "text-generation", "siblings": siblings}
        if repo.params:
            obj["safetensors"] = {"parameters": {"BF16": repo.params}, "total": repo.params}
        if expand is not None:
            keep = set(expand) | {"id", "_id"}
            obj = {k: v for k, v in obj.items() if k in keep}
        return obj

    def model_info(self, repo, rev, query):
        commit = self.resolve_rev(repo, rev)
        if not commit:
            return
        blobs = query.get("blobs", ["false"])[0] == "true"
        self.send_json(self.model_json(repo, commit, blobs))

    def tree(self, repo, rev, sub, query):
        commit = self.resolve_rev(repo, rev)
        if not commit:
            return
        files = repo.commits[commit]
        recursive = query.get("recursive", ["false"])[0] == "true"
        entries = []
        dirs = set()
        prefix = sub + "/" if sub else ""
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):]
            if "/" in rest and not recursive:
                dirs.add(prefix + rest.split("/")[0])
                continue
            if "/" in rest:
                dirs.add(prefix + rest.split("/")[0])
            entries.append(entry_for(p, *files[p]))
        for d in sorted(dirs):
            entries.append({"type": "directory", "path": d, "oid": make_commit(d), "size": 0})
        # Paginate with a small page so clients must follow Link.
        page = int(query.get("page_size", ["4"])[0])
        start = int(query.get("cursor", ["0"])[0])
        chunk = entries[start:start + page]
        headers = {}
        if start + page < len(entries):
            q = dict((k, v[0]) for k, v in query.items())
            q["cursor"] = str(start + page)
            headers["Link"] = f'<http://{self.headers.get("Host")}{urllib.parse.urlsplit(self.path).path}?{urllib.parse.urlencode(q)}>; rel="next"'
        self.send_json(chunk, 200, headers)

    def search(self, query):
        repos = list(STATE.repos.values())
        text = query.get("search", [None])[0]
        author = query.get("author", [None])[0]
        filters = query.get("filter", [])
        if text:
            repos = [r for r in repos if text.lower() in r.repo_id.lower()]
        if author:
            repos = [r for r in repos if r.repo_id.split("/")[0] == author]
        for f in filters:
            repos = [r for r in repos if f in r.tags]
        sort = query.get("sort", [None])[0]
        if sort in ("downloads", "likes"):
            repos.sort(key=lambda r: getattr(r, sort), reverse=True)
        elif sort in ("createdAt", "lastModified"):
            repos.sort(key=lambda r: r.created, reverse=True)
        else:
            repos.sort(key=lambda r: r.repo_id)
        limit = int(query.get("limit", ["1000"])[0])
        repos = repos[:limit]
        page = 3
        start = int(query.get("cursor", ["0"])[0])
        chunk = repos[start:start + page]
        blobs = query.get("blobs", ["false"])[0] == "true" or "siblings" in query.get("expand", [])
        expand = query.get("expand") or None
        out = [self.model_json(r, r.revisions["main"], blobs, expand) for r in chunk]
        headers = {}
        if start + page < len(repos):
            q = [(k, v) for k, vs in query.items() for v in vs if k != "cursor"] + [("cursor", str(start + page))]
            headers["Link"] = f'<http://{self.headers.get("Host")}/api/models?{urllib.parse.urlencode(q)}>; rel="next"'
        self.send_json(out, 200, headers)

    def resolve(self, repo, rev, path):
        commit = self.resolve_rev(repo, rev)
        if not commit:
            return
        files = repo.commits[commit]
        if ".." in path.split("/"):
            return self.send_error_code(400, None, "bad path")
        if path not in files:
            return self.send_error_code(404, "EntryNotFound", f"{path} does not exist on \"{rev}\"",
                                        {"X-Repo-Commit": commit})
        data, is_lfs = files[path]
        if isinstance(data, int):
            return self.send_error_code(500, None, "virtual file has no content")
        no_commit = STATE.take_fault(self.path, {"no_commit"})
        common = {} if no_commit else {"X-Repo-Commit": commit}
        if is_lfs:
            sha = sha256_hex(data)
            host = "localhost:" + str(self.server.server_address[1])
            location = f"http://{host}/cdn/{sha}?repo={urllib.parse.quote(repo.repo_id, safe='')}"
            self.send_response(302)
            for k, v in common.items():
                self.send_header(k, v)
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("ETag", f'"{entry_for(path, data, True)["oid"]}"')
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_body(data, f'"{git_blob_sha1(data)}"', common)

    def serve_cdn(self, rest):
        sha = rest.split("?")[0]
        if self.apply_status_fault(self.path):
            return
        data = STATE.blobs.get(sha)
        if data is None:
            return self.send_error_code(404, None, "no such blob")
        self.send_body(data, f'"{sha}"', {})

    def send_body(self, data, etag, headers):
        status = 200
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and not STATE.take_fault(self.path, {"ignore_range"}):
            spec = rng.replace("bytes=", "")
            a, _, b = spec.partition("-")
            start = int(a) if a else 0
            end = int(b) if b else len(data) - 1
            if start >= len(data) and len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(end, len(data) - 1)
            status = 206
        body = data[start:end + 1]
        wrong = STATE.take_fault(self.path, {"wrong"}) if self.command == "GET" else None
        if wrong:
            body = bytes(b ^ 0x5A for b in body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        fault = STATE.take_fault(self.path, {"drop", "stall", "slow"})
        if fault and fault["kind"] in ("drop", "stall"):
            cut = min(int(fault.get("after_bytes", len(body) // 2)), len(body))
            self.wfile.write(body[:cut])
            self.wfile.flush()
            if fault["kind"] == "stall":
                time.sleep(float(fault.get("seconds", 5)))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault and fault["kind"] == "slow":
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i:i + 65536])
                self.wfile.flush()
                time.sleep(float(fault.get("delay", 0.05)))
            return
        view = memoryview(body)
        for i in range(0, len(body), 1 << 20):
            self.wfile.write(view[i:i + (1 << 20)])


def watch_parent(parent):
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def main():
    global STATE
    port = 0
    lfs_size = 300_000
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--lfs-size":
            lfs_size = int(args.pop(0))
    STATE = State(lfs_size)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
