"""Multi-copy: several copy sequences in one episode, each read back before the next arrives, so that
a memory smaller than the episode must be freed and written again (the DNC paper's Extended Data
Figure 1)."""

from __future__ import annotations

import numpy as np

from .base import Batch, Task, random_bits, up_to


class MultiCopy(Task):
    """``length`` copies in a row (the task's size, and its curriculum level). Each copy: L vectors of
    ``width`` bits, one step on the delimiter channel, then the L vectors are the targets of the L steps
    after it (no input then). Every copy of an episode has its own length L, from ``min_item`` to
    ``max_item`` (the same for every sequence of a batch, so that a batch's sequences line up)."""

    name = "multi-copy"
    # Ten locations, as in the paper's figure: fewer than the vectors of an episode of three or more
    # copies of five, so that only a model that frees what it has read can go on writing.
    model_defaults = {"dnc": {"memory_size": 10}, "ntm": {"memory_size": 10}}

    def __init__(self, width: int = 6, min_length: int = 1, max_length: int = 4, min_item: int = 2,
                 max_item: int = 5):
        self.width, self.min_length, self.max_length = width, min_length, max_length
        self.min_item, self.max_item = min_item, max_item
        self.input_size, self.output_size = width + 1, width

    def make(self, rng, batch_size, length, items=None):
        """A batch of episodes of ``length`` copies; ``items`` fixes each copy's length (a list)."""
        W = self.width
        items = list(items) if items is not None else [int(n) for n in rng.integers(self.min_item, self.max_item + 1,
                                                                                    size=length)]
        T = sum(2 * n + 1 for n in items)
        x = np.zeros((T, batch_size, W + 1), np.float32)
        y = np.zeros((T, batch_size, W), np.float32)
        mask = np.zeros((T, batch_size), np.float32)
        t = 0
        for n in items:
            seq = random_bits(rng, (n, batch_size, W))
            x[t : t + n, :, :W] = seq
            x[t + n, :, W] = 1.0  # delimiter
            y[t + n + 1 : t + 2 * n + 1] = seq
            mask[t + n + 1 : t + 2 * n + 1] = 1.0
            t += 2 * n + 1
        return Batch(x, y, mask, length)

    def sample(self, rng, batch_size, level=None):
        return self.make(rng, batch_size, int(rng.integers(self.min_length, up_to(level, self.min_length,
                                                                                   self.max_length) + 1)))

    def options(self):
        return {"width": self.width, "min_item": self.min_item, "max_item": self.max_item, **super().options()}
