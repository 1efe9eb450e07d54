"""Copy: read a sequence of random bit vectors, then write it out again."""

from __future__ import annotations

import numpy as np

from .base import Batch, Task, random_bits


class Copy(Task):
    """Inputs: L vectors of ``width`` bits, then one step on the delimiter channel.
    Targets: the same L vectors during the L steps after the delimiter (no input then)."""

    name = "copy"

    def __init__(self, width: int = 8, min_length: int = 1, max_length: int = 20):
        self.width, self.min_length, self.max_length = width, min_length, max_length
        self.input_size, self.output_size = width + 1, width

    def make(self, rng, batch_size, length):
        L, W = length, self.width
        seq = random_bits(rng, (L, batch_size, W))
        T = 2 * L + 1
        x = np.zeros((T, batch_size, W + 1), np.float32)
        x[:L, :, :W] = seq
        x[L, :, W] = 1.0  # delimiter
        y = np.zeros((T, batch_size, W), np.float32)
        y[L + 1 :] = seq
        mask = np.zeros((T, batch_size), np.float32)
        mask[L + 1 :] = 1.0
        return Batch(x, y, mask, L)

    def options(self):
        return {"width": self.width, **super().options()}
