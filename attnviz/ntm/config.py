"""Configuration of the model and of a training run, as plain dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from itertools import accumulate

from .tasks import Task, get_task, task_class


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
    # Initial state, none of it learned (docs/ntm.md): every head one-hot at location 0 (soft learned
    # initial weightings did not learn copy), and a small constant memory (a learned one was
    # erratic; "uniform" weightings over a constant memory could never learn to address).
    init_weighting: str = "onehot"
    init_memory: float = 1e-6  # every cell of the initial memory
    # Initial biases of every head's sharpening (gamma = 1 + softplus(bias)) and interpolation
    # gate (g = sigmoid(bias)). gamma ~3.1 keeps the one-hot start focused instead of blurring it
    # with every shift; g ~0.27 leans on the previous weighting, i.e. location-based moves. They cut
    # copy's seed 0 from 120,000 to 75,200 sequences (docs/performance.md).
    sharpen_bias: float = 2.0
    gate_bias: float = -1.0
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

    def head_layout(self, is_write: bool) -> dict[str, slice]:
        """Where each part sits in one head's raw parameters: key, beta, g, shift, gamma, and
        erase, add for a write head. The one definition of the layout: the parameter count, the
        initial biases, the forward pass's split and the backward pass's gradient all follow it."""
        M, S = self.word_size, 2 * self.shift_range + 1
        sizes = {"key": M, "beta": 1, "g": 1, "shift": S, "gamma": 1}
        if is_write:
            sizes.update(erase=M, add=M)
        layout, start = {}, 0
        for name, size in sizes.items():
            layout[name] = slice(start, start + size)
            start += size
        return layout

    @property
    def head_offsets(self) -> list[int]:
        """Where each head's raw parameters start in the controller's head output, write heads
        first, then read heads; the last entry is the total."""
        sizes = [max(s.stop for s in self.head_layout(j < self.write_heads).values())
                 for j in range(self.write_heads + self.read_heads)]
        return list(accumulate(sizes, initial=0))


@dataclass
class TrainConfig(DictConfig):
    task: str = "copy"
    task_options: dict = field(default_factory=dict)  # e.g. {"max_length": 10}
    seed: int = 0
    batch_size: int = 32  # one length per batch; 32 keeps numpy's per-call overhead small
    # The gradient is the mean over this many equal slices of each batch, one slice per process
    # where the machine has the cores (see parallel.py). The numbers depend on shards, not on processes.
    shards: int = 2
    processes: int = 0  # 0: one per shard, up to the number of cores
    # Fields set to None here take the task's value (Task.train_defaults), else the one in
    # TRAIN_DEFAULTS below; the resolved value is what config.json and checkpoints record.
    optimizer: str = "adam"  # "adam" or "rmsprop" (the paper's: lr 1e-4, momentum 0.9)
    lr: float | None = None
    momentum: float = 0.9  # rmsprop only
    clip: float | None = None  # elementwise: every gradient into [-clip, clip], as in the paper (0: off)
    clip_norm: float | None = None  # the whole gradient scaled down to this norm when above it (0: off)
    # Once held-out wrong bits drop below lr_decay_below, the rate is multiplied by lr_decay
    # (once): a converged model then wanders less, and the collapses seen at full rate are rarer.
    lr_decay_below: float = 1.0
    lr_decay: float = 0.3
    # Collapse guard: once held-out wrong bits have been below rollback_from, an evaluation more
    # than rollback_margin above the best so far restores the parameters and optimiser state of
    # that best evaluation and multiplies the rate by rollback_lr. Training data runs on, so the
    # same batches are not replayed. rollback_margin 0 turns it off.
    rollback_from: float = 5.0
    rollback_margin: float = 10.0
    rollback_lr: float = 0.5
    # Curriculum: train on batches up to `level` (the task says what a level is: a length for copy,
    # a repeat count for repeat-copy), starting at curriculum_start and growing by curriculum_step
    # whenever held-out wrong bits per sequence of every level up to the current one fall below
    # curriculum_below. 0 turns it off.
    curriculum_start: int | None = None
    curriculum_step: int | None = None
    curriculum_below: float = 0.5
    # With a curriculum, this share of training batches ignores the level and is drawn from the
    # task's whole range (the "combined" curriculum of Zaremba and Sutskever, 2014; docs/ntm.md).
    curriculum_mix: float | None = None
    eval_every: int = 50  # steps between held-out evaluations
    heldout_per_length: int = 8  # held-out sequences of each length (fixed seed)
    converge_below: float = 0.1  # held-out wrong bits per sequence
    converge_patience: int = 10  # evaluations in a row below the threshold count as converged
    max_steps: int = 0  # 0: no limit
    max_seconds: float = 0.0  # 0: no limit
    checkpoint_every: int = 500  # steps; and at least every checkpoint_seconds of training
    checkpoint_seconds: float = 60.0  # so that a run killed after a minute loses at most a minute
    trace_every: int = 500  # steps between recorded traces of the probe sequence
    probe_length: int = 0  # 0: the task's maximum length
    probe_seed: int = 2014
    model: dict = field(default_factory=dict)  # NTMConfig overrides (controller, sizes, heads)

    def __post_init__(self):
        task_defaults = task_class(self.task).train_defaults
        for name, default in TRAIN_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, task_defaults.get(name, default))


def make_task(cfg: TrainConfig) -> Task:
    return get_task(cfg.task, **cfg.task_options)


def make_model_config(cfg: TrainConfig, task: Task) -> NTMConfig:
    return NTMConfig(task.input_size, task.output_size, **{**task.model_defaults, **cfg.model})


# What a None field of TrainConfig becomes when the task sets nothing: copy's settings, Adam at 1e-3
# with each element clipped at 10 (the paper's clipping). Copy learns twice as fast at 3e-3 with the
# gradient's norm clipped at 50, but that model failed at length 50 and 120 where this one copies
# (docs/performance.md).
TRAIN_DEFAULTS = {"lr": 1e-3, "clip": 10.0, "clip_norm": 0.0, "curriculum_start": 0, "curriculum_step": 1,
                  "curriculum_mix": 0.0}
