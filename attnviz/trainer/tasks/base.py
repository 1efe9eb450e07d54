"""What every task provides: a seeded batch generator, a held-out set, and curriculum levels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    x: np.ndarray  # (T, B, input_size)
    y: np.ndarray  # (T, B, output_size) targets, zero where not scored
    mask: np.ndarray  # (T, B) 1 where the output is scored
    length: int  # the task's size parameter for this batch (sequence length, item count)
    levels: np.ndarray | None = None  # (B,) each sequence's curriculum level; None: all ``length``

    def __post_init__(self):
        if self.levels is None:
            self.levels = np.full(self.x.shape[1], self.length)


class Task:
    name = ""
    input_size = 0
    output_size = 0
    min_length = 1
    max_length = 1
    model_defaults: dict = {}  # per model ("ntm", "dnc"): its config fields for this task (TrainConfig.model wins)
    train_defaults: dict = {}  # TrainConfig fields left unset (None) that this task sets (see TrainConfig)

    # The curriculum's levels: a training batch at level k is no harder than k (by default the
    # sequence length is at most k); the curriculum starts at a low level and rises to max_level.
    @property
    def min_level(self) -> int:
        return self.min_length

    @property
    def max_level(self) -> int:
        return self.max_length

    def make(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        """A batch of ``batch_size`` sequences, all of size ``length``."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, batch_size: int, level: int | None = None) -> Batch:
        """A training batch with its size drawn uniformly from min_length to max_length, or to
        ``level`` when a curriculum gives a lower one."""
        hi = up_to(level, self.min_length, self.max_length)
        return self.make(rng, batch_size, int(rng.integers(self.min_length, hi + 1)))

    # A task judged by its cost per sequence over one length needs more held-out sequences than
    # per_length for a steady mean: at least this many in all, spread over its lengths.
    heldout_sequences = 0

    def heldout(self, seed: int = 12345, per_length: int = 16) -> list[Batch]:
        """A fixed held-out set: ``per_length`` sequences of every size in the range (more when
        ``heldout_sequences`` asks for more)."""
        rng = np.random.default_rng(seed)
        if self.heldout_sequences:
            per_length = max(per_length, -(-self.heldout_sequences // (self.max_length - self.min_length + 1)))
        return [self.make(rng, per_length, n) for n in range(self.min_length, self.max_length + 1)]

    def options(self) -> dict:
        return {"min_length": self.min_length, "max_length": self.max_length}

    # A task whose targets are random has an optimal predictor: ``optimal`` gives its probabilities, the
    # held-out evaluation reports its cost beside the model's, and the run is judged by the bits per
    # sequence above it ("excess_bits") instead of by wrong bits ("wrong_bits").
    has_optimal = False
    judge = "wrong_bits"
    # What `attnviz compare` counts the sequences and seconds to: the first of 10 held-out evaluations in a
    # row below each, in the units of ``judge``; the last is the default convergence threshold.
    thresholds = (1.0, 0.1)

    def trace_metadata(self) -> dict:
        """What a recorded trace's metadata says of the task beyond its name and size (its channels)."""
        return {}

    def optimal(self, batch: Batch) -> np.ndarray:
        """The optimal predictor's probability of each target bit being 1, (T, B, output_size)."""
        raise NotImplementedError(f"{self.name} has no optimal predictor")


def up_to(level: int | None, lo: int, hi: int) -> int:
    """The largest size a batch at curriculum ``level`` may have: ``hi`` without a level, and
    never below ``lo``."""
    return hi if level is None else max(lo, min(level, hi))


def random_bits(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 2, size=shape).astype(np.float32)
