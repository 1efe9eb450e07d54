"""The Trace type and the rules of trace format version 1 (docs/trace-format.md).

The rules are written against shapes and dtypes (``check_structure``) and against
blocks of values (``check_values``), so that the same checks serve an in-memory
``Trace`` and a file too large to load, which is checked block by block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import TraceError

FORMAT_VERSION = 1
ROOT = "/"  # the name of the trace at the root of a file (or the only trace of a plain NPZ)


@dataclass(frozen=True)
class DatasetSpec:
    required: bool
    ranks: tuple[int, ...]
    shape_doc: str


DATASETS: dict[str, DatasetSpec] = {
    "inputs": DatasetSpec(True, (2,), "(T, input_width)"),
    "outputs": DatasetSpec(True, (2,), "(T, output_width)"),
    "write_weightings": DatasetSpec(True, (2, 3), "(T, N) or (T, heads, N)"),
    "read_weightings": DatasetSpec(True, (2, 3), "(T, N) or (T, heads, N)"),
    "targets": DatasetSpec(False, (2,), "(T, output_width)"),
    # The optimal predictor's outputs, for a task that has one (ngrams' Bayesian predictor): probabilities.
    "baseline_outputs": DatasetSpec(False, (2,), "(T, output_width)"),
    "adds": DatasetSpec(False, (2, 3), "(T, M) or (T, heads, M)"),
    "erases": DatasetSpec(False, (2, 3), "(T, M) or (T, heads, M)"),
    "reads": DatasetSpec(False, (2, 3), "(T, M) or (T, heads, M)"),
    "memory": DatasetSpec(False, (3,), "(T, N, M)"),
    "output_mask": DatasetSpec(False, (1,), "(T,)"),
}
# The addressing stages of each head kind (docs/trace-format.md): optional, in the order they are computed.
STAGES = ("content_weightings", "key_strengths", "gates", "gated_weightings", "shifts", "shifted_weightings",
          "sharpenings")
_PER_LOCATION, _PER_HEAD = ((2, 3), "(T, N) or (T, heads, N)"), ((1, 2), "(T,) or (T, heads)")
_LOCATION_STAGES = ("content_weightings", "gated_weightings", "shifted_weightings")  # over the N locations
_SCALAR_STAGES = ("key_strengths", "gates", "sharpenings")  # one value per head
_STAGE_SPECS = {"content_weightings": _PER_LOCATION, "key_strengths": _PER_HEAD, "gates": _PER_HEAD,
                "gated_weightings": _PER_LOCATION, "shifts": ((2, 3), "(T, S) or (T, heads, S)"),
                "shifted_weightings": _PER_LOCATION, "sharpenings": _PER_HEAD}


def stage_name(kind: str, stage: str) -> str:
    """The dataset of one addressing stage of one head kind: stage_name("read", "gates") -> "read_gates"."""
    return f"{kind}_{stage}"


_STAGE_OF: dict[str, str] = {}  # dataset -> its stage: "read_gates" -> "gates"
for _kind in ("write", "read"):
    for _stage in STAGES:
        DATASETS[stage_name(_kind, _stage)] = DatasetSpec(False, *_STAGE_SPECS[_stage])
        _STAGE_OF[stage_name(_kind, _stage)] = _stage
# The Differentiable Neural Computer's memory (docs/trace-format.md): optional; "heads" are its write heads,
# but for free_gates and read_modes, its read heads. dnc_write_gates is the DNC's write gate (write_gates is
# the NTM write heads' interpolation gate, an addressing stage).
DNC = {
    "usage": DatasetSpec(False, (2,), "(T, N)"),
    "allocation_weightings": DatasetSpec(False, (2, 3), "(T, N) or (T, write heads, N)"),
    "dnc_write_gates": DatasetSpec(False, (1, 2), "(T,) or (T, write heads)"),
    "allocation_gates": DatasetSpec(False, (1, 2), "(T,) or (T, write heads)"),
    "free_gates": DatasetSpec(False, (1, 2), "(T,) or (T, read heads)"),
    "read_modes": DatasetSpec(False, (2, 3), "(T, modes) or (T, read heads, modes), modes = 2 x write heads + 1"),
    "precedence_weightings": DatasetSpec(False, (2, 3), "(T, N) or (T, write heads, N)"),
    "link_matrices": DatasetSpec(False, (3, 4), "(T, N, N) or (T, write heads, N, N)"),
}
DATASETS.update(DNC)
_DNC_READ_HEADS = ("free_gates", "read_modes")  # the DNC datasets with a read heads axis; the rest have write heads
_DNC_GATES = ("dnc_write_gates", "allocation_gates", "free_gates")
_DNC_WIDTH = {"usage": 1, "allocation_weightings": 1, "dnc_write_gates": 0, "allocation_gates": 0, "free_gates": 0,
              "read_modes": 1, "precedence_weightings": 1, "link_matrices": 2}  # axes after the heads axis
REQUIRED = tuple(k for k, s in DATASETS.items() if s.required)
WEIGHTINGS = ("write_weightings", "read_weightings")
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats

Problem = tuple  # (dataset name or None, what is wrong)


def check_structure(specs: Mapping[str, tuple[tuple[int, ...], np.dtype]], partial: bool = False) -> list[Problem]:
    """Check the datasets' names, dtypes, ranks and mutual shapes.

    specs maps a dataset name to its (shape, dtype). Returns the problems found, each a
    (dataset or None, message) pair; an empty list means the structure is valid. With
    ``partial``, a recording under way: required datasets may be missing, and datasets may hold
    different numbers of steps so far.
    """
    problems: list[Problem] = []
    for name in specs:
        if name not in DATASETS:
            problems.append((name, f"unknown dataset; trace datasets are {', '.join(DATASETS)}"))
    for name in () if partial else REQUIRED:
        if name not in specs:
            problems.append((name, "missing required dataset (a trace needs "
                                   + ", ".join(REQUIRED) + ")"))
    good = {}
    for name, (shape, dtype) in specs.items():
        if name not in DATASETS:
            continue
        dtype = np.dtype(dtype)
        spec = DATASETS[name]
        if dtype.kind not in NUMERIC_KINDS:
            problems.append((name, f"has dtype {_dtype_name(dtype)}; expected bool, integer or float"))
        elif len(shape) not in spec.ranks:
            problems.append((name, f"has shape {tuple(shape)} (rank {len(shape)}); expected {spec.shape_doc}"))
        elif any(d == 0 for d in shape[1:]):
            problems.append((name, f"has shape {tuple(shape)} with an empty axis; expected {spec.shape_doc}"))
        else:
            good[name] = tuple(int(d) for d in shape)
    if not good:
        return problems

    ref = "inputs" if "inputs" in good else next(iter(good))
    T = good[ref][0]
    if T == 0 and not partial:
        problems.append((ref, f"has shape {good[ref]}: 0 time steps; a trace needs at least one"))
    for name, shape in good.items():
        if shape[0] != T and not partial:
            problems.append((name, f"has {shape[0]} time steps but {ref} has {T}; all datasets share axis 0 (time)"))

    def agree(a, a_axis, b, b_axis, what):
        if a in good and b in good and good[a][a_axis] != good[b][b_axis]:
            problems.append((b, f"has {what} = {good[b][b_axis]} but {a} has {what} = {good[a][a_axis]}"))

    agree("write_weightings", -1, "read_weightings", -1, "N (memory locations)")
    agree("write_weightings", -1, "memory", 1, "N (memory locations)")
    agree("outputs", 1, "targets", 1, "output_width")
    agree("outputs", 1, "baseline_outputs", 1, "output_width")
    for a, b in [("adds", "erases"), ("adds", "reads"), ("erases", "reads"), ("adds", "memory"),
                 ("reads", "memory")]:
        if a in good and b in good:
            agree(a, -1, b, -1, "M (word width)")
            break
    for vec, weights in [("adds", "write_weightings"), ("erases", "write_weightings"),
                         ("reads", "read_weightings")]:
        if vec in good and weights in good and _heads(good[vec]) != _heads(good[weights]):
            problems.append((vec, f"has {_heads(good[vec])} head(s) but {weights} has {_heads(good[weights])}"))
    problems += _stage_structure(good)
    problems += _dnc_structure(good)
    return problems


def _stage_structure(good: Mapping[str, tuple[int, ...]]) -> list[Problem]:
    """The addressing stages agree with their kind's weightings: the same heads (the heads axis may be
    left out for one head), the same N for the per-location stages, and an odd number of shift offsets."""
    problems = []
    for kind in ("write", "read"):
        weights = f"{kind}_weightings"
        for stage in STAGES:
            name = stage_name(kind, stage)
            if name not in good:
                continue
            shape = good[name]
            heads = (shape[1] if len(shape) == 2 else 1) if stage in _SCALAR_STAGES else _heads(shape)
            if stage == "shifts" and shape[-1] % 2 == 0:
                problems.append((name, f"has {shape[-1]} shift offsets; expected an odd number, S = 2R + 1 "
                                       "(offsets -R..R)"))
            if weights not in good:
                continue
            if stage in _LOCATION_STAGES and shape[-1] != good[weights][-1]:
                problems.append((name, f"has N = {shape[-1]} (memory locations) but {weights} has N = "
                                       f"{good[weights][-1]}"))
            if heads != _heads(good[weights]):
                problems.append((name, f"has {heads} head(s) but {weights} has {_heads(good[weights])}"))
    return problems


def _dnc_structure(good: Mapping[str, tuple[int, ...]]) -> list[Problem]:
    """The DNC datasets agree with the weightings: N locations (a link matrix is N x N), the write heads of
    write_weightings (the read heads of read_weightings for free_gates and read_modes; the heads axis may be
    left out for one head), and 2 x write heads + 1 read modes."""
    problems = []
    ww = good.get("write_weightings")
    for name in DNC:
        if name not in good:
            continue
        shape = good[name]
        if name == "link_matrices" and (shape[-2] != shape[-1] or ww and shape[-1] != ww[-1]):
            need = f" but write_weightings has N = {ww[-1]}" if ww else ""
            problems.append((name, f"has {shape[-2]} x {shape[-1]} link matrices{need}; a link matrix is N x N "
                                   "(memory locations)"))
        elif _DNC_WIDTH[name] and name != "read_modes" and ww and shape[-1] != ww[-1]:
            problems.append((name, f"has N = {shape[-1]} (memory locations) but write_weightings has N = {ww[-1]}"))
        kind = "read" if name in _DNC_READ_HEADS else "write"
        weights = good.get(f"{kind}_weightings")
        if weights and name != "usage" and dnc_heads(name, shape) != _heads(weights):  # usage: of every head
            problems.append((name, f"has {dnc_heads(name, shape)} {kind} head(s) but {kind}_weightings has "
                                   f"{_heads(weights)}"))
        if name == "read_modes":
            modes, rule = shape[-1], "(backward for each write head, content, forward for each write head)"
            if ww and modes != 2 * _heads(ww) + 1:
                problems.append((name, f"has {modes} read modes; expected 2 x write heads + 1 = {2 * _heads(ww) + 1} "
                                       + rule))
            elif not ww and (modes < 3 or modes % 2 == 0):
                problems.append((name, f"has {modes} read modes; expected 2 x write heads + 1 {rule}"))
    return problems


def dnc_heads(name: str, shape) -> int:
    """The heads of a DNC dataset of this shape: write heads, or read heads for free_gates and read_modes
    (1 where the heads axis is left out)."""
    return shape[1] if len(shape) == 2 + _DNC_WIDTH[name] else 1


def _heads(shape) -> int:
    return shape[1] if len(shape) == 3 else 1


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind == "c":
        return f"{dtype} (complex)"
    if dtype.kind in "OSUVa":
        return {"O": "object", "S": "bytes", "U": "string", "V": "compound/void"}.get(dtype.kind, str(dtype))
    return str(dtype)


def check_values(name: str, block: np.ndarray, start: int = 0, weighting_tol: float | None = None, *,
                 finite: bool = True, stage_tol: float | None = None, dnc: bool = False) -> str | None:
    """Check one block of a dataset (rows start, start+1, ... of axis 0).

    Values must be finite (``finite=False`` lets NaN and infinities pass: a Trace holds what a
    model that diverged recorded, and ``validate`` reports them). With ``weighting_tol`` set, a
    weighting must also lie in [0, 1] and sum to 1 over locations, each within that tolerance (with
    ``dnc``, a weighting of a trace holding DNC datasets: to at most 1, since the DNC's write gate
    and its link matrices let weight go). With
    ``stage_tol`` set, an addressing stage must lie in its range within that tolerance
    (docs/trace-format.md): gates in [0, 1], key strengths >= 0, sharpenings >= 1, and the shifts
    and the stages' weightings in [0, 1], summing to 1; and so must the DNC datasets: every value
    in [0, 1], a link matrix's diagonal 0, allocation and precedence weightings summing to at most
    1 (and, with ``weighting_tol``, read modes summing to 1); and the optimal predictor's
    ``baseline_outputs``, probabilities, in [0, 1]. Returns the first problem found,
    naming the step (and location), or None.
    """
    if finite and block.dtype.kind == "f":
        bad = ~np.isfinite(block)
        if bad.any():
            idx = np.unravel_index(int(np.argmax(bad)), block.shape)
            value = block[idx]
            where = dnc_where(name, idx, block.ndim, block.shape[-1]) if name in DNC else _where(name, idx)
            return f"contains {value} at step {start + idx[0]}{where}; values must be finite"
    if name == "output_mask" and block.size:
        bad = (block != 0) & (block != 1)
        if bad.any():
            i = int(np.argmax(bad))
            return f"has value {block[i]} at step {start + i}; an output mask holds 0 or 1 (1: scored)"
    if weighting_tol is not None and name in WEIGHTINGS and block.size:
        b = block.astype(np.float64, copy=False)
        out = (b < -weighting_tol) | (b > 1 + weighting_tol)
        if out.any():
            idx = np.unravel_index(int(np.argmax(out)), b.shape)
            return f"has weight {b[idx]:.6g} at step {start + idx[0]}{_where(name, idx)}; weights must lie in [0, 1]"
        sums = b.sum(axis=-1)
        off = sums > 1 + weighting_tol if dnc else np.abs(sums - 1.0) > weighting_tol
        if off.any():
            idx = np.unravel_index(int(np.argmax(off)), sums.shape)
            head = f", head {idx[1]}" if len(idx) > 1 else ""
            expected = "at most 1 (a trace with DNC datasets)" if dnc else "1"
            return (f"sums to {sums[idx]:.6g} over locations at step {start + idx[0]}{head}; "
                    f"expected {expected} within {weighting_tol:g}")
    if stage_tol is not None and name in _STAGE_OF and block.size:
        return _stage_range(_STAGE_OF[name], block, start, stage_tol)
    if stage_tol is not None and name == "baseline_outputs" and block.size:
        b = block.astype(np.float64, copy=False)
        out = (b < -stage_tol) | (b > 1 + stage_tol)
        if out.any():
            t, bit = np.unravel_index(int(np.argmax(out)), b.shape)
            return (f"has {b[t, bit]:.6g} at step {start + t}, bit {bit}; the optimal predictor's outputs are "
                    f"probabilities in [0, 1] (within {stage_tol:g})")
    if name in DNC and block.size and (stage_tol is not None or weighting_tol is not None):
        return _dnc_range(name, block, start, stage_tol, weighting_tol)
    return None


_DNC_VALUES = {"usage": ("usage", "usage lies"), "read_modes": ("read mode", "read modes lie"),
               "link_matrices": ("link weight", "link weights lie")}  # the rest: gates, or weights


def _dnc_range(name: str, block: np.ndarray, start: int, tol: float | None, weighting_tol: float | None
               ) -> str | None:
    """The first value of a DNC dataset out of its range (docs/trace-format.md), or None: with ``tol``, every
    value in [0, 1], a link matrix's diagonal 0, allocation and precedence weights summing to at most 1; with
    ``weighting_tol`` (``validate --weightings``), the read modes summing to 1."""
    b = block.astype(np.float64, copy=False)

    def where(idx) -> str:
        return dnc_where(name, idx, b.ndim, b.shape[-1])

    if tol is not None:
        what, rule = _DNC_VALUES.get(name, ("gate", "gates lie") if name in _DNC_GATES else ("weight", "weights lie"))
        out = (b < -tol) | (b > 1 + tol)
        if out.any():
            idx = np.unravel_index(int(np.argmax(out)), b.shape)
            return f"has {what} {b[idx]:.6g} at step {start + idx[0]}{where(idx)}; {rule} in [0, 1]"
        if name == "link_matrices":
            diagonal = np.abs(np.diagonal(b, axis1=-2, axis2=-1)) > tol  # (steps, [heads,] N)
            if diagonal.any():
                idx = np.unravel_index(int(np.argmax(diagonal)), diagonal.shape)
                idx += idx[-1:]
                return (f"has link weight {b[idx]:.6g} at step {start + idx[0]}{where(idx)}, on the diagonal; a link "
                        f"matrix's diagonal is 0 (no location is written right after itself), within {tol:g}")
        if name in ("allocation_weightings", "precedence_weightings"):
            sums = b.sum(axis=-1)
            over = sums > 1 + tol
            if over.any():
                idx = np.unravel_index(int(np.argmax(over)), sums.shape)
                return (f"sums to {sums[idx]:.6g} over locations at step {start + idx[0]}{where(idx)}; expected at "
                        f"most 1 within {tol:g}")
    if weighting_tol is not None and name == "read_modes":
        sums = b.sum(axis=-1)
        off = np.abs(sums - 1.0) > weighting_tol
        if off.any():
            idx = np.unravel_index(int(np.argmax(off)), sums.shape)
            return (f"sums to {sums[idx]:.6g} over modes at step {start + idx[0]}{where(idx)}; expected 1 within "
                    f"{weighting_tol:g}")
    return None


def dnc_where(name: str, idx, ndim: int | None = None, modes: int | None = None) -> str:
    """Where an index (step, [head,] [location, mode or link row and column]) of a DNC dataset of ``ndim``
    axes lies, in words: ", write head 1, location 4", ", read head 0, mode 2 (forward)", ", L[5, 4]"
    (``ndim`` defaults to the index's length; ``modes``, the read modes' number, names a read mode)."""
    ndim = len(idx) if ndim is None else ndim
    has_heads = ndim == 2 + _DNC_WIDTH[name]
    parts = []
    if has_heads and len(idx) > 1:
        parts.append(f"{'read' if name in _DNC_READ_HEADS else 'write'} head {idx[1]}")
    rest = tuple(int(i) for i in idx[1 + has_heads:])
    if name == "link_matrices" and len(rest) == 2:
        parts.append(f"L[{rest[0]}, {rest[1]}]")
    elif name == "read_modes" and rest:
        parts.append(f"mode {rest[0]}" + (f" ({read_mode_name(rest[0], modes)})" if modes else ""))
    elif rest:
        parts.append(f"location {rest[0]}")
    return "".join(", " + p for p in parts)


def read_mode_name(k: int, modes: int) -> str:
    """The name of read mode k of ``modes`` = 2 x write heads + 1, in the trace's order: "backward", "content",
    "forward" (with several write heads, "backward, write head 1")."""
    W = (modes - 1) // 2
    kind, head = ("backward", k) if k < W else ("content", None) if k == W else ("forward", k - W - 1)
    return kind if W == 1 or head is None else f"{kind}, write head {head}"


def _stage_range(stage: str, block: np.ndarray, start: int, tol: float) -> str | None:
    """The first value of an addressing stage outside its range (within ``tol``), or None."""
    b = block.astype(np.float64, copy=False)
    if stage == "key_strengths":
        out, what, rule = b < -tol, "key strength", "key strengths are >= 0"
    elif stage == "sharpenings":
        out, what, rule = b < 1 - tol, "sharpening", "sharpenings are >= 1"
    else:
        out = (b < -tol) | (b > 1 + tol)
        what, rule = {"gates": ("gate", "gates"), "shifts": ("shift probability", "shift probabilities")
                      }.get(stage, ("weight", "weights"))
        rule += " lie in [0, 1]"
    where = _stage_where(stage, b.shape)
    if out.any():
        idx = np.unravel_index(int(np.argmax(out)), b.shape)
        return f"has {what} {b[idx]:.6g} at step {start + idx[0]}{where(idx)}; {rule}"
    if stage in _SCALAR_STAGES:
        return None
    sums = b.sum(axis=-1)
    off = np.abs(sums - 1.0) > tol
    if off.any():
        idx = np.unravel_index(int(np.argmax(off)), sums.shape)
        over = "offsets" if stage == "shifts" else "locations"
        return (f"sums to {sums[idx]:.6g} over {over} at step {start + idx[0]}{where(idx)}; "
                f"expected 1 within {tol:g}")
    return None


def _stage_where(stage: str, shape):
    """Where an index (step, [head,] [location or offset]) of a stage's block lies, in words."""
    has_heads = len(shape) == (2 if stage in _SCALAR_STAGES else 3)
    R = (shape[-1] - 1) // 2

    def where(idx) -> str:
        parts = [f"head {idx[1]}"] if has_heads and len(idx) > 1 else []
        if stage not in _SCALAR_STAGES and len(idx) == len(shape):
            parts.append(f"offset {_offset(idx[-1] - R)}" if stage == "shifts" else f"location {idx[-1]}")
        return "".join(", " + p for p in parts)

    return where


