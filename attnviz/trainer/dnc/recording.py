"""What the DNC shows of itself: its trace datasets from a forward pass's cache (docs/trace-format.md,
"The DNC"), the memory recording them takes, and the quantities of one step in the order it computes
them (for a run that diverged)."""

from __future__ import annotations

import numpy as np

from .config import DNCConfig


def bytes_per_step(cfg: DNCConfig) -> int:
    """What recording holds per step: the forward pass's cache (float64 at most), dominated by the N x N
    arrays of the link matrix (its update's scale, the matrix before and after; counted as 6, safely
    above) and the memory before and after the write."""
    N, W, R, H = cfg.memory_size, cfg.word_size, cfg.read_heads, cfg.controller_size
    return 8 * (6 * N * N + 4 * N * W + 12 * (R + 1) * N + 4 * R * W + 8 * H)


def _one(a: np.ndarray) -> np.ndarray:
    """A read-head array of batch row 0 over steps, (T, R, ...), without its heads axis for one head."""
    return a[:, 0] if a.shape[1] == 1 else a


def trace_arrays(cfg: DNCConfig, steps: list) -> dict[str, np.ndarray]:
    """The trace datasets of batch row 0 from a forward pass's ``steps``."""
    def stack(key, index=None):
        return np.stack([(s[key] if index is None else s[key][index])[0] for s in steps])

    return {
        "write_weightings": stack("write_weightings"), "read_weightings": _one(stack("read_weightings")),
        "adds": stack("vector"), "erases": stack("erase"), "reads": _one(stack("reads")),
        "usage": stack("usage_now"), "allocation_weightings": stack("alloc"),
        "dnc_write_gates": stack("gates", 0), "allocation_gates": stack("gates", 1),
        "free_gates": _one(stack("free")), "read_modes": _one(stack("modes")),
        "precedence_weightings": stack("precedence_now"), "link_matrices": stack("link_now"),
        "write_content_weightings": stack("write_content_now"),
        "write_key_strengths": np.stack([s["write_content"][1][0] for s in steps]),  # content_forward's beta
        "read_content_weightings": _one(stack("read_content_now")),
        "read_key_strengths": _one(np.stack([np.stack([c2[1][0] for _, c2 in s["read_content"]]) for s in steps])),
    }


def quantities(cfg: DNCConfig, st: dict, logits: np.ndarray):
    """(name, (B, ...) array) of one step of the forward pass, in the order it computes them."""
    if cfg.controller == "lstm":  # its cell state may overflow while its output, tanh-squashed, stays finite
        _, _, c_prev, i, f, _, g, _ = st["ctrl"]
        yield "the controller's cell state", f * c_prev + i * g
    yield "the controller's output", st["h"]
    yield "the free gates", st["free"]
    yield "the usage", st["usage_now"]
    yield "the allocation weighting", st["alloc"]
    yield "the write head's key", st["write_cosine"][0]
    yield "the write head's key strength", st["write_content"][1]
    yield "the write head's content weighting", st["write_content_now"]
    yield "the write gate", st["gates"][0]
    yield "the allocation gate", st["gates"][1]
    yield "the write weighting", st["write_weightings"]
    yield "the erase vector", st["erase"]
    yield "the write vector", st["vector"]
    yield "the memory", st["memory"]
    yield "the link matrix", st["link_now"]
    yield "the precedence weighting", st["precedence_now"]
    yield "the read heads' key strengths", np.stack([c2[1] for _, c2 in st["read_content"]], axis=1)
    yield "the read heads' content weightings", st["read_content_now"]
    yield "the read modes", st["modes"]
    yield "the read weightings", st["read_weightings"]
    yield "the read vectors", st["reads"]
    yield "the output", logits
