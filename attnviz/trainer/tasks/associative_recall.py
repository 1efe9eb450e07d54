"""Associative recall: after a list of items and a query item, answer the item that followed it."""

from __future__ import annotations

import numpy as np

from .base import Batch, Task, random_bits


class AssociativeRecall(Task):
    """Each item is ``item_steps`` vectors of ``width`` bits, preceded by a step on the first
    delimiter channel; the query item is preceded by the second delimiter and followed by it.
    Targets: the item that came after the query in the list. ``length`` counts the items."""

    name = "associative-recall"
    # A rate of 3e-3 with the gradient's norm clipped at 50: with copy's (1e-3, each element clipped
    # at 10) seed 1 had not converged at 5 minutes (docs/ntm.md has why, docs/performance.md the runs).
    train_defaults = {"lr": 3e-3, "clip": 0.0, "clip_norm": 50.0}

    def __init__(self, width: int = 6, item_steps: int = 3, min_length: int = 2, max_length: int = 6):
        self.width, self.item_steps = width, item_steps
        self.min_length, self.max_length = min_length, max_length
        self.input_size, self.output_size = width + 2, width

    def make(self, rng, batch_size, length):
        n, S, W = length, self.item_steps, self.width
        items = random_bits(rng, (n, S, batch_size, W))
        q = rng.integers(0, n - 1, size=batch_size)  # the query is never the last item
        T = n * (S + 1) + 1 + S + 1 + S
        x = np.zeros((T, batch_size, W + 2), np.float32)
        for i in range(n):
            x[i * (S + 1), :, W] = 1.0
            x[i * (S + 1) + 1 : (i + 1) * (S + 1), :, :W] = items[i]
        t = n * (S + 1)
        b = np.arange(batch_size)
        x[t, :, W + 1] = 1.0
        x[t + 1 : t + 1 + S, :, :W] = items[q, :, b].transpose(1, 0, 2)
        x[t + 1 + S, :, W + 1] = 1.0
        y = np.zeros((T, batch_size, W), np.float32)
        y[T - S :] = items[q + 1, :, b].transpose(1, 0, 2)
        mask = np.zeros((T, batch_size), np.float32)
        mask[T - S :] = 1.0
        return Batch(x, y, mask, n)

    def options(self):
        return {"width": self.width, "item_steps": self.item_steps, **super().options()}
