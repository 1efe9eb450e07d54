"""Recording: run a model on one new sequence and return every traced array, in the trace
format (attnviz.trace writes it; this module stays numpy only)."""

from __future__ import annotations

import numpy as np

from .config import NTMConfig
from .layers import sigmoid
from .model import NTM
from .tasks import Batch, Task

RECORD_BYTES = 256 * 2**20  # what recording one sequence may hold in memory


def recordable_steps(cfg: NTMConfig) -> int:
    """The most steps ``record`` runs: the forward pass keeps every step (its memory and each
    head's weighting and addressing intermediates, float64), as the trace will, with each head's
    addressing stages (three weightings over N per head, stacked and then copied to float32: 5 x 8 bytes
    a location; a float64 model measured 80.7 KB a step without them, 90.1 KB with them, for 92.4 KB
    and 102.7 KB counted here, recording the shipped copy model at length 400 under tracemalloc)."""
    heads = cfg.read_heads + cfg.write_heads
    per_step = 8 * (3 * cfg.memory_size * cfg.word_size + 17 * heads * cfg.memory_size + 8 * cfg.controller_size)
    return RECORD_BYTES // per_step


def _stage(a_cache, stage: str) -> np.ndarray:
    """One addressing stage of one head at one step, from ``addressing.address_forward``'s cache (batch row 0)."""
    _, (_, beta, _, wc), (_, _, g), (s, rolled), (ws, _, gamma, _, _) = a_cache
    if stage == "gated_weightings":
        return rolled[0, (s.shape[1] - 1) // 2]  # the shift's copy of w_g at offset 0: w_g itself
    return {"content_weightings": wc, "key_strengths": beta, "gates": g, "shifts": s, "shifted_weightings": ws,
            "sharpenings": gamma}[stage][0]


STAGES = ("content_weightings", "key_strengths", "gates", "gated_weightings", "shifts", "shifted_weightings",
          "sharpenings")  # attnviz.trace.STAGES, written out here: this module stays numpy only


def stages(cfg: NTMConfig, steps: list, kind: str) -> dict[str, np.ndarray]:
    """The addressing stages of the ``kind`` heads ("write" or "read") at every step, by their trace names."""
    idx = range(cfg.write_heads) if kind == "write" else range(cfg.write_heads, cfg.write_heads + cfg.read_heads)
    out = {}
    for stage in STAGES:
        a = np.stack([np.stack([_stage(s["heads"][j][0], stage) for j in idx]) for s in steps])  # (T, heads, ·)
        out[f"{kind}_{stage}"] = a[:, 0] if a.shape[1] == 1 else a
    return out


def record(model: NTM, task: Task, length: int, seed: int = 2014, memory_limit: int = 2_000_000,
           sequence: Batch | None = None, **make_options) -> tuple[dict[str, np.ndarray], dict]:
    """Run the model on one new sequence of ``length`` and return every traced array.
    ``make_options`` go to the task's ``make`` (repeat-copy: ``repeats``) and into the metadata.
    ``sequence`` (a batch of one, of size ``length``: a training sequence, say) is run instead of a
    new one; ``seed`` then makes nothing.

    Returns (arrays, metadata) in the trace format: inputs, outputs (probabilities),
    targets, the scored-output mask, write/read weightings, adds, erases, reads, every head's addressing
    stages (``stages``), and the memory at every step when it has at most ``memory_limit`` values.
    """
    limit = recordable_steps(model.cfg)
    if length > limit:  # every task has at least one step per item
        raise ValueError(f"length {length} is too long to record: this model records at most {limit:,} steps "
                         f"within {RECORD_BYTES // 2**20} MiB")
    b = task.make(np.random.default_rng(seed), 1, length, **make_options) if sequence is None else sequence
    if b.x.shape[0] > limit:
        raise ValueError(f"length {length} is too long to record: its {b.x.shape[0]:,} steps are more than the "
                         f"{limit:,} this model records within {RECORD_BYTES // 2**20} MiB")
    logits, cache = model.forward(b.x, keep_memory=True)
    cfg = model.cfg
    steps = cache["steps"]

    def heads(kind, attr):
        idx = range(cfg.write_heads) if kind == "write" else range(cfg.write_heads, cfg.write_heads + cfg.read_heads)
        a = np.stack([np.stack([getattr(s["out"][j], attr)[0] for j in idx]) for s in steps])  # (T, heads, ·)
        return a[:, 0] if a.shape[1] == 1 else a

    arrays = {"inputs": b.x[:, 0], "outputs": sigmoid(logits[:, 0]), "targets": b.y[:, 0],
              "write_weightings": heads("write", "weighting"), "read_weightings": heads("read", "weighting"),
              "adds": heads("write", "add"), "erases": heads("write", "erase"), "reads": heads("read", "read")}
    for kind in ("write", "read"):
        arrays.update(stages(cfg, steps, kind))
    output_mask = b.mask[:, 0] > 0  # (T,) the steps whose outputs the task scores
    T = b.x.shape[0]
    if T * cfg.memory_size * cfg.word_size <= memory_limit:
        arrays["memory"] = np.stack([s["memory"][0] for s in steps])
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    arrays["output_mask"] = output_mask
    meta = {"task": task.name, "sequence_length": int(length), "probe_seed": int(seed), "model": "attnviz.ntm",
            "controller": cfg.controller, "memory_size": cfg.memory_size, "word_size": cfg.word_size, **make_options}
    return arrays, meta
