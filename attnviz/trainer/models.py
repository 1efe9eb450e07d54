"""The models the trainer trains, by name, and the one interface they share.

A model is a config dataclass (``input_size`` and ``output_size`` first, the task's; then its own
sizes, each default with why) and a class with:

- ``create(cfg, seed)``: initial parameters; ``params`` (name -> array) and ``cfg``;
- ``forward(x, keep_memory=False, cache=True)``: logits (T, B, Y) and a cache whose ``steps`` hold
  one dict per time step (with ``memory``, (B, N, M), when ``keep_memory``), for ``backward``;
- ``backward(dlogits, cache)``: the gradient of every parameter, hand-derived;
- ``trace_arrays(steps)``: the trace datasets of batch row 0 (write and read weightings and the
  model's own), ``bytes_per_step()``: what recording keeps per step, and ``quantities(step,
  logits)``: a step's intermediate arrays, named, in the order it computes them (for a run that
  diverged).

Everything else (tasks, optimiser, gradient processes, checkpoints, recording) is shared.
"""

from __future__ import annotations

from dataclasses import fields

from .config import TrainConfig
from .dnc import DNC, DNCConfig
from .ntm import NTM, NTMConfig
from .tasks import Task

MODELS = {"ntm": (NTMConfig, NTM), "dnc": (DNCConfig, DNC)}


def model_classes(name: str):
    """(config class, model class) of the model called ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def foreign_option(name: str, options) -> str | None:
    """Why one of ``options`` (model config fields) does not belong to the model ``name``, or None:
    "shift_bias is an option of the NTM, not of the DNC"."""
    own = {f.name for f in fields(model_classes(name)[0])}
    for key in options:
        if key not in own:
            others = [m for m, (c, _) in MODELS.items() if key in {f.name for f in fields(c)}]
            where = f"an option of the {others[0].upper()}" if others else "not a model option"
            fixed = {"input_size", "output_size"} | ({"write_heads"} if name == "dnc" else set())  # not choices
            return f"{key} is {where}, not of the {name.upper()} (its options: {', '.join(sorted(own - fixed))})"
    return None


def make_model_config(cfg: TrainConfig, task: Task):
    """The model's config for ``task``: the task's sizes, the model's defaults, then TrainConfig.model
    (which holds the task's model defaults under the run's own options)."""
    config_class, _ = model_classes(cfg.architecture)
    problem = foreign_option(cfg.architecture, cfg.model)
    if problem:
        raise ValueError(problem)
    return config_class(task.input_size, task.output_size, **cfg.model)


def create_model(cfg: TrainConfig, task: Task, seed: int | None = None):
    """A new model of ``cfg.architecture`` for ``task``, its parameters drawn with ``seed`` (default cfg.seed)."""
    model_cfg = make_model_config(cfg, task)
    return MODELS[cfg.architecture][1].create(model_cfg, seed=cfg.seed if seed is None else seed)