def _offset(k: int) -> str:
    """A shift offset as the docs write it: -1, 0, +1."""
    return f"+{k}" if k > 0 else str(k)


# ------------------------------------------------------------------ the stages recombine

STAGE_TOL = 1e-3  # how far outside its range `attnviz validate` lets a stage's value lie (its --tol)
RECOMBINE_TOL = 1e-4  # |recombined - recorded| allowed per location; float32 storage stays below 1e-6
_RELATIONS = {  # relation -> the datasets it needs (as stages of one kind), and the one it recombines into
    "interpolation": (("content_weightings", "gates", "gated_weightings", "weightings"), "gated_weightings"),
    "shift": (("gated_weightings", "shifts", "shifted_weightings"), "shifted_weightings"),
    "sharpening": (("shifted_weightings", "sharpenings", "weightings"), "weightings"),
}


class Recombination:
    """Checks that the recorded addressing stages recombine into the recorded weightings, block by
    block of steps (docs/trace-format.md), per head kind and head:

    - interpolation: gated[t] = g[t] * content[t] + (1 - g[t]) * final[t - 1], for t >= 1 (the
      weighting before step 0 is not in a trace: step 0 is not checked);
    - shift: shifted[t][i] = sum_k shifts[t][k] * gated[t][(i - k) mod N], offsets k = -R..R;
    - sharpening: final[t] = shifted[t]^gamma[t] / sum(shifted[t]^gamma[t]);

    each within ``tol`` at every location. A relation is checked where all of its datasets are
    recorded; a step holding a non-finite value is left to the value checks.

    >>> r = Recombination({k: a.shape for k, a in trace.arrays.items()})
    >>> r.add(0, {k: trace[k] for k in r.datasets})
    >>> r.problems()  # [] when they recombine
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], tol: float = RECOMBINE_TOL):
        self.tol = tol
        self.checks = [(kind, relation) for kind in ("write", "read") for relation, (needs, _) in _RELATIONS.items()
                       if all(stage_name(kind, s) in shapes for s in needs)]
        names = {stage_name(kind, s) for kind, rel in self.checks for s in _RELATIONS[rel][0]}
        self.datasets = sorted(names, key=list(DATASETS).index)  # what ``add`` needs
        self._prev: dict[str, np.ndarray] = {}  # kind -> its weighting at the step before the next block
        self._steps = dict.fromkeys(self.checks, 0)  # steps checked
        self._fails: dict[tuple, list] = {}  # (kind, relation, head) -> [steps off, first step, error, location]

    def add(self, start: int, blocks: Mapping[str, np.ndarray]) -> None:
        """Check steps start, start + 1, ...: ``blocks`` holds those steps of every dataset in
        ``datasets``; blocks come in order of their steps, each starting where the last one stopped."""
        for kind, relation in self.checks:
            def get(stage, kind=kind):
                return with_heads(stage, blocks[stage_name(kind, stage)])

            first = start
            if relation == "interpolation":
                w = get("weightings")
                prev = np.concatenate([self._prev[kind], w[:-1]]) if kind in self._prev else w[:-1]
                c, g, recorded = get("content_weightings"), get("gates")[..., None], get("gated_weightings")
                if kind not in self._prev:  # step 0: the weighting before it is not recorded
                    c, g, recorded, first = c[1:], g[1:], recorded[1:], start + 1
                expected = g * c + (1 - g) * prev
            elif relation == "shift":
                recorded, expected = get("shifted_weightings"), shift(get("gated_weightings"), get("shifts"))
            else:
                ws, gamma, recorded = np.maximum(get("shifted_weightings"), 0), get("sharpenings"), get("weightings")
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    log_ws = np.log(ws)
                    z = np.exp(gamma[..., None] * (log_ws - log_ws.max(axis=-1, keepdims=True)))
                    expected = z / z.sum(axis=-1, keepdims=True)
            self._tally(kind, relation, first, np.abs(expected - recorded))
        for kind, relation in self.checks:
            if relation == "interpolation":
                self._prev[kind] = with_heads("weightings", blocks[f"{kind}_weightings"])[-1:]

    def _tally(self, kind: str, relation: str, first: int, err: np.ndarray) -> None:
        """Count the steps at which each head is off by more than tol; err: (steps, heads, N)."""
        self._steps[kind, relation] += err.shape[0]
        err = np.where(np.isfinite(err), err, 0.0)  # a non-finite value is reported as such
        worst = err.max(axis=-1)  # (steps, heads)
        for head in range(err.shape[1]):
            off = np.flatnonzero(worst[:, head] > self.tol)
            if off.size:
                fail = self._fails.setdefault((kind, relation, head), [0, None, 0.0, 0])
                if fail[1] is None:
                    t = int(off[0])
                    fail[1:] = [first + t, float(worst[t, head]), int(np.argmax(err[t, head]))]
                fail[0] += off.size

    def problems(self) -> list[Problem]:
        """One (dataset, message) per head and relation that does not recombine, naming its first step."""
        out = []
        order = {key: i for i, key in enumerate(self.checks)}
        for (kind, relation, head), (n, step, err, loc) in sorted(self._fails.items(),
                                                                 key=lambda f: (order[f[0][:2]], f[0][2])):
            formula = {
                "interpolation": f"{kind}_gates * {kind}_content_weightings + (1 - {kind}_gates) * the "
                                 f"{kind}_weightings of the step before",
                "shift": f"{kind}_gated_weightings shifted by {kind}_shifts",
                "sharpening": f"{kind}_shifted_weightings ^ {kind}_sharpenings, normalised",
            }[relation]
            recorded = stage_name(kind, _RELATIONS[relation][1])
            out.append((recorded, f"{kind} head {head}: the {relation} does not recombine, first at step {step}: "
                                  f"{recorded} at location {loc} is {err:.3g} away from {formula} (tolerance "
                                  f"{self.tol:g}); off at {n} of the {self._steps[kind, relation]} steps checked"))
        return out


def shift(weightings: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Circular convolution of weightings (..., N) with shift distributions (..., S) over the offsets
    k = -R..R: offset k moves weight from location i to i + k, out[i] = sum_k s[k] * w[(i - k) mod N]."""
    R = (shifts.shape[-1] - 1) // 2
    out = np.zeros(np.broadcast_shapes(weightings.shape, shifts.shape[:-1] + (1,)))
    for j in range(shifts.shape[-1]):
        out += shifts[..., j, None] * np.roll(weightings, j - R, axis=-1)
    return out


