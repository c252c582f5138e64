#!/usr/bin/python3
"""bench/cuda/gguf_bf16.py — bench/llamacpp/make_gguf.py's BF16 GGUF, without the float round trip.

make_gguf.py widens every weight to float32 and rounds it back to BF16 through gguf-py
(quants.quantize), several passes over 16 GB for the Llama-3.1-8B shape: minutes of one core in
a device call. A BF16 source needs none of that, so this runs make_gguf.py's own main() (same
tensor names, metadata, placeholder vocabulary, Q/K row permutation) with its two conversion
steps replaced: BF16 matrices are passed through as their uint16 bits (the permutation only
moves rows) and written as they are; norms still become F32 as there. The output is
byte-identical to `make_gguf.py SRC OUT --type bf16` (bench/cuda/README.md says how that was
checked); F32/F16 sources go the original way.

    PYTHONPATH=<llama.cpp>/gguf-py /usr/bin/python3 bench/cuda/gguf_bf16.py SRC OUT.gguf
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llamacpp"))
import make_gguf  # noqa: E402

_original_as_f32 = make_gguf.as_f32
_original_quantize = make_gguf.quants.quantize


def as_bits_or_f32(entry):
    dtype, shape, raw = entry
    if dtype == "BF16" and len(shape) == 2:
        return np.frombuffer(raw, dtype="<u2").reshape(shape)
    return _original_as_f32(entry)


def quantize_passing_bits(data, qtype):
    if qtype == make_gguf.gguf.GGMLQuantizationType.BF16 and data.dtype == np.dtype("<u2"):
        return data
    return _original_quantize(data, qtype)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    make_gguf.as_f32 = as_bits_or_f32
    make_gguf.quants.quantize = quantize_passing_bits
    sys.argv = [sys.argv[0], sys.argv[1], sys.argv[2], "--type", "bf16"]
    make_gguf.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
