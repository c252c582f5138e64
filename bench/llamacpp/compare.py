#!/usr/bin/python3
"""bench/llamacpp/compare.py — mlxengine against llama.cpp on the CPU, side by side in one run.

For each model shape (bench/make_random_model.py: the same random weights for both engines) and
each precision pair of equal bits per weight — ours BF16 / llama.cpp F16 and BF16, ours MLX 8-bit
and 4-bit (group 64) / llama.cpp Q8_0 and Q4_0 — it runs llama.cpp's llama-bench and our
`mlxengine bench` alternately, `--rounds` times, and prints the medians of prefill (128 tokens) and
decode (32 tokens) tokens/s, our/llama.cpp ratio (of the medians; "paired": the median of each
round's ratio of our decode to llama.cpp's run next to it), decode as a fraction of this machine's
memory read bandwidth (bench_memory_bandwidth, measured before each model of each round and right
before each of our runs, the best of those taken as the roofline: decode reads every weight once per
token; "of median" against their median, "of adjacent" the median over rounds of our decode against
the measurement taken just before it, the machine's bandwidth of that moment), and our peak RSS
beside the weight files + our context (KV cache and scratch).
Our default on AVX-512 VNNI processors multiplies 4/8-bit weights with int8 activations in decode
(llama.cpp's way); --float adds rows for our exact float-activation kernels (MLXE_CPU_KERNELS=float)
on the same models, --split rows for our BF16 decode on split activations (MLXE_CPU_KERNELS=avx512-int8-split),
--only one width's rows. --baseline DIR adds a second build of ours (e.g. one of main before a
change) run in the same rounds, after ours in the first round and before it in the next, and so on,
and prints its medians and ours / baseline.

Nothing is installed: llama.cpp comes from tests/oracles/llamacpp/node_modules (scripts/setup.sh
installs the pinned npm packages): the prebuilt libllama/ggml of @node-llama-cpp/linux-x64 3.21.1,
and llama-bench compiled here (g++, one file) from the llama.cpp source bundled in
node-llama-cpp 3.21.1 against those libraries; its gguf-py writes the GGUF copies
(bench/llamacpp/make_gguf.py). Models and builds are cached in .cache/llamacpp and bench/models
(both git-ignored).

    /usr/bin/python3 bench/llamacpp/compare.py [--models qwen2.5-0.5b llama-3.2-1b] [--threads 2] [--rounds 3]
                                               [--float] [--split] [--only 16-bit|8-bit|4-bit]
                                               [--baseline OTHER_BUILD_DIR]

Needs the release build (build/mlxengine, build/bench/bench_memory_bandwidth; MLXE_BUILD_DIR=build-cpu
for another build folder, e.g. one configured with -DMLXE_CUDA=OFF: the CUDA runtime adds ~150 MB of RSS).
"""

import argparse
import csv
import io
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ORACLE = os.path.join(ROOT, "tests", "oracles", "llamacpp", "node_modules")
LIBS = os.path.join(ORACLE, "@node-llama-cpp", "linux-x64", "bins", "linux-x64")
BUNDLE = os.path.join(ORACLE, "node-llama-cpp", "llama", "gitRelease.bundle")
CACHE = os.path.join(ROOT, ".cache", "llamacpp")
SOURCE = os.path.join(CACHE, "llama.cpp")
LLAMA_BENCH = os.path.join(CACHE, "llama-bench")
MODELS = os.path.join(ROOT, "bench", "models")
BUILD = os.path.join(ROOT, os.environ.get("MLXE_BUILD_DIR", "build"))

# (label, our folder suffix and convert flags, llama.cpp GGUF type, our MLXE_CPU_KERNELS or None)
PAIRS = [
    ("16-bit", "", None, "f16", None),
    ("16-bit", "", None, "bf16", None),
    ("8-bit", "-mlx-q8", ["--quantize", "--bits", "8", "--group-size", "64"], "q8_0", None),
    ("4-bit", "-mlx-q4", ["--quantize", "--bits", "4", "--group-size", "64"], "q4_0", None),
]
# With --float: our exact float-activation kernels against the same GGUFs
# (MLXE_CPU_KERNELS=float; runtime/cpu/cpu_kernels.h has the precision policy).
FLOAT_PAIRS = [
    ("16-bit", "", None, "bf16", "float"),
    ("8-bit", "-mlx-q8", None, "q8_0", "float"),
    ("4-bit", "-mlx-q4", None, "q4_0", "float"),
]
# With --split: our BF16 one-token decode on hi/lo-split activations (MLXE_CPU_KERNELS=avx512-int8-split,
# 2^-17 relative instead of the default bf16 rounding's 2^-9).
SPLIT_PAIRS = [
    ("16-bit", "", None, "bf16", "avx512-int8-split"),
]


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs).stdout


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def prepare_llama_bench():
    if os.path.exists(LLAMA_BENCH):
        return
    if not os.path.exists(BUNDLE) or not os.path.isdir(LIBS):
        sys.exit(f"missing {ORACLE}: run scripts/setup.sh (installs tests/oracles/llamacpp)")
    os.makedirs(CACHE, exist_ok=True)
    if not os.path.isdir(SOURCE):
        log("extracting llama.cpp from", BUNDLE)
        run(["git", "clone", "-q", BUNDLE, SOURCE])
    log("compiling llama-bench against the prebuilt libllama")
    run(["g++", "-O2", "-DNDEBUG", "-std=c++17", "-Iinclude", "-Iggml/include", "-Icommon", "-Ivendor",
         "tools/llama-bench/llama-bench.cpp", "tools/llama-bench/main.cpp", "-o", LLAMA_BENCH, "-L" + LIBS,
         "-l:libllama-common.so", "-l:libllama.v0.4.0.so", "-l:libggml.v0.4.0.so", "-l:libggml-base.so",
         "-Wl,-rpath," + LIBS, "-lpthread"], cwd=SOURCE)