def with_heads(stage: str, block) -> np.ndarray:
    """A block of a stage (a suffix of STAGES, or "weightings") as float64 with its heads axis:
    (steps, heads) or (steps, heads, width)."""
    a = np.asarray(block, np.float64)
    return a[:, None] if a.ndim == (1 if stage in _SCALAR_STAGES else 2) else a


def _where(name: str, idx) -> str:
    if name in DNC:
        return dnc_where(name, idx)
    label = "location" if name in WEIGHTINGS or name == "memory" else "element"
    if len(idx) == 3 and name != "memory":
        return f", head {idx[1]}, {label} {idx[2]}"
    if len(idx) == 3:
        return f", location {idx[1]}, element {idx[2]}"
    return f", {label} {idx[1]}" if len(idx) > 1 else ""


MetaValue = str | int | float | bool


def check_metadata(meta: Mapping) -> dict[str, MetaValue]:
    """Return metadata as plain Python str/int/float/bool values, or raise ValueError."""
    out: dict[str, MetaValue] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not key or "\x00" in key or "/" in key:
            raise ValueError(f"metadata key {key!r} must be a non-empty string without '/' or NUL")
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if isinstance(value, bytes | np.bytes_):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"metadata {key!r} is bytes that are not UTF-8") from None
        if isinstance(value, bool | np.bool_):
            out[key] = bool(value)
        elif isinstance(value, int | np.integer):
            out[key] = int(value)
        elif isinstance(value, float | np.floating):
            out[key] = float(value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise ValueError(f"metadata {key!r} contains a NUL character, which HDF5 cannot store")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"metadata {key!r} is not valid Unicode text") from None
            out[key] = str(value)
        else:
            raise ValueError(f"metadata {key!r} is a {type(value).__name__}; "
                             "metadata values must be str, int, float or bool (a flat mapping)")
    return out


