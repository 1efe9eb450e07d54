"""The NTM's configuration: sizes, heads and the initial state, with why each default."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from ..config import DictConfig, lay_out


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
    # Initial state, none of it learned (docs/ntm.md): every head one-hot at location 0 (soft learned
    # initial weightings did not learn copy), and a small constant memory (a learned one was
    # erratic; "uniform" weightings over a constant memory could never learn to address).
    init_weighting: str = "onehot"
    init_memory: float = 1e-6  # every cell of the initial memory
    # True: the initial memory is a parameter ("memory0", N x M), drawn uniform in +-1/sqrt(N + M) and
    # learned; its rows differ from the start, so a content key can pick out a location before anything
    # is written (priority sort's write by priority; docs/performance.md). init_memory is then unused.
    learn_memory: bool = False
    # Initial biases of every head's sharpening (gamma = 1 + softplus(bias)) and interpolation
    # gate (g = sigmoid(bias); the read heads' is read_gate_bias when that is set). gamma ~3.1 keeps
    # the one-hot start focused instead of blurring it with every shift; g ~0.27 leans on the
    # previous weighting, i.e. location-based moves. They cut copy's seed 0 from 120,000 to 75,200
    # sequences (docs/performance.md).
    sharpen_bias: float = 2.0
    gate_bias: float = -1.0
    # The read heads' own gate bias; None: gate_bias. N-grams and priority sort set +1 (g about 0.73):
    # N-grams' reads look the history up by content, and with the location-leaning -1 only seed 0 of
    # 0-2 found that lookup within 30 minutes (docs/performance.md).
    read_gate_bias: float | None = None
    # The controller weights into every head's shift logits: "zero" (shifts start from their
    # biases, no head prefers a direction) or "random" (Glorot, like every other weight). With random
    # ones, copy's seed 2 set the write head walking up and the read head walking down, and had not
    # converged after 212,000 sequences (docs/performance.md).
    shift_init: str = "zero"
    # Initial biases of the shift logits. "none": all zero, so that with zero shift weights the +1
    # and -1 directions are an exact tie that only training breaks: an untrained model does not walk
    # (tested). "forward", a documented option: every write head starts out moving one location up
    # per step (logit +1 for offset +1, 0 for staying, -1 for any other) and every read head staying
    # put: the copy algorithm's two moves, drawn before any training (docs/ntm.md).
    shift_bias: str = "none"
    # Order of the heads within a step: True, read heads address and read the memory as the
    # previous step left it, then write heads write; False, the other way round (Graves et al. do not
    # fix the order). Writing first lets a write head that stays where the waiting read head looks
    # pay off at once, a trap that held seeds 3 and 8 of copy on the plateau; reading first, with no
    # shift bias, every seed of 0-9 learns copy within 3 minutes (docs/performance.md).
    read_first: bool = True

    train_defaults = {}  # TrainConfig fields this model sets where the task sets none: TRAIN_DEFAULTS are the NTM's

    def head_layout(self, is_write: bool) -> dict[str, slice]:
        """Where each part sits in one head's raw parameters: key, beta, g, shift, gamma, and
        erase, add for a write head. The one definition of the layout: the parameter count, the
        initial biases, the forward pass's split and the backward pass's gradient all follow it."""
        M, S = self.word_size, 2 * self.shift_range + 1
        sizes = {"key": M, "beta": 1, "g": 1, "shift": S, "gamma": 1}
        if is_write:
            sizes.update(erase=M, add=M)
        return lay_out(sizes)

    @property
    def head_offsets(self) -> list[int]:
        """Where each head's raw parameters start in the controller's head output, write heads
        first, then read heads; the last entry is the total."""
        sizes = [max(s.stop for s in self.head_layout(j < self.write_heads).values())
                 for j in range(self.write_heads + self.read_heads)]
        return list(accumulate(sizes, initial=0))
