// tests/template/hf_jinja_render.mjs — renders the oracle cases with
// @huggingface/jinja (the second reference; Python's Jinja2 is the first).
// Usage: node hf_jinja_render.mjs NODE_MODULES CASES.json OUT.json
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [modules, casesPath, outPath] = process.argv.slice(2);
const { Template } = await import(pathToFileURL(join(modules, "@huggingface/jinja/dist/index.js")).href);
const manifest = JSON.parse(readFileSync(casesPath, "utf8"));
const compiled = manifest.templates.map((source) => {
  try {
    return { template: new Template(source) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
const results = manifest.cases.map((c) => {
  const t = compiled[c.template];
  if (t.error) return { ok: false, error: t.error };
  try {
    return { ok: true, text: t.template.render(JSON.parse(c.context)) };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e) };
  }
});
writeFileSync(outPath, JSON.stringify(results));