def as_array(value) -> np.ndarray:
    """numpy view of anything array-like: numpy, PyTorch (detached, on the CPU), JAX, lists."""
    if hasattr(value, "detach"):  # a torch.Tensor that may require grad
        value = value.detach()
    if hasattr(value, "cpu") and not isinstance(value, np.ndarray):
        value = value.cpu()
    return np.asarray(value)


class Trace:
    """One recorded sequence: named arrays (time on axis 0), flat metadata and a name.

    Built from any array-likes; checked when built (structure, dtypes, metadata, output mask), so a
    Trace in hand is well formed. Its values may hold NaN or infinities (a model that diverged):
    attnviz draws them in a colour of their own, and ``validate`` reports them.

    >>> t = Trace({"inputs": x, "outputs": y, "write_weightings": ww, "read_weightings": rw},
    ...           metadata={"task": "copy"}, name="sample_0")
    """

    def __init__(self, arrays: Mapping[str, object], metadata: Mapping | None = None,
                 name: str = ROOT, *, path=None):
        self.name = normalise_name(name)
        if name_problem(self.name):
            raise TraceError(name_problem(self.name), path)
        self.arrays: dict[str, np.ndarray] = {k: as_array(v) for k, v in arrays.items() if v is not None}
        try:
            self.metadata = check_metadata(metadata or {})
        except ValueError as e:
            raise TraceError(str(e), path, self.name) from None
        problems = check_structure({k: (v.shape, v.dtype) for k, v in self.arrays.items()})
        if not problems:
            for k, v in self.arrays.items():
                msg = check_values(k, v, finite=False)  # NaN and inf are kept: drawn, and named by validate
                if msg:
                    problems.append((k, msg))
        if problems:
            dataset, msg = problems[0]
            raise TraceError(msg, path, self.name, dataset)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def get(self, key: str, default=None):
        return self.arrays.get(key, default)

    @property
    def inputs(self) -> np.ndarray:
        return self.arrays["inputs"]

    @property
    def outputs(self) -> np.ndarray:
        return self.arrays["outputs"]

    @property
    def write_weightings(self) -> np.ndarray:
        return self.arrays["write_weightings"]

    @property
    def read_weightings(self) -> np.ndarray:
        return self.arrays["read_weightings"]

    # The datasets a trace may hold: None when this one did not record them.
    targets = property(lambda self: self.arrays.get("targets"), doc="(T, output_width) or None")
    adds = property(lambda self: self.arrays.get("adds"), doc="(T, M) or (T, heads, M), or None")
    erases = property(lambda self: self.arrays.get("erases"), doc="(T, M) or (T, heads, M), or None")
    reads = property(lambda self: self.arrays.get("reads"), doc="(T, M) or (T, heads, M), or None")
    memory = property(lambda self: self.arrays.get("memory"), doc="(T, N, M) or None")
    output_mask = property(lambda self: self.arrays.get("output_mask"), doc="(T,) or None: is a step's output scored?")
    baseline_outputs = property(lambda self: self.arrays.get("baseline_outputs"),
                                doc="(T, output_width) or None: the optimal predictor's outputs")

    @property
    def steps(self) -> int:
        """T, the number of time steps."""
        return self.inputs.shape[0]

    @property
    def locations(self) -> int:
        """N, the number of memory locations."""
        return self.write_weightings.shape[-1]

    def heads(self, key: str) -> np.ndarray:
        """A per-head dataset as (T, heads, width), whether stored 2-D or 3-D."""
        a = self.arrays[key]
        return a[:, None, :] if a.ndim == 2 else a

    def _scene(self):
        from .plot import PlotOptions, Source, build_scene

        opts = PlotOptions().validated()
        return build_scene(Source.of_trace(self, opts), opts)

    def _repr_html_(self) -> str:
        """In a notebook: the trace's interactive view, inline (no network needed)."""
        from .plot.html import inline

        return inline(self._scene())

    def _repr_png_(self) -> bytes:
        """In a notebook that shows no HTML: the trace's figure."""
        from .plot import Renderer

        scene = self._scene()
        return Renderer(scene.opts).png(scene)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.arrays.items())
        return f"Trace(name={self.name!r}, {shapes})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (self.name == other.name and self.metadata == other.metadata
                and self.arrays.keys() == other.arrays.keys()
                and all(self.arrays[k].dtype == other.arrays[k].dtype
                        and np.array_equal(self.arrays[k], other.arrays[k]) for k in self.arrays))

    __hash__ = None  # mutable arrays inside


