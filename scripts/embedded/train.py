#!/usr/bin/env python3
"""Train the embedded default model (models/default) on the GPU machine.

Input: the folder written by scripts/embedded/prepare_corpus.py (KJV Bible plain
text and ChatML conversations derived from it, with a held-out split).

Steps, in order (each later step is guarded so that a failure there still
leaves the saved model behind):
  1. a byte-level BPE tokenizer of 4096 tokens with the `tokenizers` library,
     special tokens <|endoftext|> (0), <|im_start|> (1), <|im_end|> (2), and a
     ChatML chat_template in tokenizer_config.json;
  2. a small LlamaForCausalLM (hidden 256, 8 layers, 4 heads / 2 KV heads,
     intermediate 704, context 512, tied embeddings: about 7 M parameters)
     trained with AdamW in bf16 autocast on packed 512-token windows of a mix
     of plain text (twice per epoch) and conversations, for a wall-clock
     budget (or a fixed number of steps with --steps);
  3. save_pretrained (safetensors, BF16) plus the tokenizer files;
  4. golden outputs from the saved BF16 weights run in float32 (TF32 off):
     greedy continuations (64 new tokens, argmax, no stop at EOS) of 8 prompts
     with token ids and the top-1/top-2 logit margins, and the perplexity of
     heldout_sample.txt (method in perplexity_contiguous()).

Seeded (torch, numpy, python) and deterministic as far as the GPU allows; the
step count of a time-budgeted run depends on the machine's speed, so the run
records it and --steps N repeats it.

Usage: python3 train.py CORPUS_DIR OUT_DIR [--budget-s 240] [--steps N]
"""
import argparse
import gzip
import json
import math
import os
import random
import shutil
import sys
import time
import traceback

import numpy as np
import torch

SEED = 1234
CONTEXT = 512
VOCAB = 4096
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

RAW_PROMPTS = [
    "Genesis 1:1 In the beginning God",
    "John 3:16 For God so loved",
    "Psalms 23:1 The LORD is my shepherd",
    "And it came to pass, when",
]
CHAT_PROMPTS = [
    [{"role": "user", "content": "Quote John 3:16."}],
    [{"role": "user", "content": "Complete this verse: The LORD is my shepherd"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "What does Genesis 1:3 say?"}],
    [{"role": "user", "content": "Recite Psalms 23:4."}],
]
GOLDEN_NEW_TOKENS = 64


def log(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


def render_chatml(messages, add_generation_prompt=False):
    """What CHAT_TEMPLATE renders (checked against transformers below)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def read_lines_gz(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def load_corpus(corpus_dir):
    train_text = read_lines_gz(os.path.join(corpus_dir, "train.txt.gz"))
    train_docs = [c for c in train_text.split("\n\n") if c.strip()]
    with open(os.path.join(corpus_dir, "heldout.txt"), encoding="utf-8") as f:
        heldout_docs = [c for c in f.read().split("\n\n") if c.strip()]
    convs = {}
    for split in ("train", "heldout"):
        text = read_lines_gz(os.path.join(corpus_dir, f"{split}_chat.jsonl.gz"))
        convs[split] = [json.loads(line)["messages"] for line in text.splitlines() if line]
    return train_docs, heldout_docs, convs["train"], convs["heldout"]


def train_tokenizer(train_docs, train_convs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)

    def texts():
        # The special tokens are atomic added tokens: train merges on the
        # contents and the role names only, not on the markup.
        for d in train_docs:
            yield d + "\n"
        for msgs in train_convs:
            for m in msgs:
                yield m["role"] + "\n" + m["content"] + "\n"

    tok.train_from_iterator(texts(), trainer=trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def wrap_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        bos_token=None, unk_token=None, model_max_length=CONTEXT,
        clean_up_tokenization_spaces=False, chat_template=CHAT_TEMPLATE)


def encode_docs(tok, texts):
    eot = tok.token_to_id("<|endoftext|>")
    return [np.asarray(e.ids + [eot], dtype=np.int64) for e in tok.encode_batch(texts)]


def epoch_stream(docs, rng):
    order = rng.permutation(len(docs))
    flat = np.concatenate([docs[i] for i in order])
    n = len(flat) // CONTEXT
    return torch.from_numpy(flat[: n * CONTEXT].reshape(n, CONTEXT))


def make_model(vocab_size):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=256, intermediate_size=704, num_hidden_layers=8,
        num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=CONTEXT,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, hidden_act="silu",
        attention_bias=False, mlp_bias=False, initializer_range=0.02,
        bos_token_id=0, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(config)


@torch.no_grad()
def mean_loss(model, windows, device, batch=64, autocast=True):
    """Mean next-token loss over [n, CONTEXT] windows (each predicts tokens 1..)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        x = windows[i:i + batch].to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x).logits.float()
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += nll.item()
        count += x[:, 1:].numel()
    model.train()
    return total / max(count, 1)


