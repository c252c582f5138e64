#!/usr/bin/python3
"""scripts/quant/mlx_quant_ref.py — an independent numpy reference for MLX affine quantization.

Written from the format description (shared/docs/MLX_QUANT.md) and the algorithm of MLX's CPU
`quantize` kernel (mlx/backend/cpu/quantized.cpp), in vectorised numpy rather than per-group loops,
so it shares no structure with src/format/mlx_quant.c. Used by scripts/quant/check_quant_ref.py
(CTest `quant_numpy_reference`) and by scripts/quant/make_quant_references.py.

Storage: a [rows, cols] matrix with `bits` and `group_size` becomes
  packed  uint32 [rows, cols * bits / 32]  each row one little-endian bit stream, value c in bits
                                           [c*bits, (c+1)*bits), least-significant bit first
  scales  T      [rows, cols / group_size]
  biases  T      [rows, cols / group_size]
with w = scale * q + bias. T is the weights' type. bfloat16 arrays are carried as uint16 bit
patterns (numpy has no bfloat16); float16 and float32 as numpy arrays.

Only Debian's /usr/bin/python3 with python3-numpy is needed.
"""

import numpy as np

BITS = (2, 3, 4, 5, 6, 8)
GROUP_SIZES = (32, 64, 128)
DTYPES = ("F32", "F16", "BF16")


# ---- float types ----

def bf16_to_f32(bits16):
    return (np.asarray(bits16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """Round to nearest even; NaN stays a quiet NaN."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    is_nan = (u & 0x7FFFFFFF) > 0x7F800000
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    quiet = ((u >> 16) | 0x40).astype(np.uint16)
    return np.where(is_nan, quiet, rounded)


def to_f32(values, dtype):
    """Stored values of dtype ('F32', 'F16', 'BF16') as float32."""
    if dtype == "BF16":
        return bf16_to_f32(values)
    return np.asarray(values).astype(np.float32)


def from_f32(x, dtype):
    """float32 values stored as dtype (round to nearest even)."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "BF16":
        return f32_to_bf16(x)
    if dtype == "F16":
        return x.astype(np.float16)
    return x.copy()


def round_to(x, dtype):
    return to_f32(from_f32(x, dtype), dtype)


# ---- packing ----

def pack(q, bits):
    """q: uint [rows, cols] values < 2**bits -> uint32 [rows, cols*bits/32]."""
    q = np.asarray(q, dtype=np.uint8)
    rows, cols = q.shape
    # every value's bits, least-significant first, laid end to end along the row
    stream = np.unpackbits(q[:, :, None], axis=2, bitorder="little")[:, :, :bits]
    stream = stream.reshape(rows, cols * bits)
    as_bytes = np.packbits(stream, axis=1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view("<u4").reshape(rows, cols * bits // 32)


def unpack(packed, bits, cols):
    packed = np.ascontiguousarray(np.asarray(packed, dtype="<u4"))
    rows = packed.shape[0]
    as_bytes = packed.view(np.uint8).reshape(rows, -1)
    stream = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, : cols * bits]
    per_value = stream.reshape(rows, cols, bits).astype(np.uint32)
    weights = (np.uint32(1) << np.arange(bits, dtype=np.uint32))
    return (per_value * weights).sum(axis=2).astype(np.uint32)


# ---- quantize / dequantize ----

def quantize_groups(w, bits, group_size, dtype):
    """w: [rows, cols] stored values of dtype. Returns (q [rows, cols] uint8, scale, bias) with
    scale and bias the float32 values of each group before rounding to dtype. Every float
    operation is float32, in the order of MLX's CPU kernel."""
    assert bits in BITS and group_size in GROUP_SIZES
    x = to_f32(w, dtype)
    rows, cols = x.shape
    assert cols % group_size == 0
    g = x.reshape(rows, cols // group_size, group_size)
    n_bins = np.float32(2**bits - 1)
    eps = np.float32(1e-7)
    w_max = g.max(axis=2)
    w_min = g.min(axis=2)
    edge_is_min = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, eps)
    scale = np.where(edge_is_min, scale, -scale)
    edge = np.where(edge_is_min, w_min, w_max)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q0 = np.rint(edge / scale)
        nonzero = q0 != 0
        scale = np.where(nonzero, edge / np.where(nonzero, q0, np.float32(1)), scale).astype(np.float32)
        bias = np.where(nonzero, edge, np.float32(0)).astype(np.float32)
        q = np.rint((g - bias[:, :, None]) / scale[:, :, None])
    q = np.clip(q, np.float32(0), n_bins)
    # 0/0 appears only when edge/1e-7 overflowed (constant group with |w| > ~3e31);
    # MLX's conversion to an integer gives 0 there on x86-64.
    q = np.where(np.isnan(q), np.float32(0), q)
    return q.reshape(rows, cols).astype(np.uint8), scale, bias


def quantize(w, bits, group_size, dtype):
    """Returns (packed, scales, biases), scales and biases stored as dtype."""
    q, scale, bias = quantize_groups(w, bits, group_size, dtype)
    return pack(q, bits), from_f32(scale, dtype), from_f32(bias, dtype)


def dequantize(packed, scales, biases, bits, group_size, dtype, cols):
    """As MLX evaluates dequantize on the CPU: q * scale and then + bias, each rounded to the
    scales' dtype. Returns stored values of dtype."""
    q = unpack(packed, bits, cols).astype(np.float32)
    rows = q.shape[0]
    s = np.repeat(to_f32(scales, dtype), group_size, axis=1).reshape(rows, cols)
    b = np.repeat(to_f32(biases, dtype), group_size, axis=1).reshape(rows, cols)
    product = round_to(q * s, dtype)
    return from_f32(round_to(product + b, dtype), dtype)


def dequantize_f32(packed, scales, biases, bits, group_size, dtype, cols):
    """The float32 values of dequantize()."""
    return to_f32(dequantize(packed, scales, biases, bits, group_size, dtype, cols), dtype)


def dequantize_exact_f32(packed, scales, biases, bits, group_size, dtype, cols):
    """float32(scale) * q + float32(bias) in float32, without rounding to dtype: the weights a
    quantized matmul computes with (our CPU kernels; MLX's qmm kernels), used for the transformers
    references of quantized models."""
    q = unpack(packed, bits, cols).astype(np.float32)
    rows = q.shape[0]
    s = np.repeat(to_f32(scales, dtype), group_size, axis=1).reshape(rows, cols)
    b = np.repeat(to_f32(biases, dtype), group_size, axis=1).reshape(rows, cols)
    return (q * s + b).astype(np.float32)