_NAME_PART = re.compile(r"[^\x00-\x1f\x7f/\\]+")



def _optional(key: str, doc: str) -> property:
    return property(lambda self: self.arrays.get(key), doc=doc)


for _kind in ("write", "read"):  # the addressing stages as attributes too: trace.read_gates
    for _stage in STAGES:
        setattr(Trace, stage_name(_kind, _stage), _optional(stage_name(_kind, _stage),
                                                            f"{_STAGE_SPECS[_stage][1]} of the {_kind} heads, or None"))

for _name, _spec in DNC.items():  # and the DNC's: trace.usage, trace.read_modes
    setattr(Trace, _name, _optional(_name, f"{_spec.shape_doc}, or None"))


def name_problem(name: str) -> str | None:
    """Why a (normalised) trace name is not allowed, or None: a name is parts separated by '/',
    none of them '.' or '..', with no backslash or control character (docs/trace-format.md), so
    that no name can reach outside its file's own tree when it is unpacked or written."""
    if name == ROOT:
        return None
    if any(part in (".", "..") or not _NAME_PART.fullmatch(part) for part in name.split("/")):
        return (f"trace name {name!r} is not allowed: a name is parts separated by '/', none of them "
                "'.' or '..', without backslashes or control characters")
    return None


def normalise_name(name: str) -> str:
    """Trace names are group paths without leading or trailing slashes; the root is '/'."""
    if not isinstance(name, str):
        raise TypeError(f"a trace name must be a string, not {type(name).__name__}")
    parts = [p for p in name.split("/") if p]
    return "/".join(parts) if parts else ROOT


def as_trace_list(traces) -> list[Trace]:
    """Accept one Trace, an iterable of them, or a mapping name -> Trace."""
    if isinstance(traces, Trace):
        return [traces]
    if isinstance(traces, Mapping):
        out = []
        for name, t in traces.items():
            if normalise_name(name) != t.name:
                t = Trace(t.arrays, t.metadata, name)
            out.append(t)
        return out
    if isinstance(traces, Iterable):
        return list(traces)
    raise TypeError(f"expected a Trace or traces, not {type(traces).__name__}")
