// tests/hub/js_client.mjs — drives the official JavaScript client
// (@huggingface/hub, pinned in tests/oracles/hub) for the interop test:
//   node js_client.mjs download HUB_URL CACHE_DIR REPO [REVISION]  -> prints the snapshot path
//   node js_client.mjs file HUB_URL CACHE_DIR REPO PATH             -> prints the file path
//   node js_client.mjs scan CACHE_DIR                               -> prints scanCacheDir as JSON
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../oracles/hub/package.json"));
const hub = require("@huggingface/hub");

const [mode, ...args] = process.argv.slice(2);
if (mode === "download") {
  const [hubUrl, cacheDir, repo, revision] = args;
  const out = await hub.snapshotDownload({ repo, cacheDir, hubUrl, revision });
  console.log(out);
} else if (mode === "file") {
  const [hubUrl, cacheDir, repo, file] = args;
  const out = await hub.downloadFileToCacheDir({ repo, path: file, cacheDir, hubUrl });
  console.log(out);
} else if (mode === "scan") {
  const info = await hub.scanCacheDir(args[0]);
  const repos = info.repos.map((r) => ({
    id: r.id.name,
    type: r.id.type,
    size: r.size,
    filesCount: r.filesCount,
    revisions: r.revisions.map((v) => ({
      commit: v.commitOid,
      refs: [...v.refs].sort(),
      size: v.size,
      files: v.files.map((f) => ({ path: path.relative(v.path, f.path), size: f.blob.size })).sort((a, b) => a.path.localeCompare(b.path)),
    })),
  }));
  console.log(JSON.stringify({ size: info.size, repos, warnings: info.warnings.map(String) }));
} else {
  console.error("unknown mode " + mode);
  process.exit(2);
}
