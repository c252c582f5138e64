#!/usr/bin/python3
"""bench/quantize_model.py — MLX affine quantization of a model folder, for benchmarks.

Reads SRC/model.safetensors (F32/F16/BF16) and writes DST/ with every 2-D weight
whose input size divides by the group size quantized as MLX does (mlx.core.quantize:
per group of `group_size` inputs, scale = (max - min) / (2^bits - 1), bias = min,
values packed least-significant bits first into uint32; scales and biases stored
as BF16), other tensors copied, and config.json given "quantization": {group_size,
bits}. numpy only (Debian's /usr/bin/python3).

    /usr/bin/python3 bench/quantize_model.py bench/models/qwen2.5-0.5b bench/models/qwen2.5-0.5b-q4 --bits 4
"""

import argparse
import json
import multiprocessing
import os
import shutil
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "U32": np.uint32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = np.asarray(data[start:end]).view(DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = (info["dtype"], raw)
    return tensors


def to_float(dtype, raw):
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


def to_bf16(x):
    bits = x.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)  # round to nearest even
    return (rounded >> 16).astype(np.uint16)


def quantize(w, bits, group):
    rows, cols = w.shape
    g = w.reshape(rows, cols // group, group)
    lo, hi = g.min(axis=2), g.max(axis=2)
    levels = (1 << bits) - 1
    scale = (hi - lo) / levels
    scale[scale == 0] = 1.0
    # the packed values must match the stored (BF16) scale and bias
    scale_b, bias_b = to_bf16(scale), to_bf16(lo)
    s, b = to_float("BF16", scale_b), to_float("BF16", bias_b)
    q = np.clip(np.rint((g - b[..., None]) / s[..., None]), 0, levels).astype(np.uint64).reshape(rows, cols)
    per_word = 32 // bits
    assert 32 % bits == 0, "bench quantizer packs 2, 4 or 8 bits"
    q = q.reshape(rows, cols // per_word, per_word)
    shifts = (np.arange(per_word, dtype=np.uint64) * bits)[None, None, :]
    packed = (q << shifts).sum(axis=2).astype(np.uint32)
    return packed, scale_b, bias_b


def write_safetensors(path, tensors):
    header, offset, order = {}, 0, sorted(tensors)
    for name in order:
        dtype, arr = tensors[name]
        size = arr.nbytes
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(np.ascontiguousarray(tensors[name][1]).tobytes())


def quantize_entry(job):
    """One tensor of the source (read from the mapped file in the worker): its output entries."""
    path, name, bits, group = job
    dtype, raw = read_safetensors(path)[name]
    if raw.ndim == 2 and name.endswith(".weight") and raw.shape[1] % group == 0:
        packed, scales, biases = quantize(to_float(dtype, raw), bits, group)
        base = name[: -len(".weight")]
        return [(name, ("U32", packed)), (base + ".scales", ("BF16", scales)), (base + ".biases", ("BF16", biases))]
    return [(name, (dtype, np.asarray(raw)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--bits", type=int, default=4, choices=[2, 4, 8])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=1, help="tensors quantized at once (processes)")
    args = parser.parse_args()
    os.makedirs(args.dst, exist_ok=True)
    path = os.path.join(args.src, "model.safetensors")
    jobs = [(path, name, args.bits, args.group_size) for name in read_safetensors(path)]
    out = {}
    if args.jobs > 1:
        with multiprocessing.Pool(args.jobs) as pool:
            for entries in pool.imap_unordered(quantize_entry, jobs):
                out.update(entries)
    else:
        for job in jobs:
            out.update(quantize_entry(job))
    write_safetensors(os.path.join(args.dst, "model.safetensors"), out)
    with open(os.path.join(args.src, "config.json")) as f:
        config = json.load(f)
    config["quantization"] = {"group_size": args.group_size, "bits": args.bits}
    with open(os.path.join(args.dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(args.src, extra)):
            shutil.copy(os.path.join(args.src, extra), os.path.join(args.dst, extra))
    print(f"{args.dst}: {args.bits}-bit, group {args.group_size}")


if __name__ == "__main__":
    main()
