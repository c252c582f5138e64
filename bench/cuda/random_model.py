#!/usr/bin/python3
"""bench/cuda/random_model.py — bench/make_random_model.py's folders, written by many processes.

The GPU comparison needs the Llama-3.1-8B shape (16 GB of BF16) inside one device call, so this
writes the same bytes as bench/make_random_model.py (same header, same per-tensor random streams
and chunking, so a folder made here and one made there are identical for the same seed) with one
worker process per core, each generating whole tensors and writing them at their offsets
(os.pwrite into a preallocated file). It adds the Llama-3.1-8B shape (config.json as published:
untied lm_head, rope_scaling llama3 factor 8) to the shapes make_random_model.py knows.

    /usr/bin/python3 bench/cuda/random_model.py --out DIR llama-3.2-1b llama-3.1-8b [--jobs 16]
"""

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import make_random_model as base  # noqa: E402

MODELS = dict(base.MODELS)
MODELS["llama-3.1-8b"] = dict(
    config={
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0",
        "use_cache": True,
        "vocab_size": 128256,
    },
    generation_config={
        "bos_token_id": 128000,
        "do_sample": True,
        "eos_token_id": 128001,
        "temperature": 0.6,
        "top_p": 0.9,
        "transformers_version": "4.43.0.dev0",
    },
    qkv_bias=False,
)


def write_one(job):
    """Generates tensor `index` exactly as base.write_tensor does and writes it at `offset`."""
    path, seed, index, kind, n, offset = job
    fd = os.open(path, os.O_WRONLY)
    try:
        if kind == "norm":
            os.pwrite(fd, np.full(n, 0x3F80, dtype="<u2").tobytes(), offset)
            return n
        rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, index])))
        done = 0
        while done < n:
            m = min(base.CHUNK, n - done)
            x = rng.standard_normal(m, dtype=np.float32)
            x *= np.float32(base.STD)
            data = base.to_bf16_bits(x).astype("<u2", copy=False)
            os.pwrite(fd, memoryview(data).cast("B"), offset + done * 2)
            done += m
        return n
    finally:
        os.close(fd)


def make_model(name, out_root, seed, jobs):
    spec = MODELS[name]
    tensors = base.tensor_list(spec)
    header = {"__metadata__": {"format": "pt"}}
    offsets = []
    offset = 0
    for tname, shape, _ in tensors:
        nbytes = int(np.prod(shape)) * 2
        header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offsets.append(offset)
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # as make_random_model.py: data 8-byte aligned
    data_start = 8 + len(blob)

    folder = os.path.join(out_root, name)
    os.makedirs(folder, exist_ok=True)
    for fname, obj in (("config.json", spec["config"]), ("generation_config.json", spec["generation_config"])):
        with open(os.path.join(folder, fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    path = os.path.join(folder, "model.safetensors")
    tmp = path + ".part"
    t0 = time.time()
    with open(tmp, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        f.truncate(data_start + offset)
    work = [(tmp, seed, i, kind, int(np.prod(shape)), data_start + offsets[i])
            for i, (_, shape, kind) in enumerate(tensors)]
    work.sort(key=lambda w: -w[4])  # largest first: the pool ends together
    with multiprocessing.Pool(jobs) as pool:
        for _ in pool.imap_unordered(write_one, work):
            pass
    os.replace(tmp, path)
    n_params = sum(int(np.prod(s)) for _, s, _ in tensors)
    print(f"{name}: {len(tensors)} tensors, {n_params / 1e6:.1f}M parameters, "
          f"{os.path.getsize(path) / 2**20:.0f} MiB in {time.time() - t0:.1f}s ({jobs} processes) -> {folder}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="models to write: " + ", ".join(MODELS))
    ap.add_argument("--out", required=True, help="output root")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    args = ap.parse_args()
    for n in args.names:
        if n not in MODELS:
            print(f"unknown model '{n}'; known: {', '.join(MODELS)}", file=sys.stderr)
            return 2
    for n in args.names:
        make_model(n, args.out, args.seed, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