def prepare_models(name):
    src = os.path.join(MODELS, name)
    if not os.path.exists(os.path.join(src, "config.json")):
        log("writing random model", name)
        run(["/usr/bin/python3", os.path.join(ROOT, "bench", "make_random_model.py"), name])
    for _, suffix, flags, gguf_type, _ in PAIRS:
        ours = src + suffix
        if flags and not os.path.exists(os.path.join(ours, "config.json")):
            log("mlxengine convert", name, " ".join(flags))
            run([os.path.join(BUILD, "mlxengine"), "convert", src, ours, "--quiet"] + flags)
        gguf = os.path.join(MODELS, "gguf", f"{name}-{gguf_type}.gguf")
        if not os.path.exists(gguf):
            log("writing", os.path.basename(gguf))
            os.makedirs(os.path.dirname(gguf), exist_ok=True)
            env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE, "gguf-py"))
            run(["/usr/bin/python3", os.path.join(ROOT, "bench", "llamacpp", "make_gguf.py"), src, gguf + ".part",
                 "--type", gguf_type], env=env)
            os.rename(gguf + ".part", gguf)


def llama_cpp_rates(gguf, threads, prompt, gen):
    # The CPU backends (libggml-cpu-<arch>.so) are found next to the working directory.
    out = run([LLAMA_BENCH, "-m", gguf, "-t", str(threads), "-p", str(prompt), "-n", str(gen), "-r", "1",
               "-o", "csv"], cwd=LIBS)
    rows = list(csv.DictReader(io.StringIO(out)))
    prefill = next(float(r["avg_ts"]) for r in rows if int(r["n_prompt"]) > 0)
    decode = next(float(r["avg_ts"]) for r in rows if int(r["n_gen"]) > 0)
    return prefill, decode


def our_rates(folder, threads, prompt, gen, kernels=None, build=BUILD):
    env = dict(os.environ)
    env.pop("MLXE_CPU_KERNELS", None)
    if kernels:
        env["MLXE_CPU_KERNELS"] = kernels
    out = run([os.path.join(build, "mlxengine"), "bench", "--model", folder, "--threads", str(threads),
               "--prompt-tokens", str(prompt), "--gen-tokens", str(gen), "--repeat", "1"], env=env)
    prefill = float(re.search(r"prefill tok/s[^|]*\|\s*([\d.]+)", out).group(1))
    decode = float(re.search(r"decode tok/s[^|]*\|\s*([\d.]+)", out).group(1))
    rss = float(re.search(r"peak RSS \(MB\)[^|]*\|\s*([\d.]+)", out).group(1))
    context = float(re.search(r"context ([\d.]+) MB", out).group(1))
    return prefill, decode, rss, context


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".safetensors"))


