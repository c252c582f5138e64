#!/usr/bin/python3
"""bench/cuda/table.py — the side-by-side table of bench/cuda/compare.sh, from its raw logs.

Two jobs:

  table.py weights PATH          JSON on stdout: bytes of the weight files of a model folder
                                 (safetensors, one file or shards) or of a GGUF file, the bytes
                                 one decoded token reads (everything but the embedding table when
                                 a separate lm_head / output matrix exists: decode reads one row
                                 of it), and for a GGUF the tensor types. compare.sh records it
                                 before deleting a model. GGUF needs gguf-py on PYTHONPATH.
  table.py table DIR             the Markdown table from DIR (compare.sh's $OUT): copy-*.txt
                                 (copy_bandwidth), weights-*.json, and per model, pair and round
                                 <model>-<pair>-r<N>-ours.txt (mlxe-bench-model's table after a
                                 512-token prompt: pp512 and decode at depth 512),
                                 -ours-d0.txt (its table for a 1-token prompt: decode from an
                                 empty context, llama-bench's tg), -llama.json (llama-bench -o
                                 json, -d 0,512), -ours-vram.txt and -llama-vram.txt
                                 (nvidia-smi memory.used samples, MiB).

Each cell is the median over rounds; within a round ours is the best of mlxe-bench-model's
--repeat runs and llama.cpp's the best of llama-bench's -r samples (the same rule for both).
Decode "of copy" = bytes read per token x tokens/s (tg128) / device-to-device copy bandwidth (bytes
read + written, median of the rounds' measurements). Goals (issue 7): decode (tg128, from an empty
context as llama-bench runs it) >= min(1.3 x llama.cpp, 0.9 x copy bandwidth / our bytes per
token), prefill >= 1.0 x llama.cpp; decode after the 512-token prompt is shown beside it.
"""

import glob
import json
import os
import re
import statistics
import struct
import sys

PAIRS = [("bf16", "BF16", "BF16"), ("q8", "MLX 8-bit g64", "Q8_0"), ("q4", "MLX 4-bit g64", "Q4_0")]
MODEL_NAMES = {"1b": "Llama-3.2-1B", "8b": "Llama-3.1-8B"}


def safetensors_tensors(folder):
    """name -> bytes, over every .safetensors file of the folder."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        for name, info in header.items():
            if name != "__metadata__":
                begin, end = info["data_offsets"]
                out[name] = end - begin
    return out


def weights(path):
    if os.path.isdir(path):
        tensors = safetensors_tensors(path)
        total = sum(tensors.values())
        untied = any(n.startswith("lm_head.") for n in tensors)
        embed = sum(b for n, b in tensors.items() if n.startswith("model.embed_tokens.")) if untied else 0
        return {"path": path, "bytes": total, "read_per_token": total - embed, "types": {}}
    import gguf  # gguf-py of the llama.cpp tree (PYTHONPATH)

    reader = gguf.GGUFReader(path)
    sizes = {t.name: int(t.n_bytes) for t in reader.tensors}
    types = {}
    for t in reader.tensors:
        if len([d for d in t.shape if d > 1]) == 2:  # matrices only; norms are F32 in every file
            key = t.tensor_type.name
            types.setdefault(key, []).append(t.name)
    total = sum(sizes.values())
    embed = sizes.get("token_embd.weight", 0) if "output.weight" in sizes else 0
    # the minority types by name (e.g. llama-quantize's Q6_K output matrix), so the table can say so
    summary = {k: (len(v) if len(v) > 3 else v) for k, v in types.items()}
    return {"path": path, "bytes": total, "read_per_token": total - embed, "types": summary}


def ours(path):
    """(load s, prefill tok/s, decode tok/s) from mlxe-bench-model's table, or None."""
    text = open(path).read()

    def cell(label):
        m = re.search(r"\|\s*" + re.escape(label) + r"[^|]*\|\s*([\d.]+)\s*\|", text)
        return float(m.group(1)) if m else None

    values = (cell("load time (s)"), cell("prefill tok/s"), cell("decode tok/s"))
    return None if None in values else values


def ours_decode(path):
    """decode tok/s from mlxe-bench-model's table, or None (no such run)."""
    if not os.path.exists(path):
        return None
    m = re.search(r"\|\s*decode tok/s[^|]*\|\s*([\d.]+)\s*\|", open(path).read())
    return float(m.group(1)) if m else None


def llama(path):
    """(prefill tok/s, decode tok/s, decode tok/s at the deepest depth or None) from llama-bench
    -o json: best sample of each test, prefill and decode from depth 0, or None."""
    try:
        rows = json.load(open(path))
    except (OSError, ValueError):
        return None
    prefill = [max(r["samples_ts"]) for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0 and not r.get("n_depth")]
    decode = [max(r["samples_ts"]) for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0 and not r.get("n_depth")]
    deep = sorted((r["n_depth"], max(r["samples_ts"])) for r in rows
                  if r["n_gen"] > 0 and r["n_prompt"] == 0 and r.get("n_depth"))
    return (prefill[0], decode[0], deep[-1][1] if deep else None) if prefill and decode else None


