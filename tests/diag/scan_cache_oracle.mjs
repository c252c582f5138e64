// Scans a hub cache with the official JavaScript client's scanCacheDir
// (@huggingface/hub, pinned in tests/oracles/hub) and prints what it sees as
// JSON: {repos: [{id, type, revisions: [{commit, refs}]}], warnings: [text]}.
// Usage: node scan_cache_oracle.mjs CACHE_DIR
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../oracles/hub/package.json"));
const { scanCacheDir } = require("@huggingface/hub");

const info = await scanCacheDir(process.argv[2]);
const repos = info.repos
  .map((repo) => ({
    id: repo.id.name,
    type: repo.id.type,
    revisions: repo.revisions.map((r) => ({ commit: r.commitOid, refs: [...r.refs].sort() }))
      .sort((a, b) => a.commit.localeCompare(b.commit)),
  }))
  .sort((a, b) => a.id.localeCompare(b.id));
console.log(JSON.stringify({ repos, warnings: info.warnings.map((w) => String(w.message ?? w)) }));
