#!/usr/bin/env python3
"""The ktnn demo in PyTorch: a 784-256-128-10 ReLU MLP trained on Fashion-MNIST
with Adam (lr 1e-3), batch 128, softmax cross-entropy, float32.

The dataset is read once into tensors; samples/s counts the training loop only
(shuffle gather, forward, loss, backward, step), not loading or evaluation, as
ktnn::fit counts it. Prints one JSON line at the end:

  {"peer": "pytorch", "samples_per_second": ..., "epoch_seconds": [...],
   "test_accuracy": ..., ...}

usage: pytorch_mlp.py [--epochs N] [--threads T] [--batch B] [--seed S] [--data DIR]
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    """An IDX file (gzip-compressed) as a numpy array of its element type (uint8)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, rank = raw[0] | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = np.frombuffer(raw, dtype=">u4", count=rank, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {tuple(dims)}")
    return data.reshape(tuple(dims))


def load_split(directory, prefix):
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.reshape(len(images), 784).astype(np.float32) / np.float32(255))
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def parse_arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--data",
        default=os.environ.get("KTNN_DATA_DIR") or "/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return args


def train(model, args, shape=(784,)):
    """Trains `model` on Fashion-MNIST with Adam 1e-3 and prints the JSON line.
    `shape` is one sample's shape as the model takes it."""
    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    x_train = x_train.reshape((len(x_train),) + shape)
    x_test = x_test.reshape((len(x_test),) + shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)

    n = len(x_train)
    epoch_seconds = []
    for epoch in range(args.epochs):
        # The epoch's order is drawn before the clock starts, as ktnn's loader does.
        order = torch.randperm(n, generator=generator)
        model.train()
        start = time.perf_counter()
        for begin in range(0, n, args.batch):  # the last batch may be partial
            index = order[begin:begin + args.batch]
            xb, yb = x_train[index], y_train[index]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
        print(f"pytorch epoch {epoch + 1}/{args.epochs}: {epoch_seconds[-1]:.3f} s, "
              f"last batch loss {loss.item():.4f}", file=sys.stderr)

    model.eval()
    with torch.no_grad():
        correct = sum((model(x_test[b:b + 1000]).argmax(dim=1) == y_test[b:b + 1000]).sum().item()
                      for b in range(0, len(x_test), 1000))
    total = sum(epoch_seconds)
    print(json.dumps({
        "peer": "pytorch",
        "samples_per_second": n * args.epochs / total if total > 0 else 0.0,
        "epoch_seconds": epoch_seconds,
        "test_accuracy": correct / len(x_test),
        "epochs": args.epochs,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }))


def main():
    args = parse_arguments(__doc__.split("\n\n")[0])
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10))
    train(model, args)


if __name__ == "__main__":
    main()
