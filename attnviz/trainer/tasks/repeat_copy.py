"""Repeat copy: read a sequence and a repeat count, write the sequence that many times."""

from __future__ import annotations

import numpy as np

from .base import Batch, Task, random_bits, up_to


class RepeatCopy(Task):
    """Inputs: L vectors, then one step on the delimiter channel that also holds the repeat count
    on the last channel, normalised over min_repeats..max_repeats to mean 0 and variance 1 as in the
    paper. Targets: the sequence ``repeats`` times, then a step on the end-marker channel.

    Curriculum levels are repeat counts: at level k training sequences have every length and at
    most k repeats, so level 1 is copy with an end marker."""

    name = "repeat-copy"
    # A rate of 3e-3 with the gradient's norm clipped at 50, and a curriculum over the repeat count
    # from 1 up by 1 in which one batch in 10 has any count: without the rate or the curriculum,
    # held-out wrong bits stayed near 100; without the mix, the LSTM could learn to replay the second
    # pass from its own state and the curriculum then waited at level 2; with more of it, level 1 was
    # not learned (docs/ntm.md has why, docs/performance.md the runs).
    train_defaults = {"lr": 3e-3, "clip": 0.0, "clip_norm": 50.0, "curriculum_start": 1, "curriculum_step": 1,
                      "curriculum_mix": 0.1}

    def __init__(self, width: int = 8, min_length: int = 1, max_length: int = 10,
                 min_repeats: int = 1, max_repeats: int = 10):
        self.width, self.min_length, self.max_length = width, min_length, max_length
        self.min_repeats, self.max_repeats = min_repeats, max_repeats
        self.input_size, self.output_size = width + 2, width + 1

    @property
    def min_level(self) -> int:
        return self.min_repeats

    @property
    def max_level(self) -> int:
        return self.max_repeats

    def count_input(self, repeats):
        """The repeat count as the model sees it: mean 0 and variance 1 over the possible counts."""
        counts = np.arange(self.min_repeats, self.max_repeats + 1)
        return (np.asarray(repeats) - counts.mean()) / counts.std()

    def make(self, rng, batch_size, length, repeats=None):
        """``repeats``: one count for the batch, or one per sequence (B,); then the batch is as
        long as its longest sequence, and each shorter one is padded at the end, unscored."""
        L, W = length, self.width
        if repeats is None:
            repeats = int(rng.integers(self.min_repeats, self.max_repeats + 1))
        repeats = np.broadcast_to(np.asarray(repeats, dtype=int), (batch_size,))
        seq = random_bits(rng, (L, batch_size, W))
        T = L + 1 + L * int(repeats.max()) + 1
        x = np.zeros((T, batch_size, W + 2), np.float32)
        x[:L, :, :W] = seq
        x[L, :, W] = 1.0  # delimiter
        x[L, :, W + 1] = self.count_input(repeats)
        y = np.zeros((T, batch_size, W + 1), np.float32)
        mask = np.zeros((T, batch_size), np.float32)
        for b, r in enumerate(repeats):
            end = L + 1 + L * r  # the end marker's step
            y[L + 1 : end, b, :W] = np.tile(seq[:, b], (r, 1))
            y[end, b, W] = 1.0
            mask[L + 1 : end + 1, b] = 1.0
        return Batch(x, y, mask, L, levels=repeats.copy())

    def sample(self, rng, batch_size, level=None):
        """Every length; at most ``level`` repeats when a curriculum gives a level."""
        hi = up_to(level, self.min_repeats, self.max_repeats)
        L = int(rng.integers(self.min_length, self.max_length + 1))
        return self.make(rng, batch_size, L, int(rng.integers(self.min_repeats, hi + 1)))

    def heldout(self, seed: int = 12345, per_length: int = 16) -> list[Batch]:
        """``per_length`` sequences of every length, their repeat counts spread evenly over the
        range (every count at every length when per_length is a multiple of the range)."""
        rng = np.random.default_rng(seed)
        n = self.max_repeats - self.min_repeats + 1
        out = []
        for L in range(self.min_length, self.max_length + 1):
            repeats = self.min_repeats + (np.arange(per_length) + L * per_length) % n
            out.append(self.make(rng, per_length, L, repeats))
        return out

    def options(self):
        return {"width": self.width, "min_repeats": self.min_repeats,
                "max_repeats": self.max_repeats, **super().options()}