def vram_peak(path):
    """MiB above the first sample (taken before the engine started), or None."""
    try:
        samples = [float(x) for x in open(path).read().split() if re.fullmatch(r"[\d.]+", x)]
    except OSError:
        return None
    return max(samples) - samples[0] if len(samples) > 1 else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "–" if value is None else format(value, spec)


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def table(folder):
    copies = []
    card = "?"
    for path in sorted(glob.glob(os.path.join(folder, "copy-*.txt"))):
        m = re.search(r"median ([\d.]+) best ([\d.]+) \((.*)\)", open(path).read())
        if m:
            copies.append(float(m.group(1)))
            card = m.group(3)
    copy_gbs = median(copies)
    meta = {}
    if os.path.exists(os.path.join(folder, "meta.txt")):
        for line in open(os.path.join(folder, "meta.txt")):
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    rounds = 0
    lines = []
    goals = []
    keys = ["1b", "8b"] + sorted({os.path.basename(p).split("-bf16-")[0].split("-q8-")[0].split("-q4-")[0]
                                  for p in glob.glob(os.path.join(folder, "*-r*-ours.txt"))} - {"1b", "8b"})
    for key in keys:
        for pair, our_label, their_type in PAIRS:
            stem = f"{key}-{pair}"
            our_runs = [ours(p) for p in sorted(glob.glob(os.path.join(folder, f"{stem}-r*-ours.txt")))]
            their_runs = [llama(p) for p in sorted(glob.glob(os.path.join(folder, f"{stem}-r*-llama.json")))]
            if not our_runs and not their_runs:
                continue
            rounds = max(rounds, len(our_runs), len(their_runs))
            our_runs = [r for r in our_runs if r]
            their_runs = [r for r in their_runs if r]
            load = median(r[0] for r in our_runs)
            our_prefill, our_deep = median(r[1] for r in our_runs), median(r[2] for r in our_runs)
            our_decode = median(ours_decode(p) for p in sorted(glob.glob(os.path.join(folder, f"{stem}-r*-ours-d0.txt"))))
            their_prefill, their_decode = median(r[0] for r in their_runs), median(r[1] for r in their_runs)
            their_deep = median(r[2] for r in their_runs)
            our_vram = median(vram_peak(p) for p in glob.glob(os.path.join(folder, f"{stem}-r*-ours-vram.txt")))
            their_vram = median(vram_peak(p) for p in glob.glob(os.path.join(folder, f"{stem}-r*-llama-vram.txt")))
            our_w, their_w = {}, {}
            for side, target in (("ours", our_w), ("llama", their_w)):
                path = os.path.join(folder, f"weights-{stem}-{side}.json")
                if os.path.exists(path):
                    target.update(json.load(open(path)))

            def of_copy(w, rate):
                if not w or rate is None or not copy_gbs:
                    return None
                return w["read_per_token"] * rate / 1e9 / copy_gbs * 100

            def pct(w, rate):
                return "" if of_copy(w, rate) is None else "%"

            label = their_type
            others = {t: v for t, v in their_w.get("types", {}).items() if t != their_type}
            if others:
                label += " (" + ", ".join(f"{', '.join(v) if isinstance(v, list) else f'{v} matrices'} {t}"
                                          for t, v in sorted(others.items())) + ")"
            gb = lambda w: fmt(w["read_per_token"] / 1e9 if w else None, ".2f")  # noqa: E731
            lines.append(
                f"| {MODEL_NAMES.get(key, key)} | {our_label} | {label} | {fmt(our_prefill, ',.0f')} | "
                f"{fmt(their_prefill, ',.0f')} | {ratio(our_prefill, their_prefill)} | {fmt(our_decode, '.1f')} | "
                f"{fmt(their_decode, '.1f')} | {ratio(our_decode, their_decode)} | {fmt(our_deep, '.1f')} | "
                f"{fmt(their_deep, '.1f')} | {ratio(our_deep, their_deep)} | {gb(our_w)} | "
                f"{fmt(of_copy(our_w, our_decode), '.0f')}{pct(our_w, our_decode)} | {gb(their_w)} | "
                f"{fmt(of_copy(their_w, their_decode), '.0f')}{pct(their_w, their_decode)} | {fmt(load, '.2f')} | "
                f"{fmt(our_vram, '.0f')} | {fmt(their_vram, '.0f')} | {min(len(our_runs), len(their_runs))} |")
            if our_decode and their_decode and our_w and copy_gbs:
                target = min(1.3 * their_decode, 0.9 * copy_gbs * 1e9 / our_w["read_per_token"])
                goals.append(f"{MODEL_NAMES.get(key, key)} {our_label}: decode {our_decode:.0f} vs goal {target:.0f} tok/s "
                             f"({'met' if our_decode >= target else 'not met'}); prefill "
                             f"{ratio(our_prefill, their_prefill)}x ({'met' if (our_prefill or 0) >= (their_prefill or 1) else 'not met'})")
    print(f"{card}; device-to-device copy {fmt(copy_gbs, '.0f')} GB/s (read + written, median of {len(copies)}); "
          f"{meta.get('date', '?')}; ours {meta.get('ours', '?')}; {meta.get('llama.cpp', '?')}; "
          f"medians of up to {rounds} alternating rounds (column 'rounds'; best of each engine's repeats within a round)")
    print()
    prompt, gen = meta.get("prompt", "512"), meta.get("gen", "128")
    print(f"| model shape | ours | llama.cpp | prefill {prompt} ours tok/s | llama.cpp | ratio | decode {gen} (tg{gen}) ours tok/s "
          f"| llama.cpp | ratio | decode {gen} after {prompt} ours | llama.cpp | ratio | ours GB/token | of copy "
          "| llama.cpp GB/token | of copy | our load s | our peak VRAM MiB | llama.cpp peak VRAM MiB | rounds |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | ---: | ---: | ---: |")
    for line in lines:
        print(line)
    if goals:
        print()
        print(f"Issue 7 goals (decode tg{gen} >= min(1.3x llama.cpp, 90% of the copy roofline); prefill >= 1.0x):")
        for g in goals:
            print(f"- {g}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "weights":
        print(json.dumps(weights(sys.argv[2])))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