def bandwidth(threads):
    out = run([os.path.join(BUILD, "bench", "bench_memory_bandwidth"), "--threads", str(threads), "--mb", "512"])
    return float(re.search(r"([\d.]+) GB/s", out).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["qwen2.5-0.5b"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--float", action="store_true",
                        help="also run our float-activation quantized kernels (MLXE_CPU_KERNELS=float)")
    parser.add_argument("--split", action="store_true",
                        help="also run our BF16 decode on split activations (MLXE_CPU_KERNELS=avx512-int8-split)")
    parser.add_argument("--only", choices=["16-bit", "8-bit", "4-bit"],
                        help="only the pairs of this width")
    parser.add_argument("--baseline", metavar="BUILD_DIR",
                        help="another build of ours (its mlxengine) run in the same rounds, for before/after")
    args = parser.parse_args()
    pairs = PAIRS + (FLOAT_PAIRS if args.float else []) + (SPLIT_PAIRS if args.split else [])
    if args.only:
        pairs = [p for p in pairs if p[0] == args.only]
    prepare_llama_bench()
    for name in args.models:
        prepare_models(name)

    cpu = run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).strip()
    flags = run(["sh", "-c", "grep -m1 flags /proc/cpuinfo"])
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    results = {}
    bw = []
    for r in range(args.rounds):
        for name in args.models:
            bw.append(bandwidth(args.threads))
            for label, suffix, _, gguf_type, kernels in pairs:
                gguf = os.path.join(MODELS, "gguf", f"{name}-{gguf_type}.gguf")
                key = (name, label, gguf_type, kernels)
                theirs = llama_cpp_rates(gguf, args.threads, args.prompt, args.gen)
                # the bandwidth right before our run: the machine's moment (it swings ~2x on the shared VM)
                adjacent = bandwidth(args.threads)
                bw.append(adjacent)
                folder = os.path.join(MODELS, name + suffix)

                def baseline_rates():
                    return our_rates(folder, args.threads, args.prompt, args.gen, kernels,
                                     os.path.abspath(args.baseline))

                base = None
                # the baseline runs before ours in odd rounds, after in even ones (no seat favoured)
                if args.baseline and r % 2 == 1:
                    base = baseline_rates()
                ours = our_rates(folder, args.threads, args.prompt, args.gen, kernels)
                if args.baseline and r % 2 == 0:
                    base = baseline_rates()
                results.setdefault(key, []).append((ours, theirs, base, adjacent))
                log(f"round {r + 1}: {name} {label}{' ' + kernels if kernels else ''} vs {gguf_type}: "
                    f"ours {ours[0]:.1f}/{ours[1]:.2f}, "
                    f"llama.cpp {theirs[0]:.1f}/{theirs[1]:.2f}"
                    f"{f', baseline {base[0]:.1f}/{base[1]:.2f}' if base else ''} tok/s (prefill/decode)")

    # The roofline is the best read bandwidth seen during the run: neighbours on a shared machine
    # only ever lower a measurement.
    bandwidth_gbs, bandwidth_median = max(bw), statistics.median(bw)
    load = os.getloadavg()[0]
    print(f"CPU: {cpu} ({isa}), {args.threads} threads; memory read bandwidth {bandwidth_gbs:.1f} GB/s "
          f"(best of {len(bw)} measurements, median {bandwidth_median:.1f}); load average {load:.1f} at the end; "
          f"medians of {args.rounds} alternating rounds")
    print()
    baseline_head = " | baseline prefill | decode | decode ours / baseline" if args.baseline else ""
    print(f"| model | ours | llama.cpp | prefill {args.prompt} ours | llama.cpp | ratio "
          f"| decode {args.gen} ours | llama.cpp | ratio | paired | our decode GB/s | of bandwidth | of median | of adjacent "
          f"| our peak RSS MB | weights + context MB{baseline_head} |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
          + (" ---: | ---: | ---: |" if args.baseline else ""))
    for (name, label, gguf_type, kernels), runs in results.items():
        suffix = next(s for lab, s, _, t, _ in pairs if lab == label and t == gguf_type)
        ours_prefill = statistics.median(o[0] for o, _, _, _ in runs)
        ours_decode = statistics.median(o[1] for o, _, _, _ in runs)
        theirs_prefill = statistics.median(t[0] for _, t, _, _ in runs)
        theirs_decode = statistics.median(t[1] for _, t, _, _ in runs)
        ours_rss = statistics.median(o[2] for o, _, _, _ in runs)
        baseline_cells = ""
        if args.baseline:
            base_prefill = statistics.median(b[0] for _, _, b, _ in runs)
            base_decode = statistics.median(b[1] for _, _, b, _ in runs)
            baseline_cells = f" {base_prefill:.1f} | {base_decode:.2f} | {ours_decode / base_decode:.2f} |"
        ours_context = runs[0][0][3]
        weights = folder_bytes(os.path.join(MODELS, name + suffix))
        decode_gbs = weights * ours_decode / 1e9
        # per round: our decode over llama.cpp's run next to it (both see the machine's bandwidth
        # state of that moment, which flips between runs on a shared VM), then the median
        paired = statistics.median(o[1] / t[1] for o, t, _, _ in runs)
        # per round: our decode's GB/s over the bandwidth measured just before it
        of_adjacent = statistics.median(weights * o[1] / 1e9 / a for o, _, _, a in runs)
        ours_label = {"16-bit": "BF16", "8-bit": "MLX 8-bit g64", "4-bit": "MLX 4-bit g64"}[label]
        if kernels:
            ours_label += f" ({kernels})"
        print(f"| {name} | {ours_label} | {gguf_type.upper()} | {ours_prefill:.1f} | {theirs_prefill:.1f} | "
              f"{ours_prefill / theirs_prefill:.2f} | {ours_decode:.2f} | {theirs_decode:.2f} | "
              f"{ours_decode / theirs_decode:.2f} | {paired:.2f} | {decode_gbs:.1f} | {decode_gbs / bandwidth_gbs:.0%} | "
              f"{decode_gbs / bandwidth_median:.0%} | {of_adjacent:.0%} | {ours_rss:.0f} | {weights / 1048576 + ours_context:.0f} |"
              + baseline_cells)


if __name__ == "__main__":
    main()
