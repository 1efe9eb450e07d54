"""What the NTM shows of itself: its trace datasets from a forward pass's cache, the memory recording
them takes, and the quantities of one step in the order it computes them (for a run that diverged)."""

from __future__ import annotations

import numpy as np

from .config import NTMConfig
from .model import head_order

STAGES = ("content_weightings", "key_strengths", "gates", "gated_weightings", "shifts", "shifted_weightings",
          "sharpenings")  # attnviz.trace.STAGES, written out here: the trainer stays numpy only


def bytes_per_step(cfg: NTMConfig) -> int:
    """What recording holds per step: the forward pass keeps every step (its memory and each head's
    weighting and addressing intermediates, float64), as the trace will, with each head's addressing
    stages (three weightings over N per head, stacked and then copied to float32: 5 x 8 bytes a
    location; a float64 model measured 80.7 KB a step without them, 90.1 KB with them, for 92.4 KB and
    102.7 KB counted here, recording the shipped copy model at length 400 under tracemalloc)."""
    heads = cfg.read_heads + cfg.write_heads
    return 8 * (3 * cfg.memory_size * cfg.word_size + 17 * heads * cfg.memory_size + 8 * cfg.controller_size)


def _heads(cfg: NTMConfig, kind: str) -> range:
    W = cfg.write_heads
    return range(W) if kind == "write" else range(W, W + cfg.read_heads)


def _stage(a_cache, stage: str) -> np.ndarray:
    """One addressing stage of one head at one step, from ``addressing.address_forward``'s cache (batch row 0)."""
    _, (_, beta, _, wc), (_, _, g), (s, rolled), (ws, _, gamma, _, _) = a_cache
    if stage == "gated_weightings":
        return rolled[0, (s.shape[1] - 1) // 2]  # the shift's copy of w_g at offset 0: w_g itself
    return {"content_weightings": wc, "key_strengths": beta, "gates": g, "shifts": s, "shifted_weightings": ws,
            "sharpenings": gamma}[stage][0]


def _stack(per_step) -> np.ndarray:
    """(T, heads, ...) from a list over steps of lists over heads; the heads axis dropped for one head."""
    a = np.stack([np.stack(heads) for heads in per_step])
    return a[:, 0] if a.shape[1] == 1 else a


def trace_arrays(cfg: NTMConfig, steps: list) -> dict[str, np.ndarray]:
    """The trace datasets of batch row 0 from a forward pass's ``steps``: the write and read weightings,
    adds, erases, reads, and every head's addressing stages (by their trace names)."""
    def heads(kind, attr):
        return _stack([[getattr(s["out"][j], attr)[0] for j in _heads(cfg, kind)] for s in steps])

    arrays = {"write_weightings": heads("write", "weighting"), "read_weightings": heads("read", "weighting"),
              "adds": heads("write", "add"), "erases": heads("write", "erase"), "reads": heads("read", "read")}
    for kind in ("write", "read"):
        for stage in STAGES:
            arrays[f"{kind}_{stage}"] = _stack([[_stage(s["heads"][j][0], stage) for j in _heads(cfg, kind)]
                                                for s in steps])
    return arrays


def quantities(cfg: NTMConfig, st: dict, logits: np.ndarray):
    """(name, (B, ...) array) of one step of the forward pass, in the order it computes them."""
    W = cfg.write_heads
    if cfg.controller == "lstm":  # its cell state may overflow while its output, tanh-squashed, stays finite
        _, _, c_prev, i, f, _, g, _ = st["ctrl"]
        yield "the controller's cell state", f * c_prev + i * g
    yield "the controller's output", st["h"]
    for j in head_order(cfg):
        head = f"the write head {j}" if j < W else f"the read head {j - W}"
        a_cache, _, _ = st["heads"][j]
        (key, _, similarity, _, _), (_, beta, _, wc), (_, w_prev, g), (s, _), (ws, _, gamma, _, w) = a_cache
        yield f"{head}'s key", key
        yield f"{head}'s key strength", beta
        yield f"{head}'s gate", g
        yield f"{head}'s shift distribution", s
        yield f"{head}'s sharpening", gamma
        yield f"{head}'s similarity to the memory", similarity
        yield f"{head}'s content weighting", wc
        yield f"{head}'s gated weighting", g[:, None] * wc + (1 - g[:, None]) * w_prev
        yield f"{head}'s shifted weighting", ws
        yield f"{head}'s weighting", w
        out = st["out"][j]
        if j < W:
            yield f"{head}'s erase vector", out.erase
            yield f"{head}'s add vector", out.add
        else:
            yield f"{head}'s read vector", out.read
    yield "the memory", st["memory"]
    yield "the output", logits
