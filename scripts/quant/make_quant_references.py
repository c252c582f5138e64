#!/usr/bin/env python3
"""scripts/quant/make_quant_references.py — transformers' outputs for MLX-quantized fixture models.

For each (fixture, bits, group size) below, loads tests/fixtures/models/<fixture> with transformers
(float32 compute, eager attention, CPU, one thread, as scripts/fixtures/make_fixtures.py did), and
replaces every weight that mlx-lm's quantize_model would quantize — each 2-D ".weight" of a Linear or
Embedding (embed_tokens, the projections, an untied lm_head) whose input size is a multiple of the group
size, in the checkpoint's dtype — by its quantized-then-dequantized value computed with the numpy
reference (scripts/quant/mlx_quant_ref.py): float32(scale) * q + float32(bias), the weights a quantized
matmul computes with. A tied lm_head is the quantized embedding. Then it records the logits of the
fixture's reference sequences and greedy continuations (model.generate with the KV cache, and a full
recompute per step) into tests/fixtures/quant/<fixture>-b<bits>g<group>/reference.json.

Greedy paths avoid near-ties: prompts are tried in a fixed order until top-1 minus top-2 exceeds 1% of
the larger at every step of both paths (the prompt used is recorded).

Needs PyTorch + transformers and numpy (run on the GPU machine; computes on its CPU):
    python3 scripts/quant/make_quant_references.py [--fixtures tests/fixtures/models] [--out tests/fixtures/quant]
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mlx_quant_ref as ref  # noqa: E402

NEW_TOKENS = 32
REL_GAP = 1e-2
PROMPT_ATTEMPTS = 64
BOS = 1
VOCAB = 256

# A spread of bit widths and group sizes over the fixtures. qwen3-bf16 with group 128 leaves the
# 64-wide q/k/v/gate/up projections and the embedding unquantized (input size not a multiple of
# 128), as mlx-lm does; its 128-wide o_proj and down_proj are quantized.
CASES = [
    ("llama-f32", 4, 64),
    ("llama-f32", 8, 32),
    ("llama-bf16-llama3rope-tied", 4, 32),
    ("llama-f32-linear-rope", 6, 64),
    ("llama-f32-dynamic-rope", 5, 32),
    ("mistral-f32-sliding", 3, 32),
    ("qwen2-f32", 4, 64),
    ("qwen2-f32-yarn", 8, 64),
    ("qwen3-bf16", 8, 128),
    ("qwen3-f32", 2, 32),
]


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def sig7(x):
    return [float(f"{v:.7g}") for v in x]


def load_model(path):
    import torch
    import transformers
    kwargs = dict(attn_implementation="eager")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, **kwargs)
    model.eval()
    return model


def quantize_weights(model, weights_dtype, bits, group):
    """Replaces the weights mlx-lm would quantize; returns their module names."""
    import torch
    stored = "BF16" if weights_dtype == "bfloat16" else "F32"
    done, modules = set(), []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith(".weight") or p.dim() != 2 or p.shape[1] % group != 0:
                continue
            if "norm" in name.split(".")[-2]:
                continue
            if p.data_ptr() in done:  # tied lm_head: already the quantized embedding
                continue
            done.add(p.data_ptr())
            w = p.detach().cpu().numpy().astype(np.float32)
            w_stored = ref.from_f32(w, stored)
            if not np.array_equal(ref.to_f32(w_stored, stored), w):
                raise RuntimeError(f"{name}: weights are not exactly {stored}")
            packed, scales, biases = ref.quantize(w_stored, bits, group, stored)
            deq = ref.dequantize_exact_f32(packed, scales, biases, bits, group, stored, w.shape[1])
            p.copy_(torch.from_numpy(deq))
            modules.append(name[: -len(".weight")])
    return sorted(modules)


def rel_gap(row):
    import torch
    top = torch.topk(row.float(), 2).values
    a, b = float(top[0]), float(top[1])
    return (a - b) / max(abs(a), abs(b), 1e-30)


def greedy_generate(model, prompt):
    import torch
    from transformers import GenerationConfig
    ids = torch.tensor([prompt])
    gc = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=None, pad_token_id=0,
                          bos_token_id=BOS)
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc,
                             output_logits=True, return_dict_in_generate=True)
    tokens = out.sequences[0, len(prompt):].tolist()
    rows = getattr(out, "logits", None) or out.scores
    return tokens, [r[0] for r in rows]


def greedy_recompute(model, prompt):
    import torch
    seq, rows = list(prompt), []
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([seq]), use_cache=False).logits[0, -1]
            rows.append(logits)
            seq.append(int(torch.argmax(logits)))
    return seq[len(prompt):], rows


def greedy_with_prompt_search(model, first_prompt, seed):
    import torch
    gen = torch.Generator().manual_seed(seed)
    best = None
    for attempt in range(PROMPT_ATTEMPTS):
        if attempt == 0:
            prompt = list(first_prompt)
        else:
            prompt = torch.randint(3, VOCAB, (len(first_prompt),), generator=gen).tolist()
            prompt[0] = BOS
        gen_tokens, gen_rows = greedy_generate(model, prompt)
        rec_tokens, rec_rows = greedy_recompute(model, prompt)
        gap = min(min(rel_gap(r) for r in gen_rows), min(rel_gap(r) for r in rec_rows))
        result = dict(prompt=prompt, prompt_attempt=attempt, max_new_tokens=NEW_TOKENS, eos_ignored=True,
                      near_tie_rule=f"top1 - top2 > {REL_GAP} * max(|top1|, |top2|) at every step",
                      generate=gen_tokens, recompute=rec_tokens,
                      generate_equals_recompute=gen_tokens == rec_tokens,
                      min_rel_gap_generate=round(min(rel_gap(r) for r in gen_rows), 5),
                      min_rel_gap_recompute=round(min(rel_gap(r) for r in rec_rows), 5))
        if gap > REL_GAP:
            return result
        if best is None or gap > best[0]:
            best = (gap, result)
    best[1]["near_tie_rule"] += f" NOT MET: best of {PROMPT_ATTEMPTS} prompts has gap {best[0]:.3g}"
    return best[1]


def make_case(fixtures, out_dir, fixture, bits, group):
    import torch
    import transformers
    src = os.path.join(fixtures, fixture)
    with open(os.path.join(src, "reference.json")) as f:
        base = json.load(f)
    model = load_model(src)
    modules = quantize_weights(model, base["weights_dtype"], bits, group)
    sequences = []
    # the first two reference sequences (5 and 12 tokens); for dynamic NTK also the last (17 tokens,
    # past max_position_embeddings, so rescaled) -- enough to check every layer and position kind
    chosen = base["sequences"][:2] + (base["sequences"][-1:] if "dynamic" in fixture else [])
    with torch.no_grad():
        for s in chosen:
            logits = model(torch.tensor([s["input_ids"]]), use_cache=False).logits[0].float()
            sequences.append(dict(input_ids=s["input_ids"], logits=[sig7(row.tolist()) for row in logits]))
    greedy = greedy_with_prompt_search(model, base["greedy"]["prompt"], seed=bits * 1000 + group)
    reference = dict(
        fixture=fixture,
        bits=bits,
        group_size=group,
        weights_dtype=base["weights_dtype"],
        compute_dtype="float32",
        quantized_modules=modules,
        weights=("each module in quantized_modules uses float32(scale) * q + float32(bias) from MLX affine "
                 "quantization (mlx_quant_ref.quantize) of the checkpoint's weights in their stored type; "
                 "everything else is unchanged"),
        generator=dict(script="scripts/quant/make_quant_references.py", transformers=transformers.__version__,
                       torch=torch.__version__, numpy=np.__version__, python=platform.python_version(),
                       device="cpu", torch_threads=torch.get_num_threads(), attn_implementation="eager"),
        sequences=sequences,
        greedy=greedy,
    )
    name = f"{fixture}-b{bits}g{group}"
    os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    with open(os.path.join(out_dir, name, "reference.json"), "w") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")
    log(name, f"{len(modules)} modules quantized; prompt attempt {greedy['prompt_attempt']}; gaps",
        greedy["min_rel_gap_generate"], greedy["min_rel_gap_recompute"])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", default=os.path.join(root, "tests", "fixtures", "models"))
    parser.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "quant"))
    parser.add_argument("--only", action="append", help="fixture name (repeatable)")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    for fixture, bits, group in CASES:
        if args.only and fixture not in args.only:
            continue
        make_case(args.fixtures, args.out, fixture, bits, group)


if __name__ == "__main__":
    main()
