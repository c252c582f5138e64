#!/usr/bin/python3
"""bench/make_random_model.py — random-weight model folders with real models' shapes.

Writes bench/models/<name>/{config.json, generation_config.json, model.safetensors}
with the tensor names, shapes, dtype (BF16) and config.json of the published model,
so loaders and kernels can be benchmarked at real sizes without downloading
weights. Values are random (matrices and biases N(0, 0.02), norm weights 1.0, as
a fresh init), so outputs are meaningless; no tokenizer files are written.

numpy only (Debian's /usr/bin/python3 has it). Tensors are generated and written
one chunk at a time, so memory stays at a few hundred MB per process whatever the
model size. --jobs N writes whole tensors from N processes at their offsets (the
same bytes: each tensor has its own random stream), for the 16 GB Llama-3.1-8B
shape inside one GPU-machine call (bench/cuda/compare.sh).

    /usr/bin/python3 bench/make_random_model.py qwen2.5-0.5b llama-3.2-1b [--jobs 2]
    /usr/bin/python3 bench/make_random_model.py --list
"""

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np

STD = 0.02
CHUNK = 1 << 23  # elements generated per step (32 MiB of float32)

# config.json as the published models ship it (transformers 4 style), and their
# generation_config.json.
MODELS = {
    "qwen2.5-0.5b": dict(
        config={
            "architectures": ["Qwen2ForCausalLM"],
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "eos_token_id": 151643,
            "hidden_act": "silu",
            "hidden_size": 896,
            "initializer_range": 0.02,
            "intermediate_size": 4864,
            "max_position_embeddings": 32768,
            "max_window_layers": 24,
            "model_type": "qwen2",
            "num_attention_heads": 14,
            "num_hidden_layers": 24,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0,
            "sliding_window": 32768,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.40.1",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": 151936,
        },
        generation_config={
            "bos_token_id": 151643,
            "do_sample": False,
            "eos_token_id": 151643,
            "max_new_tokens": 2048,
            "transformers_version": "4.37.0",
        },
        qkv_bias=True,
    ),
    "llama-3.2-1b": dict(
        config={
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "head_dim": 64,
            "hidden_act": "silu",
            "hidden_size": 2048,
            "initializer_range": 0.02,
            "intermediate_size": 8192,
            "max_position_embeddings": 131072,
            "mlp_bias": False,
            "model_type": "llama",
            "num_attention_heads": 32,
            "num_hidden_layers": 16,
            "num_key_value_heads": 8,
            "pretraining_tp": 1,
            "rms_norm_eps": 1e-05,
            "rope_scaling": {
                "factor": 32.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
            "rope_theta": 500000.0,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.45.0.dev0",
            "use_cache": True,
            "vocab_size": 128256,
        },
        generation_config={
            "bos_token_id": 128000,
            "do_sample": True,
            "eos_token_id": 128001,
            "temperature": 0.6,
            "top_p": 0.9,
            "transformers_version": "4.45.0.dev0",
        },
        qkv_bias=False,
    ),
}

# Llama-3.1-8B (config.json as published: untied lm_head, rope_scaling llama3 factor 8), for the
# GPU comparison (bench/cuda/compare.sh).
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


def tensor_list(spec):
    """(name, shape, kind) for every tensor of a Llama/Qwen2-style decoder; kind is
    'matrix', 'bias' or 'norm'. Tied models have no lm_head.weight, like the originals."""
    c = spec["config"]
    hidden = c["hidden_size"]
    heads = c["num_attention_heads"]
    kv_heads = c["num_key_value_heads"]
    head_dim = c.get("head_dim") or hidden // heads
    inter = c["intermediate_size"]
    out = [("model.embed_tokens.weight", (c["vocab_size"], hidden), "matrix"),
           ("model.norm.weight", (hidden,), "norm")]
    if not c.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (c["vocab_size"], hidden), "matrix"))
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (hidden,), "norm"),
            (p + "post_attention_layernorm.weight", (hidden,), "norm"),
            (p + "self_attn.q_proj.weight", (heads * head_dim, hidden), "matrix"),
            (p + "self_attn.k_proj.weight", (kv_heads * head_dim, hidden), "matrix"),
            (p + "self_attn.v_proj.weight", (kv_heads * head_dim, hidden), "matrix"),
            (p + "self_attn.o_proj.weight", (hidden, heads * head_dim), "matrix"),
            (p + "mlp.gate_proj.weight", (inter, hidden), "matrix"),
            (p + "mlp.up_proj.weight", (inter, hidden), "matrix"),
            (p + "mlp.down_proj.weight", (hidden, inter), "matrix"),
        ]
        if spec["qkv_bias"]:
            out += [
                (p + "self_attn.q_proj.bias", (heads * head_dim,), "bias"),
                (p + "self_attn.k_proj.bias", (kv_heads * head_dim,), "bias"),
                (p + "self_attn.v_proj.bias", (kv_heads * head_dim,), "bias"),
            ]
    return sorted(out)


def to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bits, rounding to nearest even (x is clobbered)."""
    u = x.view(np.uint32)
    u += np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return (u >> np.uint32(16)).astype(np.uint16)


def tensor_rng(seed, index):
    """One stream per tensor: any tensor can be regenerated alone from (seed, index)."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, index])))


def tensor_chunks(kind, n, rng):
    """A tensor's BF16 values, CHUNK at a time (little-endian uint16 arrays)."""
    if kind == "norm":
        yield np.full(n, 0x3F80, dtype="<u2")  # bf16 1.0
        return
    done = 0
    while done < n:
        m = min(CHUNK, n - done)
        x = rng.standard_normal(m, dtype=np.float32)
        x *= np.float32(STD)
        yield to_bf16_bits(x).astype("<u2", copy=False)
        done += m


def write_one(job):
    """Tensor `index` written at `offset` of the file (one --jobs worker's share)."""
    path, seed, index, kind, n, offset = job
    fd = os.open(path, os.O_WRONLY)
    try:
        for chunk in tensor_chunks(kind, n, tensor_rng(seed, index)):
            os.pwrite(fd, memoryview(chunk).cast("B"), offset)
            offset += chunk.nbytes
        return n
    finally:
        os.close(fd)


def make_model(name, out_root, seed, jobs=1):
    spec = MODELS[name]
    tensors = tensor_list(spec)
    header = {"__metadata__": {"format": "pt"}}
    offsets = []
    offset = 0
    for tname, shape, _ in tensors:
        nbytes = int(np.prod(shape)) * 2
        header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offsets.append(offset)
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned, as safetensors writes it
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
        if jobs <= 1:
            for i, (tname, shape, kind) in enumerate(tensors):
                for chunk in tensor_chunks(kind, int(np.prod(shape)), tensor_rng(seed, i)):
                    chunk.tofile(f)
        else:
            f.truncate(data_start + offset)
    if jobs > 1:
        # the same bytes from `jobs` processes, each writing whole tensors at their offsets
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
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="models to write: " + ", ".join(MODELS))
    ap.add_argument("--out", default=os.path.join(here, "models"), help="output root (default bench/models)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--jobs", type=int, default=1, help="writer processes (the same bytes for any count)")
    args = ap.parse_args()
    if args.list or not args.names:
        for n in MODELS:
            print(n)
        return 0 if args.list else 2
    for n in args.names:
        if n not in MODELS:
            print(f"unknown model '{n}'; known: {', '.join(MODELS)}", file=sys.stderr)
            return 2
    for n in args.names:
        make_model(n, args.out, args.seed, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
