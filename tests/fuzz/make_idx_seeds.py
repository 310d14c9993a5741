"""Writes the seed corpus of the IDX fuzz target: small valid files, plain and
gzip-compressed, of ranks 1 to 3 (each prefixed with the rank byte the target
reads first), and a few near misses."""
import gzip
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def idx(dims, fill=7):
    n = 1
    for d in dims:
        n *= d
    head = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes((i * fill) % 256 for i in range(n))


seeds = {
    "rank1": (1, idx([10])),
    "rank2": (2, idx([3, 4])),
    "rank3": (3, idx([2, 2, 3])),
    "empty": (1, idx([0])),
    "short": (2, idx([3, 4])[:-1]),
    "long": (1, idx([4]) + b"\x01"),
}
for name, (rank, body) in seeds.items():
    for suffix, data in (("plain", body), ("gz", gzip.compress(body, mtime=0))):
        with open(os.path.join(out, f"{name}_{suffix}"), "wb") as f:
            f.write(bytes([rank]) + data)
