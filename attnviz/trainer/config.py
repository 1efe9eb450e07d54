"""Configuration of the model and of a training run, as plain dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .tasks import Task, get_task, task_class


def lay_out(sizes: dict[str, int]) -> dict[str, slice]:
    """Consecutive slices of a vector, one per named part of the given size, in order."""
    layout, start = {}, 0
    for name, size in sizes.items():
        layout[name] = slice(start, start + size)
        start += size
    return layout


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
class TrainConfig(DictConfig):
    task: str = "copy"
    task_options: dict = field(default_factory=dict)  # e.g. {"max_length": 10}
    seed: int = 0
    batch_size: int = 32  # one length per batch; 32 keeps numpy's per-call overhead small
    # The gradient is the mean over this many equal slices of each batch, one slice per process
    # where the machine has the cores (see parallel.py). The numbers depend on shards, not on processes.
    shards: int = 2
    processes: int = 0  # 0: one per shard, up to the number of cores
    # Fields set to None here take the task's value (Task.train_defaults), else the model's
    # (NTMConfig.train_defaults, DNCConfig.train_defaults), else the one in TRAIN_DEFAULTS below;
    # the resolved value is what config.json and checkpoints record.
    optimizer: str = "adam"  # "adam" or "rmsprop" (the paper's: lr 1e-4, momentum 0.9)
    lr: float | None = None
    momentum: float = 0.9  # rmsprop only
    clip: float | None = None  # elementwise: every gradient into [-clip, clip], as in the paper (0: off)
    clip_norm: float | None = None  # the whole gradient scaled down to this norm when above it (0: off)
    # Once held-out wrong bits drop below lr_decay_below, the rate is multiplied by lr_decay
    # (once): a converged model then wanders less, and the collapses seen at full rate are rarer.
    lr_decay_below: float | None = None
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
    heldout_per_length: int = 8  # held-out sequences of each length (fixed seed; a task may ask for more)
    converge_below: float | None = None  # held-out wrong bits per sequence (or bits above optimal: Task.judge)
    converge_patience: int = 10  # evaluations in a row below the threshold count as converged
    max_steps: int = 0  # 0: no limit
    max_seconds: float = 0.0  # 0: no limit
    checkpoint_every: int = 500  # steps; and at least every checkpoint_seconds of training
    checkpoint_seconds: float = 60.0  # so that a run killed after a minute loses at most a minute
    trace_every: int = 500  # steps between recorded traces of the probe sequence
    probe_length: int = 0  # 0: the task's maximum length
    probe_seed: int = 2014
    architecture: str = "ntm"  # the model: "ntm" or "dnc" (attnviz.trainer.models)
    # The model's config (NTMConfig or DNCConfig: sizes, heads) where it departs from the model's own
    # defaults: the task's (Task.model_defaults), then these. Resolved, like the fields above, so that
    # config.json and checkpoints say what the run used.
    model: dict = field(default_factory=dict)

    def __post_init__(self):
        from .models import model_classes  # the models import this module

        self.model = {**task_class(self.task).model_defaults.get(self.architecture, {}), **self.model}
        task_defaults = task_class(self.task).train_defaults
        model_defaults = model_classes(self.architecture)[0].train_defaults
        for name, default in TRAIN_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, task_defaults.get(name, model_defaults.get(name, default)))


def make_task(cfg: TrainConfig) -> Task:
    return get_task(cfg.task, **cfg.task_options)


# What a None field of TrainConfig becomes when the task sets nothing: copy's settings, Adam at 1e-3
# with each element clipped at 10 (the paper's clipping). Copy learns twice as fast at 3e-3 with the
# gradient's norm clipped at 50, but that model failed at length 50 and 120 where this one copies
# (docs/performance.md).
TRAIN_DEFAULTS = {"lr": 1e-3, "clip": 10.0, "clip_norm": 0.0, "curriculum_start": 0, "curriculum_step": 1,
                  "curriculum_mix": 0.0, "converge_below": 0.1, "lr_decay_below": 1.0}
