#!/usr/bin/python3
"""scripts/quant/check_quant_ref.py — our C quantizer against the numpy reference.

Builds random and edge-case matrices for every bits (2, 3, 4, 5, 6, 8) x group size (32, 64, 128)
x float type (F32, F16, BF16), runs tests/quant/quant_ref_driver (mlxe_quantize_affine and
mlxe_dequantize_affine) on them, and requires packed words, scales, biases and dequantized values
to equal scripts/quant/mlx_quant_ref.py's bit for bit (the algorithm is deterministic float32
arithmetic, so no tolerance is needed). Dequantization is also compared on random packed words
with random scales and biases. Before that it checks the reference itself: its packing against a
bit-by-bit loop written from the format description, unpack(pack(q)) == q, and that every
dequantized weight is within half a step of the original.

    /usr/bin/python3 scripts/quant/check_quant_ref.py --driver build/tests/quant_ref_driver
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mlx_quant_ref as ref  # noqa: E402

NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "U32": "<u4"}


# ---- safetensors (enough for these tests) ----

def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, (dtype, array) in tensors.items():
        raw = np.ascontiguousarray(array.astype(NUMPY_DTYPES[dtype])).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], np.frombuffer(data[b:e], dtype=NUMPY_DTYPES[info["dtype"]]).reshape(info["shape"]))
    return out


# ---- checks of the reference itself ----

def slow_pack_row(values, bits):
    """The format description, literally: value k occupies bits [k*bits, (k+1)*bits) of the row,
    bit 0 being the least significant bit of word 0."""
    words = [0] * (len(values) * bits // 32)
    for k, v in enumerate(values):
        for b in range(bits):
            if (int(v) >> b) & 1:
                pos = k * bits + b
                words[pos // 32] |= 1 << (pos % 32)
    return words


def check_reference(rng):
    for bits in ref.BITS:
        q = rng.integers(0, 2**bits, size=(3, 96), dtype=np.uint32).astype(np.uint8)
        packed = ref.pack(q, bits)
        for r in range(3):
            if list(map(int, packed[r])) != slow_pack_row(q[r], bits):
                raise AssertionError(f"reference pack() disagrees with the bit-by-bit layout at {bits} bits")
        if not np.array_equal(ref.unpack(packed, bits, 96), q):
            raise AssertionError(f"reference unpack(pack(q)) != q at {bits} bits")
    for bits in ref.BITS:
        for group in ref.GROUP_SIZES:
            w = rng.normal(0, 0.3, size=(8, group * 2)).astype(np.float32)
            q, scale, bias = ref.quantize_groups(w, bits, group, "F32")
            recon = (q.reshape(8, -1, group) * scale[:, :, None] + bias[:, :, None]).reshape(8, -1)
            step = np.repeat(np.abs(scale), group, axis=1)
            offset = np.abs(w - np.repeat(bias, group, axis=1))
            # Below the top level, q is the nearest level. Snapping the scale so that the edge
            # is exact may leave the far end of the range past the top level: those values
            # must clamp to it (they lie at or beyond it, less half a step).
            inside = q < 2**bits - 1
            if np.any(np.abs(recon - w)[inside] > (0.5 * step * (1 + 1e-4) + 1e-6)[inside]):
                raise AssertionError(f"reference quantization error above half a step at {bits} bits, group {group}")
            top = ~inside
            if np.any(offset[top] < ((2**bits - 1) * step - 0.5 * step * (1 + 1e-4) - 1e-6)[top]):
                raise AssertionError(f"reference clamps a value below the top level at {bits} bits, group {group}")
            edges = np.where(np.abs(w.reshape(8, -1, group).min(2)) > np.abs(w.reshape(8, -1, group).max(2)),
                             w.reshape(8, -1, group).min(2), w.reshape(8, -1, group).max(2))
            if not np.array_equal(bias, edges):
                raise AssertionError("reference bias is not the group's edge value")


# ---- cases ----

def make_matrix(rng, group, dtype):
    """Rows of different kinds; each row spans three groups."""
    cols = group * 3
    rows = []
    rows.append(rng.normal(0, 0.2, cols))                              # typical weights
    rows.append(rng.normal(0, 0.02, cols) + rng.choice([0, 0, 0, 1.5], cols))  # outliers
    rows.append(-np.abs(rng.normal(0.3, 0.1, cols)))                   # all negative (Metal differs here)
    rows.append(np.abs(rng.normal(0.3, 0.1, cols)))                    # all positive
    row = np.zeros(cols)
    row[group:2 * group] = 0.5                                         # zeros, a constant, ties below
    t = rng.normal(0, 0.1, group)
    t[0], t[1] = 0.25, -0.25
    row[2 * group:] = np.clip(t, -0.25, 0.25)                          # |min| == |max|
    rows.append(row)
    rows.append(rng.normal(0, 1e-6, cols))                             # tiny values (f16 subnormals)
    rows.append(rng.normal(0, 30.0, cols))                             # large range
    rows.append(np.round(rng.normal(0, 4, cols)) / 4)                  # many exact ties in rounding
    m = np.array(rows, dtype=np.float32)
    if dtype in ("F32", "BF16"):
        m[0, :group] = np.float32(1e33)                                # edge/1e-7 overflows
    return ref.from_f32(m, dtype)


def build_cases(rng):
    cases = {}
    for bits in ref.BITS:
        for group in ref.GROUP_SIZES:
            for dtype in ref.DTYPES:
                cases[f"q.b{bits}.g{group}.{dtype}"] = (dtype, make_matrix(rng, group, dtype))
                rows, cols = 5, group * 2
                packed = rng.integers(0, 2**32, size=(rows, cols * bits // 32), dtype=np.uint64).astype(np.uint32)
                scales = ref.from_f32(rng.normal(0, 0.05, (rows, cols // group)), dtype)
                biases = ref.from_f32(rng.normal(0, 0.5, (rows, cols // group)), dtype)
                name = f"d.b{bits}.g{group}.{dtype}"
                cases[name + ".packed"] = ("U32", packed)
                cases[name + ".scales"] = (dtype, scales)
                cases[name + ".biases"] = (dtype, biases)
    return cases


def raw_bits(array):
    return np.ascontiguousarray(array).view(np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--driver", required=True, help="tests/quant_ref_driver executable")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    check_reference(rng)

    cases = build_cases(rng)
    failures, compared = [], 0
    with tempfile.TemporaryDirectory(prefix="mlxe-quant-ref-") as tmp:
        in_path, out_path = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
        write_safetensors(in_path, cases)
        subprocess.run([args.driver, in_path, out_path], check=True)
        ours = read_safetensors(out_path)

    for name, (dtype, array) in cases.items():
        bits, group = int(name.split(".")[1][1:]), int(name.split(".")[2][1:])
        if name.startswith("q."):
            packed, scales, biases = ref.quantize(array, bits, group, dtype)
            expected = {"packed": packed, "scales": scales, "biases": biases,
                        "deq": ref.dequantize(packed, scales, biases, bits, group, dtype, array.shape[1])}
            base = name
        elif name.endswith(".packed"):
            base = name[: -len(".packed")]
            dtype, scales = cases[base + ".scales"]
            biases = cases[base + ".biases"][1]
            cols = array.shape[1] * 32 // bits
            expected = {"deq": ref.dequantize(array, scales, biases, bits, group, dtype, cols)}
        else:
            continue
        for part, want in expected.items():
            key = f"{base}.{part}"
            if key not in ours:
                failures.append(f"{key}: missing from the driver's output")
                continue
            got = ours[key][1]
            compared += 1
            if got.shape != want.shape:
                failures.append(f"{key}: shape {got.shape}, reference {want.shape}")
            elif not np.array_equal(raw_bits(got), raw_bits(want.astype(got.dtype))):
                diff = np.flatnonzero(raw_bits(got) != raw_bits(want.astype(got.dtype)))
                failures.append(f"{key}: {diff.size} bytes differ (first at byte {diff[0]})")

    for f in failures[:20]:
        print("FAIL", f)
    print(f"{compared} tensors compared bit for bit over {len(ref.BITS)} bit widths x "
          f"{len(ref.GROUP_SIZES)} group sizes x {len(ref.DTYPES)} types; {len(failures)} differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
