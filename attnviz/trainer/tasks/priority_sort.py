"""Priority sort (Graves et al. 2014, section 4.5): read vectors each with a priority, write out the
ones of highest priority, highest first."""

from __future__ import annotations

import numpy as np

from .base import Batch, Task, random_bits


class PrioritySort(Task):
    """Inputs: ``length`` vectors of ``width`` random bits, each with a priority drawn uniformly from
    [-1, 1] on a channel of its own (channel ``width``), then one step on the delimiter channel
    (``width`` + 1). Targets: the ``selected`` vectors of highest priority, highest first, one a step
    after the delimiter (no input then). The paper gives neither the width nor how the priority is fed
    in; 8 bits and a channel of its own fit its chance-level cost of about 128 bits (16 x 8 bits)."""

    name = "priority-sort"
    # Judged by its cost, as the paper's Figure 18: held-out cross-entropy in bits per sequence, converged
    # 10 evaluations in a row below the paper's NTM (about 20); wrong bits are reported beside it.
    judge = "bits"
    thresholds = (40.0, 20.0)
    # One length, judged by its cost: with 8 held-out sequences a run's best checkpoint read 26.6 bits
    # per sequence and cost 35.0 on 1,000 fresh ones; with 256, 30.0 and 30.2 (docs/performance.md).
    heldout_sequences = 256
    train_defaults = {"lr": 3e-3, "clip": 0.0, "clip_norm": 50.0, "converge_below": 20.0, "lr_decay_below": 40.0}
    # The NTM writes each vector at a location chosen by its priority. Over a constant initial memory
    # every location looks alike to a content key, and the write location rose only 5.6 per unit of
    # priority; with a learned initial memory a key picks out a location from the first write, and the
    # cost after 30 minutes on one core halved, 78 to 38 bits per sequence. A read head that starts
    # leaning on content (gate bias +1, as N-grams') then came to each of those costs in 2.5 to 5
    # times fewer sequences: seed 0 first below 38.4 by 220,800, where the gate of -1 was at 38.4 by
    # 668,800 (on the 8 held-out sequences of the time, which read low; docs/performance.md).
    model_defaults = {"ntm": {"learn_memory": True, "read_gate_bias": 1.0}}

    def __init__(self, width: int = 8, min_length: int = 20, max_length: int = 20, selected: int = 16):
        if not 1 <= selected <= min_length:
            raise ValueError(f"selected={selected}: choose 1 to min_length={min_length} vectors to write out")
        self.width, self.min_length, self.max_length, self.selected = width, min_length, max_length, selected
        self.input_size, self.output_size = width + 2, width

    def make(self, rng, batch_size, length):
        W, S, B = self.width, self.selected, batch_size
        vectors = random_bits(rng, (length, B, W))
        priority = rng.uniform(-1.0, 1.0, size=(length, B)).astype(np.float32)
        T = length + 1 + S
        x = np.zeros((T, B, W + 2), np.float32)
        x[:length, :, :W] = vectors
        x[:length, :, W] = priority
        x[length, :, W + 1] = 1.0  # delimiter
        order = np.argsort(-priority, axis=0, kind="stable")[:S]  # (S, B): highest priority first
        y = np.zeros((T, B, W), np.float32)
        y[length + 1 :] = vectors[order, np.arange(B)]
        mask = np.zeros((T, B), np.float32)
        mask[length + 1 :] = 1.0
        return Batch(x, y, mask, length)

    def trace_metadata(self):
        return {"priority_channel": self.width, "delimiter_channel": self.width + 1, "selected": self.selected}

    def options(self):
        return {"width": self.width, "selected": self.selected, **super().options()}
