#!/usr/bin/env python3
"""examples/fashion_mnist_cnn in PyTorch: conv(1->32, 3x3, pad 1)-ReLU-maxpool 2
-> conv(32->64, 3x3, pad 1)-ReLU-maxpool 2 -> flatten -> Linear(3136->128)-ReLU
-> Linear(128->10), Adam 1e-3, batch 128, float32, NCHW.

Timed and reported as pytorch_mlp.py does (the training loop only; one JSON
line at the end).

usage: pytorch_cnn.py [--epochs N] [--threads T] [--batch B] [--seed S] [--data DIR]
"""

import os
import sys

from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_mlp import parse_arguments, train  # noqa: E402


def main():
    args = parse_arguments(__doc__.split("\n\n")[0])
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 128), nn.ReLU(),
        nn.Linear(128, 10))
    train(model, args, shape=(1, 28, 28))


if __name__ == "__main__":
    main()