def windows_of(docs):
    flat = np.concatenate(docs)
    n = len(flat) // CONTEXT
    return torch.from_numpy(flat[: n * CONTEXT].reshape(n, CONTEXT))


def train(model, train_docs_ids, eval_sets, device, budget_s, fixed_steps, batch, metrics):
    rng = np.random.default_rng(SEED)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=2e-3, betas=(0.9, 0.95), eps=1e-8, fused=True)
    peak_lr, min_lr, warmup = 2e-3, 1e-4, 100
    total_steps = fixed_steps or 10 ** 9  # fixed after timing when budgeted
    stream, pos, epoch = epoch_stream(train_docs_ids, rng).to(device), 0, 0
    start = time.time()
    timing_from = None
    step, ema = 0, None
    history = []
    next_eval = 60.0
    model.train()
    while step < total_steps:
        if pos + batch > len(stream):
            stream, pos, epoch = epoch_stream(train_docs_ids, rng).to(device), 0, epoch + 1
        x = stream[pos:pos + batch]
        pos += batch
        if step < warmup:
            lr = peak_lr * (step + 1) / warmup
        else:
            frac = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            lr = min_lr + 0.5 * (peak_lr - min_lr) * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0 or step == 1:
            value = loss.item()
            ema = value if ema is None else 0.9 * ema + 0.1 * value
        elapsed = time.time() - start
        if fixed_steps is None:
            if step == 20:
                torch.cuda.synchronize()
                timing_from = (step, time.time())
            if step == 120:
                torch.cuda.synchronize()
                per_step = (time.time() - timing_from[1]) / (step - timing_from[0])
                # Leave ~8% of the budget for evaluations.
                total_steps = max(step + 1, int(step + (budget_s * 0.92 - elapsed) / per_step))
                log(f"timing: {per_step * 1000:.1f} ms/step -> {total_steps} steps")
            if elapsed > budget_s * 1.1:
                log("wall-clock budget exceeded: stopping at step", step)
                break
        if step % 100 == 0:
            log(f"step {step}/{total_steps} epoch {epoch} lr {lr:.2e} loss(ema) {ema:.4f} "
                f"{elapsed:.0f}s")
        if elapsed >= next_eval:
            next_eval += 60.0
            row = {"step": step, "seconds": round(elapsed, 1), "train_loss_ema": ema}
            for name, w in eval_sets.items():
                row[name] = mean_loss(model, w, device)
            history.append(row)
            log("eval", json.dumps(row))
    torch.cuda.synchronize()
    metrics["train_seconds"] = round(time.time() - start, 1)
    metrics["steps"] = step
    metrics["epochs_started"] = epoch + 1
    metrics["batch"] = batch
    metrics["tokens_seen"] = step * batch * CONTEXT
    metrics["history"] = history
    metrics["optimizer"] = {"name": "AdamW", "peak_lr": peak_lr, "min_lr": min_lr,
                            "warmup_steps": warmup, "schedule": "linear warmup, cosine decay",
                            "betas": [0.9, 0.95], "weight_decay": 0.1, "grad_clip": 1.0,
                            "precision": "fp32 master weights, bf16 autocast"}


def save_tokenizer_files(hf_tok, out_dir):
    hf_tok.save_pretrained(out_dir)
    cfg_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.update({"chat_template": CHAT_TEMPLATE, "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>", "bos_token": None, "add_bos_token": False,
                "add_eos_token": False, "model_max_length": CONTEXT,
                "clean_up_tokenization_spaces": False, "tokenizer_class": "PreTrainedTokenizerFast"})
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    # One place for the template: tokenizer_config.json (transformers would
    # prefer a chat_template.jinja file over it when both exist).
    jinja = os.path.join(out_dir, "chat_template.jinja")
    if os.path.exists(jinja):
        os.remove(jinja)


