"""Configuration of the model and of a training run, as plain dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


class DictConfig:
    """to_dict / from_dict for a config dataclass; unknown keys are an error, not ignored."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class NTMConfig(DictConfig):
    input_size: int  # width of one input vector (the task decides)
    output_size: int  # width of one output vector (the task decides)
    controller: str = "lstm"  # "lstm" or "feedforward"
    controller_size: int = 100  # the paper's copy-task LSTM has 100 units
    memory_size: int = 128  # N locations: room for the longest copy sequence several times over
    word_size: int = 20  # M: the paper's copy-task word width
    read_heads: int = 1
    write_heads: int = 1
    shift_range: int = 1  # offsets -1..1 as in the paper: a head moves at most one step at a time
    # Initial state. Measured in issue 4: one-hot initial weightings learn copy in ~90k sequences,
    # soft learned ones had not learned it after 840k. Memory stays a fixed small constant: a learned
    # initial memory was erratic, and all-equal rows give the content lookup nothing to latch onto.
    init_weighting: str = "onehot"  # every head at location 0 ("uniform" could never learn to address)
    init_memory: float = 1e-6  # every cell of the initial memory
    # Initial biases of every head's sharpening (gamma = 1 + softplus(bias)) and interpolation
    # gate (g = sigmoid(bias)). gamma ~3.1 keeps the one-hot start focused instead of blurring it
    # with every shift; g ~0.27 leans on the previous weighting, i.e. location-based moves. Measured
    # on copy, seed 0 (docs/performance.md): held-out wrong bits < 0.1 after 61k sequences, against
    # 104k with both biases at 0 and still 0.8 at 72k with the sharpening bias alone.
    sharpen_bias: float = 2.0
    gate_bias: float = -1.0
    # The controller weights into every head's shift logits: "zero" (shifts start from their
    # biases, no head prefers a direction) or "random" (Glorot, like every other weight). With random
    # ones, seed 2 set the write head walking up and the read head walking down, and was still at
    # 17.6 held-out wrong bits after 212k sequences; zero ones left the plateau after ~40k sequences
    # for seeds 0-2 and cut seeds 0 and 1 from 75k and 106k to 62k and 80k (docs/performance.md).
    shift_init: str = "zero"
    # Initial biases of the shift logits. "forward": every write head starts out moving one
    # location up per step (logit +1 for offset +1, 0 for staying, -1 for any other) and every read
    # head staying put (+1 for offset 0, 0 for +1, -1 for any other): the copy algorithm's two moves,
    # in one agreed direction. "none": all zero, so that with zero shift weights the +1 and -1 directions
    # are an exact tie that only noise breaks. Measured on copy (docs/performance.md): with "none"
    # 5 of seeds 0-9 converged within 3 minutes (seed 1 not by 228k sequences); with "forward" 8 of
    # 10 did, seeds 0-2 after 82k, 160k and 77k. But it half draws the walk before any training: copy
    # now starts with "none" and read_first (Copy.model_defaults), and every seed learns.
    shift_bias: str = "forward"
    # Order of the heads within a step: False, write heads change the memory, then read heads
    # address and read it (the order the model has always had); True, read heads address and read
    # the memory as the previous step left it, then write heads write. A lead against the copy
    # plateau (a write head that stays where the waiting read head looks pays off at once only when
    # writes come first); not yet the default: see docs/performance.md before changing it.
    read_first: bool = False

    @property
    def head_sizes(self) -> list[int]:
        """Raw parameter count of each head, write heads first: key, beta, g, shift, gamma
        (and erase, add for a write head)."""
        base = self.word_size + 3 + (2 * self.shift_range + 1)
        return [base + 2 * self.word_size] * self.write_heads + [base] * self.read_heads
