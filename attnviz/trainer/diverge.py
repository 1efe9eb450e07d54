"""A training step whose loss or gradient is not finite: which sequence of the batch went first, and
which quantity (the first NaN or infinity of the forward pass, else the loss, else a gradient).

Called once, when the trainer stops: it runs the batch again, in the slices the gradient was computed
in, so that it meets the numbers training met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .loss import bce_loss
from .tasks import Batch, Task


@dataclass
class Divergence:
    """Where a training step went non-finite."""

    step: int  # the training step (counted as the run counts them: the first is 1)
    sequence: int  # the sequence's index in the batch
    size: str  # its size in the task's terms: "length 13", "length 5, 7 repeats", "6 items"
    steps: int  # its time steps
    quantity: str  # "the read head 0's key strength", "the loss", "the gradient of head_W"
    time_step: int | None  # the time step of the sequence where ``quantity`` first went non-finite
    batch: Batch  # that sequence alone, to be recorded

    def describe(self) -> str:
        at = f", at time step {self.time_step} of" if self.time_step is not None else " in"
        return (f"diverged at step {self.step:,}: {self.quantity} went non-finite first{at} sequence "
                f"{self.sequence} of the batch ({self.size}, {self.steps} steps)")

    def as_dict(self) -> dict:
        return {"step": self.step, "sequence": self.sequence, "size": self.size, "steps": self.steps,
                "quantity": self.quantity, "time_step": self.time_step, "description": self.describe()}


class Diverged(Exception):
    """Raised by Trainer.train_step instead of an optimiser update that would make parameters non-finite."""

    def __init__(self, divergence: Divergence):
        super().__init__(divergence.describe())
        self.divergence = divergence


def finite(loss: float, grads: dict[str, np.ndarray]) -> bool:
    return math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())


def diagnose(model, task: Task, batch: Batch, grads: dict[str, np.ndarray], step: int, shards: int = 1
             ) -> Divergence:
    """Find the sequence and the quantity that went non-finite first in ``batch`` (whose loss or
    gradient ``grads`` was not finite): the earliest NaN or infinity of the forward pass (then the
    lowest sequence), else a sequence's loss, else the first parameter whose gradient is not finite
    for a sequence alone (or, failing that, only summed over the batch)."""
    B = batch.x.shape[1]
    n = B // shards
    found = None  # (time step, rank within the step, sequence, quantity)
    losses = np.zeros(B)
    for k in range(shards):  # the slices the gradient was computed in: the same numbers
        part = slice(k * n, (k + 1) * n)
        logits, cache = model.forward(batch.x[:, part], keep_memory=True)
        hit = _first_in_forward(model, cache, logits, k * n)
        if hit is not None and (found is None or hit < found):
            found = hit
        per = np.logaddexp(0.0, logits) - logits * batch.y[:, part]
        losses[part] = (per * batch.mask[:, part, None]).sum(axis=(0, 2))
    if found is not None:
        t, _, i, quantity = found
        return _divergence(task, batch, step, i, quantity, t)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return _divergence(task, batch, step, int(bad[0]), "the loss", None)
    names = list(model.params)
    norms = []
    for i in range(B):  # each sequence's own gradient
        one = slice(i, i + 1)
        logits, cache = model.forward(batch.x[:, one])
        own = model.backward(bce_loss(logits, batch.y[:, one], batch.mask[:, one])[1], cache)
        broken = [name for name in names if not np.isfinite(own[name]).all()]
        if broken:
            return _divergence(task, batch, step, i, f"the gradient of {broken[0]}", None)
        norms.append(math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in own.values())))
    broken = [name for name in names if not np.isfinite(grads[name]).all()] or ["the loss"]
    i = int(np.argmax(norms))  # finite alone, not together: the largest gradient's sequence
    quantity = "the loss" if broken[0] == "the loss" else f"the gradient of {broken[0]}"
    return _divergence(task, batch, step, i, f"{quantity}, summed over the batch,", None)


def _first_in_forward(model, cache: dict, logits: np.ndarray, offset: int):
    """(time step, rank, sequence, quantity) of the first NaN or infinity in a forward pass's cache,
    in the order the step computes them (``model.quantities``); None when there is none."""
    for t, st in enumerate(cache["steps"]):
        for rank, (name, value) in enumerate(model.quantities(st, logits[t])):
            bad = ~np.isfinite(value.reshape(value.shape[0], -1)).all(axis=1)
            if bad.any():
                return t, rank, offset + int(np.argmax(bad)), name
    return None


def _divergence(task: Task, batch: Batch, step: int, i: int, quantity: str, t: int | None) -> Divergence:
    one = Batch(batch.x[:, i : i + 1], batch.y[:, i : i + 1], batch.mask[:, i : i + 1], batch.length,
                batch.levels[i : i + 1])
    if task.name == "associative-recall":
        size = f"{batch.length} items"
    elif task.name == "repeat-copy":
        size = f"length {batch.length}, {int(batch.levels[i])} repeats"
    else:
        size = f"length {batch.length}"
    return Divergence(step, i, size, batch.x.shape[0], quantity, t, one)
