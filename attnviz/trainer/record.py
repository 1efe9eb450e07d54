"""Recording: run a model on one new sequence and return every traced array, in the trace
format (attnviz.trace writes it; this module stays numpy only)."""

from __future__ import annotations

import numpy as np

from .layers import sigmoid
from .tasks import Batch, Task

RECORD_BYTES = 256 * 2**20  # what recording one sequence may hold in memory


def recordable_steps(model) -> int:
    """The most steps ``record`` runs with ``model`` (its ``bytes_per_step`` each) within RECORD_BYTES."""
    return RECORD_BYTES // model.bytes_per_step()


def record(model, task: Task, length: int, seed: int = 2014, memory_limit: int = 2_000_000,
           sequence: Batch | None = None, **make_options) -> tuple[dict[str, np.ndarray], dict]:
    """Run the model on one new sequence of ``length`` and return every traced array.
    ``make_options`` go to the task's ``make`` (repeat-copy: ``repeats``) and into the metadata.
    ``sequence`` (a batch of one, of size ``length``: a training sequence, say) is run instead of a
    new one; ``seed`` then makes nothing.

    Returns (arrays, metadata) in the trace format: inputs, outputs (probabilities),
    targets, the scored-output mask, what the model records of itself (``model.trace_arrays``: the
    write and read weightings and the rest of its own datasets), and the memory at every step when it
    has at most ``memory_limit`` values.
    """
    limit = recordable_steps(model)
    if length > limit:  # every task has at least one step per item
        raise ValueError(f"length {length} is too long to record: this model records at most {limit:,} steps "
                         f"within {RECORD_BYTES // 2**20} MiB")
    b = task.make(np.random.default_rng(seed), 1, length, **make_options) if sequence is None else sequence
    if b.x.shape[0] > limit:
        raise ValueError(f"length {length} is too long to record: its {b.x.shape[0]:,} steps are more than the "
                         f"{limit:,} this model records within {RECORD_BYTES // 2**20} MiB")
    logits, cache = model.forward(b.x, keep_memory=True)
    cfg, steps = model.cfg, cache["steps"]
    arrays = {"inputs": b.x[:, 0], "outputs": sigmoid(logits[:, 0]), "targets": b.y[:, 0],
              **model.trace_arrays(steps)}
    if task.has_optimal:  # the optimal predictor's outputs beside the model's (ngrams: the Bayesian estimate)
        arrays["baseline_outputs"] = task.optimal(b)[:, 0]
    output_mask = b.mask[:, 0] > 0  # (T,) the steps whose outputs the task scores
    T = b.x.shape[0]
    if T * cfg.memory_size * cfg.word_size <= memory_limit:
        arrays["memory"] = np.stack([s["memory"][0] for s in steps])
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    arrays["output_mask"] = output_mask
    meta = {"task": task.name, "sequence_length": int(length), "probe_seed": int(seed),
            "model": f"attnviz.{model.name}", "controller": cfg.controller, "memory_size": cfg.memory_size,
            "word_size": cfg.word_size, **task.trace_metadata(), **make_options}
    return arrays, meta