@torch.no_grad()
def greedy(model, ids, n_new, device):
    """Argmax continuation by full recomputation each step (no KV cache)."""
    seq = list(ids)
    out, margins = [], []
    for _ in range(n_new):
        x = torch.tensor([seq], device=device)
        logits = model(input_ids=x).logits[0, -1].float()
        top = torch.topk(logits, 2)
        nxt = int(top.indices[0])
        margins.append(round(float(top.values[0] - top.values[1]), 5))
        out.append(nxt)
        seq.append(nxt)
    return out, margins


@torch.no_grad()
def perplexity_contiguous(model, ids, device, window=CONTEXT):
    """Perplexity over contiguous, non-overlapping windows.

    The token ids of the whole text (no BOS, no special tokens added) are cut
    into consecutive windows of `window` tokens (the last may be shorter); each
    window is run alone from an empty context; within a window token j (j >= 1)
    is scored by its log-probability given tokens 0..j-1 of the same window;
    the first token of each window is not scored. perplexity = exp(sum of
    negative log-probabilities / number of scored tokens). Log-softmax in
    float32."""
    total, count = 0.0, 0
    for s in range(0, len(ids), window):
        chunk = ids[s:s + window]
        if len(chunk) < 2:
            continue
        x = torch.tensor([chunk], device=device)
        logits = model(input_ids=x).logits[0].float()
        logp = torch.log_softmax(logits[:-1], dim=-1)
        nll = -logp.gather(1, x[0, 1:, None]).sum()
        total += float(nll)
        count += len(chunk) - 1
    return math.exp(total / count), total, count


