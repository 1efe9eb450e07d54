"""Repeat copy: read a sequence and a repeat count, write the sequence that many times."""

from __future__ import annotations

import numpy as np

from .base import Batch, Task, random_bits


class RepeatCopy(Task):
    """Inputs: L vectors, then one step whose last channel holds repeats / max_repeats.
    Targets: the sequence ``repeats`` times, then a step on the end-marker channel."""

    name = "repeat-copy"

    def __init__(self, width: int = 8, min_length: int = 1, max_length: int = 10,
                 min_repeats: int = 1, max_repeats: int = 10):
        self.width, self.min_length, self.max_length = width, min_length, max_length
        self.min_repeats, self.max_repeats = min_repeats, max_repeats
        self.input_size, self.output_size = width + 2, width + 1

    def make(self, rng, batch_size, length, repeats=None):
        L, W = length, self.width
        if repeats is None:
            repeats = int(rng.integers(self.min_repeats, self.max_repeats + 1))
        seq = random_bits(rng, (L, batch_size, W))
        T = L + 1 + L * repeats + 1
        x = np.zeros((T, batch_size, W + 2), np.float32)
        x[:L, :, :W] = seq
        x[L, :, W] = 1.0  # delimiter
        x[L, :, W + 1] = repeats / self.max_repeats  # normalised repeat count
        y = np.zeros((T, batch_size, W + 1), np.float32)
        y[L + 1 : T - 1, :, :W] = np.tile(seq, (repeats, 1, 1))
        y[T - 1, :, W] = 1.0  # end marker
        mask = np.zeros((T, batch_size), np.float32)
        mask[L + 1 :] = 1.0
        return Batch(x, y, mask, L)

    def options(self):
        return {"width": self.width, "min_repeats": self.min_repeats,
                "max_repeats": self.max_repeats, **super().options()}
