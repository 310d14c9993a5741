"""Writes the seed corpus of the safetensors fuzz target: valid files of the
target's model (tests/fuzz/fuzz_model.hpp) in F32, F64, F16 and BF16 (the
count as I64, as PyTorch keeps it), with special values, of a few other
models, and a few near misses, all made here from JSON text and bytes."""
import json
import math
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

# The fuzz target's model: Sequential<Dense<3, 4, ReLU>, BatchNorm1d<4>, Dense<4, 2>>.
FUZZ_MODEL = [("0.weight", [4, 3]), ("0.bias", [4]), ("2.weight", [4]), ("2.bias", [4]),
              ("3.weight", [2, 4]), ("3.bias", [2]), ("2.running_mean", [4]),
              ("2.running_var", [4]), ("2.num_batches_tracked", [])]
# Other layouts: a bare Dense<2, 3>, and a small CNN (conv, BatchNorm2d, linear).
DENSE = [("0.weight", [3, 2]), ("0.bias", [3])]
CNN = [("0.weight", [4, 1, 3, 3]), ("0.bias", [4]), ("1.weight", [4]), ("1.bias", [4]),
       ("1.running_mean", [4]), ("1.running_var", [4]), ("1.num_batches_tracked", []),
       ("4.weight", [10, 16]), ("4.bias", [10])]


def count(shape):
    n = 1
    for e in shape:
        n *= e
    return n


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def encode(dtype, values):
    if dtype == "F32":
        return struct.pack(f"<{len(values)}f", *values)
    if dtype == "F64":
        return struct.pack(f"<{len(values)}d", *values)
    if dtype == "F16":
        return b"".join(struct.pack("<e", v) if math.isfinite(v) and abs(v) < 65504
                        else struct.pack("<H", 0x7e00 if math.isnan(v) else
                                         (0x7c00 if v > 0 else 0xfc00)) for v in values)
    if dtype == "BF16":
        return b"".join(struct.pack("<H", f32_bits(v) >> 16) for v in values)
    if dtype == "I64":
        return struct.pack(f"<{len(values)}q", *[int(v) for v in values])
    raise ValueError(dtype)


def values(n, seed):
    return [math.sin(seed * 7.1 + i * 1.3) * 0.5 for i in range(n)]


def safetensors(tensors, metadata=None, order=None):
    """tensors: (name, dtype, shape, values); the header lists them in
    `order` (default: as given), the data keeps the given order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    entries = {}
    for name, dtype, shape, vals in tensors:
        raw = encode(dtype, vals)
        entries[name] = {"dtype": dtype, "shape": shape,
                         "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    for name in (order or [t[0] for t in tensors]):
        header[name] = entries[name]
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)  # aligned as the reference pads
    return struct.pack("<Q", len(text)) + text + data


def model(layout, dtype, seed=1, specials=None):
    tensors = []
    for i, (name, shape) in enumerate(layout):
        is_count = name.endswith("num_batches_tracked")
        vals = [7] if is_count else values(count(shape), seed + i)
        if specials and name in specials:
            vals = specials[name]
        tensors.append((name, "I64" if is_count else dtype, shape, vals))
    return tensors


meta = {"format": "pt", "ktnn.architecture": "fuzz"}
seeds = {}
for dtype in ("F32", "F64", "F16", "BF16"):
    seeds[f"fuzz_model_{dtype}"] = safetensors(model(FUZZ_MODEL, dtype), meta)
    seeds[f"dense_{dtype}"] = safetensors(model(DENSE, dtype))
seeds["cnn_F32"] = safetensors(model(CNN, "F32"), meta)
# Header order differs from data order, as PyTorch's writer sorts.
tensors = model(FUZZ_MODEL, "F32", seed=3)
seeds["fuzz_model_sorted"] = safetensors(tensors, None, sorted(t[0] for t in tensors))
# Special values: NaN, infinities, -0, subnormals, the largest finite values.
special = [float("nan"), float("inf"), float("-inf"), -0.0, 1e-45, 5.96e-08, 65504.0, 3.39e38]
specials = {"0.weight": special + [1.0] * 4, "3.bias": [float("nan"), 2.0 ** -24]}
for dtype in ("F32", "F16", "BF16"):
    seeds[f"specials_{dtype}"] = safetensors(model(FUZZ_MODEL, dtype, specials=specials), meta)
# One tensor more, one fewer, ktnn's own extra, a wrong shape, a float count.
seeds["extra"] = safetensors(model(FUZZ_MODEL, "F32") + [("4.weight", "F32", [2], [1.0, 2.0])])
seeds["ktnn_extra"] = safetensors(model(FUZZ_MODEL, "F32") + [("ktnn.step", "I64", [1], [5])])
seeds["missing"] = safetensors(model(FUZZ_MODEL, "F32")[:-1])
wrong = model(FUZZ_MODEL, "F32")
wrong[4] = ("3.weight", "F32", [4, 2], wrong[4][3])
seeds["wrong_shape"] = safetensors(wrong)
float_count = model(FUZZ_MODEL, "F32")
float_count[-1] = ("2.num_batches_tracked", "F32", [], [1e30])
seeds["float_count"] = safetensors(float_count)
# Edge shapes: an empty header, only metadata, zero-size tensors.
seeds["empty_header"] = safetensors([])
seeds["only_metadata"] = safetensors([], {"format": "pt"})
seeds["zero_size"] = safetensors([("a", "F32", [0], []), ("b", "F64", [3, 0], []),
                                  ("c", "I64", [], [1])])
# Near misses.
good = seeds["fuzz_model_F32"]
seeds["truncated"] = good[:-3]
seeds["trailing"] = good + b"\0\0\0\0"
seeds["header_too_long"] = struct.pack("<Q", len(good)) + good[8:]
seeds["not_json"] = struct.pack("<Q", 4) + b"{\"a\""
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