def golden(out_dir, corpus_dir, device, metrics, n_new=GOLDEN_NEW_TOKENS):
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        tok = AutoTokenizer.from_pretrained(out_dir)
    except Exception as e:  # noqa: BLE001 - fall back to the class itself
        log("AutoTokenizer failed, using PreTrainedTokenizerFast:", e)
        from transformers import PreTrainedTokenizerFast
        tok = PreTrainedTokenizerFast.from_pretrained(out_dir)
    model = LlamaForCausalLM.from_pretrained(out_dir)
    loaded_dtype = str(next(model.parameters()).dtype)
    model = model.float().to(device).eval()
    result = {"method": "saved BF16 weights converted to float32, run in float32 on CUDA with "
                        "TF32 off; greedy = argmax by full recomputation each step, "
                        f"{n_new} new tokens, no stop at EOS",
              "loaded_dtype": loaded_dtype, "prompts": []}
    template_ok = True
    for kind, prompt in [("raw", p) for p in RAW_PROMPTS] + [("chat", p) for p in CHAT_PROMPTS]:
        if kind == "chat":
            text = render_chatml(prompt, add_generation_prompt=True)
            try:
                theirs = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
                template_ok = template_ok and theirs == text
            except Exception as e:  # noqa: BLE001 - recorded, not fatal
                template_ok = False
                log("apply_chat_template failed:", e)
        else:
            text = prompt
        ids = tok(text, add_special_tokens=False)["input_ids"]
        out, margins = greedy(model, ids, n_new, device)
        entry = {"kind": kind, "prompt": prompt, "prompt_text": text, "prompt_ids": ids,
                 "output_ids": out, "output_text": tok.decode(out, skip_special_tokens=False),
                 "margins": margins, "min_margin_first_48": min(margins[:48])}
        result["prompts"].append(entry)
        log(kind, repr(text[-60:]), "->", repr(entry["output_text"][:200]))
    result["chat_template_matches_transformers"] = template_ok

    with open(os.path.join(corpus_dir, "heldout_sample.txt"), encoding="utf-8") as f:
        sample = f.read()
    ids = tok(sample, add_special_tokens=False)["input_ids"]
    ppl, nll, count = perplexity_contiguous(model, ids, device)
    result["perplexity"] = {"file": "heldout_sample.txt", "window": CONTEXT, "n_tokens": len(ids),
                            "scored_tokens": count, "sum_nll": nll, "perplexity_float32": ppl,
                            "method": perplexity_contiguous.__doc__.strip(),
                            "token_ids": ids}
    bf16_model = LlamaForCausalLM.from_pretrained(out_dir).to(torch.bfloat16).to(device).eval()
    ppl_bf16, _, _ = perplexity_contiguous(bf16_model, ids, device)
    result["perplexity"]["perplexity_bf16_arithmetic"] = ppl_bf16
    log(f"perplexity of heldout_sample.txt: {ppl:.4f} (float32), {ppl_bf16:.4f} (bf16)")
    with open(os.path.join(out_dir, "..", "golden.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    metrics["heldout_sample_perplexity"] = ppl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus_dir")
    ap.add_argument("out_dir", help="receives model/ (the HF folder), golden.json, metrics.json")
    ap.add_argument("--budget-s", type=float, default=240.0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--no-smoke", action="store_true", help="skip the 3-step dry run")
    args = ap.parse_args()

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.cuda.manual_seed_all(SEED)
    device = "cuda"
    import transformers
    import tokenizers
    metrics = {"torch": torch.__version__, "transformers": transformers.__version__,
               "tokenizers": tokenizers.__version__, "gpu": torch.cuda.get_device_name(0),
               "seed": SEED}
    model_dir = os.path.join(args.out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)

    t0 = time.time()
    train_docs, heldout_docs, train_convs, heldout_convs = load_corpus(args.corpus_dir)
    tok = train_tokenizer(train_docs, train_convs)
    hf_tok = wrap_tokenizer(tok)
    save_tokenizer_files(hf_tok, model_dir)
    log(f"tokenizer: {tok.get_vocab_size()} tokens in {time.time() - t0:.1f}s")

    t0 = time.time()
    plain = encode_docs(tok, [d + "\n" for d in train_docs])
    chats = encode_docs(tok, [render_chatml(m) for m in train_convs])
    held_plain = encode_docs(tok, [d + "\n" for d in heldout_docs])
    held_chats = encode_docs(tok, [render_chatml(m) for m in heldout_convs])
    n_plain, n_chat = sum(map(len, plain)), sum(map(len, chats))
    metrics["corpus_tokens"] = {"train_plain": n_plain, "train_chat": n_chat,
                                "heldout_plain": int(sum(map(len, held_plain))),
                                "heldout_chat": int(sum(map(len, held_chats))),
                                "bytes_per_token_plain": round(
                                    sum(len(d) + 1 for d in train_docs) / n_plain, 3)}
    log("tokens:", json.dumps(metrics["corpus_tokens"]), f"in {time.time() - t0:.1f}s")
    mix = plain + plain + chats  # plain text twice per epoch
    eval_rng = np.random.default_rng(SEED + 1)
    train_eval = epoch_stream(plain, eval_rng)[:64]
    train_chat_eval = epoch_stream(chats, eval_rng)[:64]
    eval_sets = {"train_plain_loss": train_eval, "train_chat_loss": train_chat_eval,
                 "heldout_plain_loss": windows_of(held_plain),
                 "heldout_chat_loss": windows_of(held_chats)}

    if not args.no_smoke:
        # Run every later step on a 3-step model first, so that a failure in
        # saving or golden outputs shows before the long training.
        t0 = time.time()
        smoke_dir = os.path.join(args.out_dir, "smoke", "model")
        os.makedirs(smoke_dir, exist_ok=True)
        save_tokenizer_files(hf_tok, smoke_dir)
        smoke = make_model(max(VOCAB, tok.get_vocab_size())).to(device)
        smoke_metrics = {}
        train(smoke, mix, {}, device, args.budget_s, 3, 8, smoke_metrics)
        smoke.to(torch.bfloat16).save_pretrained(smoke_dir)
        golden(smoke_dir, args.corpus_dir, device, smoke_metrics, n_new=4)
        del smoke
        log(f"smoke run passed in {time.time() - t0:.1f}s")
        torch.manual_seed(SEED)
        torch.cuda.manual_seed_all(SEED)

    model = make_model(max(VOCAB, tok.get_vocab_size())).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    metrics["parameters"] = n_params
    metrics["config"] = model.config.to_dict()
    log(f"model: {n_params / 1e6:.2f} M parameters")
    try:
        train(model, mix, eval_sets, device, args.budget_s, args.steps, args.batch, metrics)
    except Exception:  # noqa: BLE001 - save what there is
        traceback.print_exc()
        metrics["train_error"] = traceback.format_exc()
    final = {name: mean_loss(model, w, device) for name, w in eval_sets.items()}
    metrics["final_losses"] = final
    log("final losses", json.dumps(final))

    model.generation_config.eos_token_id = [2, 0]
    model.generation_config.pad_token_id = 0
    model.generation_config.bos_token_id = 0
    model.to(torch.bfloat16).save_pretrained(model_dir)
    log("saved", sorted(os.listdir(model_dir)))
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1, default=str)

    try:
        golden(model_dir, args.corpus_dir, device, metrics)
    except Exception:  # noqa: BLE001 - the model is saved; report and go on
        traceback.print_exc()
        metrics["golden_error"] = traceback.format_exc()
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1, default=str)
    log("done")


if __name__ == "__main__":
    main()
