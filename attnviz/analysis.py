"""Measures of what a trace shows. numpy only, so the trainer can use them too."""

from __future__ import annotations

import numpy as np

SHARP = 0.8  # a weighting whose peak is at least this is "focused"
CONSISTENT = 0.9  # the share of steps that must move by the same +1 or -1
SETTLE = 2  # steps at the start of each phase where a head may still be diffuse
MAX_WRONG = 0.01  # the share of scored output bits that may be wrong in a learned copy


def _head0(w: np.ndarray) -> np.ndarray:
    return w[:, 0, :] if w.ndim == 3 else w


def _walk(w: np.ndarray) -> dict:
    """Peak, location and step-to-step movement of a (steps, N) weighting."""
    return _moves(w.max(axis=1), w.argmax(axis=1), w.shape[1])


def _moves(peak: np.ndarray, loc: np.ndarray, N: int) -> dict:
    """_walk's measures from each step's peak and its location, over N locations."""
    moves = (loc[1:] - loc[:-1] + N // 2) % N - N // 2  # circular, in [-N/2, N/2)
    if moves.size:
        up, down = int(np.count_nonzero(moves == 1)), int(np.count_nonzero(moves == -1))
        direction = 1 if up >= down else -1
        steady = (up if direction == 1 else down) / moves.size
    else:
        direction, steady = 1, 1.0
    return {"mean_peak": float(peak.mean()), "min_peak": float(peak.min()),
            "direction": direction, "steady_fraction": steady, "locations": loc.tolist()}


def copy_diagnostics(write_weightings, read_weightings, length: int, outputs=None, targets=None,
                     output_mask=None) -> dict:
    """Does a copy trace show the learned algorithm, and does it copy?

    For a copy trace of ``length`` items (inputs at steps 0..L-1, the delimiter at L,
    outputs at L+1..2L), measures on the first head: the write focus over the input
    steps and the read focus over the output steps (mean and minimum peak, the share
    of steps that move by the same +1 or -1 location, circularly), leaving out the
    first ``SETTLE`` steps of each, where a head may still be finding its place; and the
    share of read locations that were written (up to the delimiter step: a model that reads
    before it writes stores each item one step later). With ``outputs`` and ``targets`` it counts
    the wrong bits (output above 0.5 against target) in the scored steps (``output_mask``,
    else L+1..2L).

    ``learned`` is True when both foci have mean peak >= 0.8 and move steadily on >= 90%
    of steps, >= 90% of reads visit written locations, and (when outputs are given) at
    most 1% of the scored output bits are wrong.
    """
    L = int(length)
    ww, rw = _head0(np.asarray(write_weightings)), _head0(np.asarray(read_weightings))
    if L < 1 or ww.shape[0] < 2 * L + 1:
        raise ValueError(f"a copy trace of length {L} needs {2 * L + 1} steps, this one has {ww.shape[0]}")
    skip = SETTLE if L > 2 * SETTLE else 0
    stored = ww[: L + 1].astype(np.float64)  # the input steps and the delimiter step's write
    where = stored.argmax(axis=1)
    write = _moves(stored[skip:L].max(axis=1), where[skip:L], ww.shape[1])
    read = _walk(rw[L + 1 + skip : 2 * L + 1].astype(np.float64))
    written = set(where.tolist())
    visited = sum(loc in written for loc in read["locations"]) / max(1, len(read["locations"]))

    def ok(d):
        return d["mean_peak"] >= SHARP and d["steady_fraction"] >= CONSISTENT

    out = {"length": L, "settle_steps": skip, "write": write, "read": read, "reads_written_fraction": visited}
    learned = ok(write) and ok(read) and visited >= CONSISTENT
    if outputs is not None and targets is not None:
        y, z = np.asarray(outputs, np.float64), np.asarray(targets, np.float64)
        scored = np.zeros(y.shape[0], bool)
        if output_mask is not None:
            scored[:] = np.asarray(output_mask, bool)
        else:
            scored[L + 1 : 2 * L + 1] = True
        wrong = int(((y[scored] > 0.5) != (z[scored] > 0.5)).sum())
        bits = int(scored.sum()) * y.shape[1]
        out.update(wrong_bits=wrong, scored_bits=bits)
        learned = learned and wrong <= MAX_WRONG * bits
    out["learned"] = bool(learned)
    return out


def copy_length(inputs: np.ndarray, metadata: dict) -> int:
    """The copy length: from metadata, else the first step on the delimiter channel."""
    if "sequence_length" in metadata:
        return int(metadata["sequence_length"])
    hits = np.flatnonzero(np.asarray(inputs)[:, -1] > 0.5)
    if not hits.size:
        raise ValueError("no delimiter in the last input channel and no sequence_length metadata")
    return int(hits[0])


COPY_DATASETS = ("inputs", "outputs", "targets", "output_mask", "write_weightings", "read_weightings")  # read below


def copy_diagnostics_from_file(f, name: str, whole: dict | None = None) -> dict:
    """copy_diagnostics for a trace in an open TraceFile, outputs included (targets rebuilt from
    the inputs when not recorded); a problem becomes {'error': ...}. ``whole`` holds datasets of
    the trace already read whole, which are not read again (of COPY_DATASETS, the ones read here)."""
    whole = whole or {}

    def read(key, rows=slice(None)):
        return whole[key][rows] if key in whole else f.read(name, key, rows)

    try:
        info = f.info(name)
        inputs = read("inputs")
        L = copy_length(inputs, info.metadata)
        rows = slice(0, 2 * L + 1)  # only the steps the measure looks at
        outputs = read("outputs", rows)
        if "targets" in info.datasets:
            targets = read("targets", rows)
        else:  # a copy's targets are its inputs, after the delimiter
            targets = np.zeros_like(outputs)
            targets[L + 1 :] = inputs[:L, : outputs.shape[1]]
        mask = read("output_mask", rows) if "output_mask" in info.datasets else None
        return copy_diagnostics(read("write_weightings", rows), read("read_weightings", rows), L, outputs, targets,
                                mask)
    except (ValueError, KeyError, IndexError) as e:
        return {"error": str(e)}


# --------------------------------------------------------------------- how each head addressed

FOCUSED = 0.5  # a weighting whose peak is at least this puts its head at that location; below it, diffuse
GATE_OPEN = 0.25  # a gate at least this open lets the content weighting move a head
RANGES_LISTED = 1000  # step ranges listed per kind of step and head; the counts cover every step
ADDRESSING_STAGES = ("content_weightings", "gates", "shifts")  # what the summary needs, with the weightings


def addressing_steps(weightings, content, gates, shifts, before=None) -> tuple[np.ndarray, np.ndarray]:
    """How one head found each step's location, from its final weightings (T, N), content weightings
    (T, N), gates (T,) and shift distributions (T, S) over the offsets -R..R; ``before`` is the final
    weighting of the step before the first (N,), or None: then the first step is not classified, as
    its previous weighting is unknown (step 0 of a trace never is).

    Returns (kinds, moves) over the steps classified: kinds holds one of "content", "shift", "stay",
    "diffuse", "non-finite" per step, moves the step's move of the peak location (circular, in
    [-N/2, N/2)). With p the peak location of the final weighting:

    - non-finite: a value the rules read (of the step, or the previous weighting) is NaN or infinite;
    - diffuse: otherwise, the weighting peaks below FOCUSED (0.5): the head is at no location in particular;
    - content (a content lookup): the head is focused at p; the gate is at least GATE_OPEN (0.25);
      the content weighting, shifted by the step's shift distribution, peaks at p too; and a shift
      alone would not have brought it there: the previous weighting was diffuse, or shifting it by
      the step's shift distribution peaks elsewhere than p;
    - stay: otherwise, p is the previous weighting's peak location;
    - shift: otherwise, the head moved its peak by ``moves`` locations.
    """
    from .trace import shift

    w, c = np.asarray(weightings, np.float64), np.asarray(content, np.float64)
    g, s = np.asarray(gates, np.float64), np.asarray(shifts, np.float64)
    if before is None:
        prev, w, c, g, s = w[:-1], w[1:], c[1:], g[1:], s[1:]
    else:
        prev = np.concatenate([np.asarray(before, np.float64)[None], w[:-1]])
    N = w.shape[-1]
    finite = np.isfinite(w).all(axis=-1) & np.isfinite(prev).all(axis=-1) & np.isfinite(c).all(axis=-1)
    finite &= np.isfinite(g) & np.isfinite(s).all(axis=-1)
    with np.errstate(invalid="ignore"):  # steps with NaN are classified apart
        p, focused = w.argmax(axis=-1), w.max(axis=-1) >= FOCUSED
        by_shift = shift(prev, s).argmax(axis=-1)  # where a shift alone takes the head
        by_content = shift(c, s).argmax(axis=-1)  # where the content weighting, shifted, points
        content = focused & (g >= GATE_OPEN) & (by_content == p) & ((prev.max(axis=-1) < FOCUSED) | (by_shift != p))
    moves = (p - prev.argmax(axis=-1) + N // 2) % N - N // 2
    kinds = np.where(~focused, "diffuse", np.where(content, "content", np.where(moves == 0, "stay", "shift")))
    return np.where(finite, kinds, "non-finite"), moves


class _Steps:
    """The steps of one kind, as a count and ranges [first, last] (the first RANGES_LISTED of them)."""

    def __init__(self):
        self.count, self.output_steps, self.ranges, self.truncated = 0, 0, [], False

    def add(self, steps: np.ndarray, output_steps: int) -> None:
        """Add steps (increasing, after those added so far), of which ``output_steps`` are output steps."""
        self.count += len(steps)
        self.output_steps += output_steps
        breaks = np.flatnonzero(np.diff(steps) != 1)
        for first, last in zip(steps[np.r_[0, breaks + 1]].tolist(), steps[np.r_[breaks, len(steps) - 1]].tolist(),
                               strict=True):
            if self.ranges and self.ranges[-1][1] == first - 1:
                self.ranges[-1][1] = last
            elif len(self.ranges) < RANGES_LISTED:
                self.ranges.append([first, last])
            else:
                self.truncated = True

    def as_dict(self, masked: bool) -> dict:
        out = {"count": self.count, "steps": self.ranges}
        if masked:
            out["output_steps"] = self.output_steps
        if self.truncated:
            out["steps_truncated"] = True
        return out


class Addressing:
    """How each head addressed (``addressing_steps``) over a trace given block by block of steps: every
    head of each kind whose weightings, content weightings, gates and shifts are recorded.

    >>> a = Addressing(trace.arrays)
    >>> a.add(0, trace.arrays)
    >>> a.summary()
    """

    def __init__(self, datasets):
        self.kinds = [kind for kind in ("write", "read")
                      if all(f"{kind}_{s}" in datasets for s in ("weightings",) + ADDRESSING_STAGES)]
        self.masked = "output_mask" in datasets
        self.datasets = [f"{kind}_{s}" for kind in self.kinds for s in ("weightings",) + ADDRESSING_STAGES]
        self.datasets += ["output_mask"] if self.masked and self.kinds else []
        self._before: dict[str, np.ndarray] = {}  # kind -> the final weightings at the step before the next block
        self._heads: dict[tuple[str, int], dict[str, _Steps]] = {}
        self._steps = self._output_steps = 0  # steps classified (all but step 0), and of them output steps

    def add(self, start: int, blocks) -> None:
        """Steps start, start + 1, ... of every dataset in ``datasets``; blocks in order, without gaps."""
        from .trace import with_heads

        if not self.kinds:
            return
        first = start if start else 1  # step 0 is not classified: the weighting before it is not recorded
        scored = (np.asarray(blocks["output_mask"]) != 0)[first - start :] if self.masked else None
        for kind in self.kinds:
            w, c, g, s = (with_heads(name, blocks[f"{kind}_{name}"]) for name in ("weightings",) + ADDRESSING_STAGES)
            for h in range(w.shape[1]):
                before = self._before[kind][h] if kind in self._before else None
                kinds, moves = addressing_steps(w[:, h], c[:, h], g[:, h], s[:, h], before)
                head = self._heads.setdefault((kind, h), {})
                keys = np.where(kinds == "shift", np.char.mod("%+d", moves), kinds)  # a shift by its move
                for key in np.unique(keys).tolist():
                    at = np.flatnonzero(keys == key)
                    head.setdefault(key, _Steps()).add(first + at, int(scored[at].sum()) if self.masked else 0)
            self._before[kind] = w[-1]
        n = len(blocks[self.datasets[0]]) - (first - start)
        self._steps += max(0, n)
        self._output_steps += int(scored.sum()) if self.masked else 0

    def summary(self) -> list[dict]:
        """Per head: the steps classified, and for each kind of step its count and step ranges [first,
        last] (and how many of them are output steps, where the trace has an output_mask)."""
        out = []
        for (kind, h), steps in self._heads.items():
            entry = {"head": f"{kind}:{h}", "steps": self._steps}
            if self.masked:
                entry["output_steps"] = self._output_steps
            none = _Steps()
            entry["content_lookup"] = steps.get("content", none).as_dict(self.masked)
            moves = sorted((k for k in steps if k[0] in "+-"), key=lambda k: (-steps[k].count, int(k)))
            entry["shifts"] = {k: steps[k].as_dict(self.masked) for k in moves}
            entry["stay"] = steps.get("stay", none).as_dict(self.masked)
            entry["diffuse"] = steps.get("diffuse", none).as_dict(self.masked)
            if "non-finite" in steps:
                entry["non_finite"] = steps["non-finite"].as_dict(self.masked)
            out.append(entry)
        return out


def addressing_summary(trace) -> list[dict]:
    """How each head of a Trace addressed, step by step (``addressing_steps``, ``Addressing.summary``);
    [] when the trace holds no addressing stages."""
    a = Addressing(trace.arrays)
    a.add(0, trace.arrays)
    return a.summary()


RANGES_SHOWN = 6  # step ranges a line of text shows per kind of step


def describe_addressing(summary: list[dict]) -> list[str]:
    """One line per head of an ``addressing_summary``: "read head: content lookup at none; shifts by -1
    at 19 steps (22-40), 19 of the 20 output steps; stays at 21 steps (1-21), 1 of the 20 output steps"."""
    kinds = [entry["head"].split(":")[0] for entry in summary]
    lines = []
    for entry, kind in zip(summary, kinds, strict=True):
        name = f"{kind} head" if kinds.count(kind) == 1 else f"{kind} head {entry['head'].split(':')[1]}"
        total = entry.get("output_steps")
        parts = [_steps_text("content lookup", entry["content_lookup"], total)]
        parts += [_steps_text(f"shifts by {move}", steps, total) for move, steps in entry["shifts"].items()]
        others = (("stays", "stay"), ("diffuse", "diffuse"), ("not finite", "non_finite"))
        parts += [_steps_text(what, entry[key], total) for what, key in others if entry.get(key, {}).get("count")]
        lines.append(f"{name}: " + "; ".join(parts))
    return lines


def _steps_text(what: str, steps: dict, output_steps: int | None) -> str:
    if not steps["count"]:
        return f"{what} at none"
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in steps["steps"][:RANGES_SHOWN])
    more = ", ..." if len(steps["steps"]) > RANGES_SHOWN or steps.get("steps_truncated") else ""
    outputs = f", {steps['output_steps']} of the {output_steps} output steps" if steps.get("output_steps") else ""
    n = steps["count"]
    return f"{what} at {n} step{'s' if n != 1 else ''} ({shown}{more}){outputs}"
