#!/usr/bin/python3
"""bench/llamacpp/make_gguf.py — a GGUF copy of a benchmark model folder, for llama.cpp.

Reads a Hugging Face folder written by bench/make_random_model.py (config.json + safetensors,
llama or qwen2) and writes the same weights as GGUF in one of llama.cpp's types: F16, BF16, Q8_0
or Q4_0 (every 2-D weight, the embedding included; norms and biases F32), with the tensor names,
metadata and Q/K row order convert_hf_to_gguf.py uses for these architectures. llama.cpp needs a
vocabulary to load a model, so a placeholder SentencePiece-style one of the model's size is written
(control tokens 0-2, the 256 byte tokens, then "t<i>"); benchmarks feed token ids.

Uses gguf-py from the llama.cpp source bundled in node-llama-cpp (PYTHONPATH=<llama.cpp>/gguf-py),
numpy, and writes tensor by tensor (peak memory about one tensor).

    PYTHONPATH=.../gguf-py /usr/bin/python3 bench/llamacpp/make_gguf.py SRC OUT.gguf --type q4_0
"""

import argparse
import json
import os
import struct

import numpy as np

import gguf
from gguf import quants

TYPES = {
    "f16": gguf.GGMLQuantizationType.F16,
    "bf16": gguf.GGMLQuantizationType.BF16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
}
FILE_TYPES = {"f16": 1, "bf16": 32, "q8_0": 7, "q4_0": 2}  # llama_ftype
NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def open_tensors(folder):
    """name -> (dtype, shape, memmap of the raw bytes)."""
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for name in files:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
        for key, info in header.items():
            if key != "__metadata__":
                b, e = info["data_offsets"]
                out[key] = (info["dtype"], info["shape"], data[b:e])
    return out


def as_f32(entry):
    dtype, shape, raw = entry
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape)
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
    raise ValueError(f"unsupported dtype {dtype}")


def permute(w, n_head, n_head_kv):
    # convert_hf_to_gguf.py LlamaModel.permute: HF's rotate-half rows to GGML's interleaved pairs
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--type", choices=sorted(TYPES), required=True)
    args = parser.parse_args()
    cfg = json.load(open(os.path.join(args.src, "config.json")))
    arch = {"llama": "llama", "qwen2": "qwen2"}[cfg["model_type"]]
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    tensors = open_tensors(args.src)
    qtype = TYPES[args.type]

    plan = []  # (gguf name, hf name, type or None for F32)
    plan.append(("token_embd.weight", "model.embed_tokens.weight", qtype))
    for layer in range(cfg["num_hidden_layers"]):
        for hf, gg in NAMES.items():
            name = f"model.layers.{layer}.{hf}"
            if name in tensors:
                plan.append((f"blk.{layer}.{gg}", name, qtype if len(tensors[name][1]) == 2 else None))
    plan.append(("output_norm.weight", "model.norm.weight", None))
    if not cfg.get("tie_word_embeddings", False) and "lm_head.weight" in tensors:
        plan.append(("output.weight", "lm_head.weight", qtype))

    writer = gguf.GGUFWriter(args.out, arch)
    writer.add_name(os.path.basename(os.path.normpath(args.src)))
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    writer.add_file_type(FILE_TYPES[args.type])
    writer.add_vocab_size(cfg["vocab_size"])
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"t{i}" for i in range(len(tokens), cfg["vocab_size"])]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (len(tokens) - len(types))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)

    for gg, hf, t in plan:
        shape = list(tensors[hf][1])
        if t is None:
            writer.add_tensor_info(gg, shape, np.dtype(np.float32), int(np.prod(shape)) * 4)
        elif t == gguf.GGMLQuantizationType.F16:
            writer.add_tensor_info(gg, shape, np.dtype(np.float16), int(np.prod(shape)) * 2)
        else:
            block, size = gguf.GGML_QUANT_SIZES[t]
            if t == gguf.GGMLQuantizationType.BF16:
                writer.add_tensor_info(gg, shape, np.dtype(np.uint16), int(np.prod(shape)) * 2, raw_dtype=t)
            else:
                byte_shape = shape[:-1] + [shape[-1] // block * size]
                writer.add_tensor_info(gg, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=t)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for gg, hf, t in plan:
        w = as_f32(tensors[hf])
        if hf.endswith("q_proj.weight") and arch == "llama":
            w = permute(w, n_head, n_head)
        elif hf.endswith("k_proj.weight") and arch == "llama":
            w = permute(w, n_head, n_kv)
        if t is None:
            data = w.astype(np.float32)
        elif t == gguf.GGMLQuantizationType.F16:
            data = w.astype(np.float16)
        else:
            data = quants.quantize(w, t)
        writer.write_tensor_data(data)
        del w, data
    writer.close()


if __name__ == "__main__":
    main()
