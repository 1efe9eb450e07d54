"""Measures of what a trace shows. numpy only, so the trainer can use them too."""

from __future__ import annotations

import numbers

import numpy as np

SHARP = 0.8  # a weighting whose peak is at least this is "focused"
CONSISTENT = 0.9  # the share of items that must have locations of their own, and be read back in write order
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


STRONG = 0.5  # a write of at least this weight is a strong write: the head's focus (at most two locations reach it)


def strong_threshold(peak: float) -> float:
    """The weight a write head's write must reach to count as strong: STRONG (0.5), or, for a head whose
    weightings never reach it (an untrained, diffuse head), half the head's own peak, so that its
    strongest writes still count."""
    return STRONG if peak >= STRONG else peak / 2


def first_strong_writes(write_weightings) -> np.ndarray:
    """For each location, the first step at which a write head wrote it strongly (``strong_threshold``
    of that head's peak over these steps), or -1 if none did. ``write_weightings``: (T, N) or (T, heads,
    N); values that are not finite count as 0."""
    w = np.asarray(write_weightings, np.float64)
    w = np.where(np.isfinite(w), w, 0.0)
    heads = w[:, None, :] if w.ndim == 2 else w
    T, N = heads.shape[0], heads.shape[-1]
    first = np.full(N, T)
    for h in range(heads.shape[1]):
        peak = float(heads[:, h].max()) if T else 0.0
        if peak > 0:
            strong = heads[:, h] >= strong_threshold(peak)
            first = np.minimum(first, np.where(strong.any(axis=0), strong.argmax(axis=0), T))
    return np.where(first < T, first, -1)


def written_order(first: np.ndarray, locations=None) -> tuple[np.ndarray, int]:
    """Locations (``locations``, default 0..N-1, in their order) sorted by the step of their first strong
    write (``first_strong_writes``; ties by that order), those never written strongly after them in
    their order. Returns (the locations in that order, how many of them were written strongly)."""
    first = np.asarray(first)
    locations = np.arange(first.size) if locations is None else np.asarray(locations)
    steps = first[locations]
    written = steps >= 0
    order = np.concatenate([locations[written][np.argsort(steps[written], kind="stable")], locations[~written]])
    return order, int(written.sum())


def copy_diagnostics(write_weightings, read_weightings, length: int, outputs=None, targets=None,
                     output_mask=None) -> dict:
    """Does a copy trace show the copy algorithm, and does it copy?

    The algorithm, whatever the model and wherever its memory puts things: each item is written to a
    location of its own while the sequence comes in, and read back from those locations in the order
    they were written while the outputs are due. Whether the locations are neighbours (an NTM's walk)
    or scattered over the memory (a DNC's allocation) does not matter.

    For a copy trace of ``length`` items L (inputs at steps 0..L-1, the delimiter at L, outputs at
    L+1..2L), on the first head of each kind: item k is stored where the write focus (the location of
    the largest write weight) is at step k, or at step k + 1 for a model that reads before it writes
    (whichever of the two the reads follow more often: ``write_offset``); output step L+1+k should
    read there. The first ``SETTLE`` steps of each phase are left out, where a head may still be
    finding its place. Measures: the write and read foci's mean and minimum peaks; ``distinct_fraction``,
    the share of the items stored at a location no other item was stored at; ``in_order_fraction``,
    the share of output steps that read the location of their item; and, with ``outputs`` and
    ``targets``, the wrong bits (output above 0.5 against target) in the scored steps (``output_mask``,
    else L+1..2L). Still reported, but no longer judged: how steadily each focus moves by one location
    (``steady_fraction``, ``direction``) and the share of reads at written locations.

    ``learned`` is True when both foci have mean peak >= 0.8, at least 90% of the items have locations
    of their own and at least 90% of the output steps read them back in write order, and (when outputs
    are given) at most 1% of the scored output bits are wrong. ``problems`` says in words what failed.
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
    reads = np.asarray(read["locations"])
    matches = [int(np.sum(reads == where[d + skip : d + L])) for d in (0, 1)]
    offset = int(matches[1] > matches[0])
    items = where[offset + skip : offset + L]
    distinct = int(np.sum(np.unique(items, return_counts=True)[1] == 1))
    n = max(1, L - skip)

    out = {"length": L, "settle_steps": skip, "write": write, "read": read, "reads_written_fraction": visited,
           "write_offset": offset, "distinct_fraction": distinct / n, "in_order_fraction": matches[offset] / n}
    problems = []
    for kind, d in (("write", write), ("read", read)):
        if d["mean_peak"] < SHARP:
            problems.append(f"the {kind} focus is not sharp (mean peak {d['mean_peak']:.2f}, below {SHARP})")
    if distinct / n < CONSISTENT:
        problems.append(f"items share locations: {distinct} of {n} items were written to a location of their own")
    if matches[offset] / n < CONSISTENT:
        problems.append(f"not read back in write order: {matches[offset]} of {n} output steps read the location "
                        "their item was written to")
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
        if wrong > MAX_WRONG * bits:
            problems.append(f"{wrong} of {bits} scored output bits are wrong")
    out["problems"] = problems
    out["learned"] = not problems
    return out


def describe_copy(d: dict) -> str:
    """One line of a ``copy_diagnostics`` result: the verdict, what failed, then the measures."""
    if "error" in d:
        return f"copy diagnostics: {d['error']}"
    w, r = d["write"], d["read"]
    verdict = "learned" if d["learned"] else "NOT learned (" + "; ".join(d.get("problems", ())) + ")"
    said = "wrong_bits" not in d or d["wrong_bits"] > MAX_WRONG * d["scored_bits"]  # (then among the problems)
    bits = "" if said else f"{d['wrong_bits']} of {d['scored_bits']} scored output bits wrong; "
    return (f"copy: {verdict}; {bits}write peak {w['mean_peak']:.2f}, items at locations of their own "
            f"{d['distinct_fraction']:.0%}; read peak {r['mean_peak']:.2f}, read back in write order "
            f"{d['in_order_fraction']:.0%}; foci moving by one location a step: write {w['steady_fraction']:.0%}, "
            f"read {r['steady_fraction']:.0%}")


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


# --------------------------------------------------------------------- where a head is: each step's focus


def focus(weightings) -> tuple[np.ndarray, np.ndarray]:
    """Each step's focus over all heads: the location of the largest weight of any head, and that weight.
    ``weightings``: (T, N) or (T, heads, N); values that are not finite count as 0. Returns (locations
    (T,) int, peaks (T,) float)."""
    w = np.asarray(weightings, np.float64)
    w = np.where(np.isfinite(w), w, 0.0)
    flat = w.reshape(w.shape[0], -1)
    at = flat.argmax(axis=1) if flat.size else np.zeros(w.shape[0], int)
    return at % w.shape[-1], flat.max(axis=1, initial=0.0)


FOCUS_WINDOW = 2  # a focus's location is the weight-averaged location within this many locations of its peak


def strongest_head(weightings) -> np.ndarray:
    """(T, N): at each step, the weighting of the head whose peak weight is largest (a weight that is not
    a number counts as 0); (T, N) weightings are one head's."""
    w = np.asarray(weightings, np.float64)
    w = np.where(np.isfinite(w), w, 0.0)
    heads = w[:, None, :] if w.ndim == 2 else w
    T = heads.shape[0]
    return heads[np.arange(T), heads.max(axis=2).argmax(axis=1) if T else np.zeros(0, int)]


def focus_centroids(weightings) -> tuple[np.ndarray, np.ndarray]:
    """Each step's focus as a real location: of the head whose peak weight is largest at that step, the
    weight-averaged location of the locations within FOCUS_WINDOW (2) of its peak, circularly, in [0, N)
    (a focus split evenly between locations 4 and 5 is at 4.5). Returns (locations (T,) float, peaks (T,))."""
    chosen = strongest_head(weightings)
    T, N = chosen.shape
    peak_at = chosen.argmax(axis=1)
    offsets = np.arange(-FOCUS_WINDOW, FOCUS_WINDOW + 1)
    near = chosen[np.arange(T)[:, None], (peak_at[:, None] + offsets) % N]  # (T, 2W + 1)
    total = near.sum(axis=1)
    shift = np.divide(near @ offsets, total, out=np.zeros(T), where=total > 0)
    return (peak_at + shift) % N, chosen.max(axis=1, initial=0.0)


def unwrap(locations, N: int) -> np.ndarray:
    """Locations on a circular memory of N as numbers on a line: the circle is cut in the middle of the
    largest gap between them, so that locations that straddle N-1 and 0 stay together (7, 126, 1 ->
    135, 126, 129). The result lies in [start, start + N), start the location after the cut."""
    x = np.asarray(locations, np.float64) % N
    if x.size < 2:
        return x
    order = np.sort(x)
    gaps = np.diff(np.append(order, order[0] + N))
    start = order[(int(np.argmax(gaps)) + 1) % order.size]
    return start + (x - start) % N


# --------------------------------------------------------------------- dynamic N-grams: a location per context

LOCATION_SHARE = 0.5  # a context has a location when its steps read there at least this often


def contexts(inputs, context_bits: int = 5) -> np.ndarray:
    """The context of each step of an N-gram trace: the ``context_bits`` bits ending at the step's bit
    (bit t, from input channel 0, above 0.5, the lowest bit: bits t-4..t read as a binary number,
    oldest first), or -1 where fewer bits have been seen (t < context_bits - 1)."""
    bits = (np.asarray(inputs)[:, 0] > 0.5).astype(np.int64)
    T = bits.size
    out = np.full(T, -1, np.int64)
    if T >= context_bits:
        value = np.zeros(T - context_bits + 1, np.int64)
        for j in range(context_bits):  # bit t - j has weight 2^j
            value += bits[context_bits - 1 - j : T - j] << j
        out[context_bits - 1 :] = value
    return out


def context_locations_of(context: np.ndarray, read_at: np.ndarray, read_peak: np.ndarray,
                         write_at: np.ndarray, context_bits: int = 5) -> dict:
    """``context_locations`` from each step's context (``contexts``), the read focus's location and weight
    and the write focus's location (``focus``)."""
    context, read_at, write_at = (np.asarray(a) for a in (context, read_at, write_at))
    T = context.size
    read = np.where(np.asarray(read_peak) >= FOCUSED, read_at, -1)  # a diffuse read is at no location
    entries = []
    for c in np.unique(context[context >= 0]).tolist():
        steps = np.flatnonzero(context == c)
        where, counts = np.unique(read[steps], return_counts=True)
        counts = np.where(where >= 0, counts, 0)
        k = int(np.argmax(counts))  # the most read location (the lowest of a tie)
        location, reads = (int(where[k]), int(counts[k])) if counts[k] else (None, 0)
        after = steps[steps + 1 < T]
        written = int(np.sum(write_at[after + 1] == location)) if location is not None else 0
        entries.append({"context": format(c, f"0{context_bits}b"), "steps": int(steps.size), "location": location,
                        "reads": reads, "share": reads / steps.size, "written_after": written,
                        "write_steps": int(after.size), "first_step": int(steps[0])})
    placed = [e for e in entries if e["location"] is not None and e["share"] >= LOCATION_SHARE]
    users: dict[int, int] = {}
    for e in placed:
        users[e["location"]] = users.get(e["location"], 0) + 1
    for e in entries:
        e["own"] = e in placed and users[e["location"]] == 1
    shared = [e for e in placed if not e["own"]]
    return {"context_bits": context_bits, "contexts_seen": len(entries), "contexts": entries,
            "own_location": sum(e["own"] for e in entries), "sharing": len(shared),
            "shared_locations": len({e["location"] for e in shared}), "no_location": len(entries) - len(placed),
            "steps": int(np.count_nonzero(context >= 0))}


def context_locations(inputs, read_weightings, write_weightings, context_bits: int = 5) -> dict:
    """Which memory location each context of an N-gram trace uses (the NTM paper's Figure 15: each time a
    context recurs, the read head visits a location and the write head writes there on the next step).

    For each ``context_bits``-bit context seen (``contexts``; steps t >= context_bits - 1), over the steps
    where it is current: the location the read heads read most often (``focus``: the largest weight of
    any read head, at least FOCUSED (0.5); a diffuser read is at no location), how many of those steps
    read it (``reads``, ``share``), and how many of the steps after them the write heads' focus is there
    (``written_after`` of ``write_steps``). A context *has* a location when its steps read it at least
    LOCATION_SHARE (half) of the time; the location is its *own* when no other context has it.

    Returns {"contexts": [one entry per context seen, by context], "contexts_seen", "own_location",
    "sharing" (contexts with a location another context has too), "shared_locations" (how many locations
    those are), "no_location", "steps", "context_bits", "reads" (``context_reads``)}; ``describe_contexts``
    says it in words."""
    ctx = contexts(inputs, context_bits)
    read_at, read_peak = focus(read_weightings)
    write_at, _ = focus(write_weightings)
    return dict(context_locations_of(ctx, read_at, read_peak, write_at, context_bits),
                reads=context_reads([(ctx, write_at, read_weightings)], max_lag=context_bits))


def context_reads(blocks, max_lag: int = 5) -> dict:
    """How much the read heads look up earlier occurrences of the current context: a model that counts by
    content (rather than one location per context) reads, at each step, the locations written a few steps
    after the same context was current before.

    ``blocks``: (contexts (steps,), write focus locations (steps,), read weightings (steps, N) or (steps,
    heads, N)) of consecutive steps, in order (``contexts``, ``focus``). A location belongs, at lag d, to the
    context current d steps before the step whose write focus last wrote it; at each step t with a context
    (>= 0) that owns a location written before t, the share of the read heads' mean weighting on the
    locations it owns, and by chance the share of the written locations they are. A step's read sees the
    writes of the steps before it (the bundled NTM reads first; for a model that writes first, the lag
    found is one more). Returns {"lag", "share", "chance", "steps"} for the lag 0..``max_lag`` with the
    largest mean share (means over those steps; of the lags whose steps number at least half the most any
    lag has; "steps" 0 when no step qualifies) and "written", how many locations the write focus visited."""
    lags = np.arange(max_lag + 1)
    owner = None  # (lags, N): the context owning each location at each lag, -1 for unwritten
    share, chance, steps = np.zeros(lags.size), np.zeros(lags.size), np.zeros(lags.size, int)
    recent = np.full(max_lag, -1, np.int64)  # the contexts of the max_lag steps before the block
    visited: set[int] = set()
    for context, write_at, block in blocks:
        w = np.asarray(block, np.float64)
        w = np.where(np.isfinite(w), w, 0.0)
        w = w.mean(axis=1) if w.ndim == 3 else w
        if owner is None:
            owner = np.full((lags.size, w.shape[1]), -1, np.int64)
        history = np.concatenate([recent, np.asarray(context, np.int64)])  # history[i + max_lag] is step i's
        for i, at in enumerate(np.asarray(write_at)):
            c = history[i + max_lag]
            if c >= 0:
                mine = owner == c  # (lags, N)
                n_mine, n_written = mine.sum(axis=1), (owner >= 0).sum(axis=1)
                ok = n_mine > 0
                share += np.where(ok, mine @ w[i], 0.0)
                chance += np.where(ok, n_mine / np.maximum(n_written, 1), 0.0)
                steps += ok
            owner[:, at] = history[i + max_lag - lags]
        recent = history[history.size - max_lag:] if max_lag else recent
        visited.update(np.unique(write_at).tolist())
    if owner is None or not steps.any():
        return {"lag": None, "share": 0.0, "chance": 0.0, "steps": 0, "written": len(visited)}
    mean = np.where(steps >= steps.max() / 2, share / np.maximum(steps, 1), -1.0)
    d = int(np.argmax(mean))
    return {"lag": d, "share": float(mean[d]), "chance": float(chance[d] / steps[d]), "steps": int(steps[d]),
            "written": len(visited)}


def sequence_costs(outputs, targets, mask, baseline=None) -> dict:
    """Cross-entropy in bits of a trace's predictions (``outputs``, probabilities) of its ``targets`` over the
    steps of ``mask``, summed: {"bits", "scored" (bits predicted), "optimal_bits" (of ``baseline``, or None)}."""
    m = np.asarray(mask, bool)
    y = np.asarray(targets, np.float64)[m]

    def bits(p):
        p = np.clip(np.asarray(p, np.float64)[m], 1e-12, 1 - 1e-12)
        return float(-(y * np.log2(p) + (1 - y) * np.log2(1 - p)).sum())

    return {"bits": bits(outputs), "scored": int(y.size), "optimal_bits": None if baseline is None else bits(baseline)}


def describe_contexts(d: dict) -> list[str]:
    """A ``context_locations`` result in words: a summary line, then one line per context."""
    if "error" in d:
        return [f"contexts: {d['error']}"]
    n = d["contexts_seen"]
    parts = [f"{d['own_location']} with a location of their own"]
    if d["sharing"]:
        parts.append(f"{d['sharing']} sharing {d['shared_locations']} location{'s' * (d['shared_locations'] != 1)}")
    if d["no_location"]:
        parts.append(f"{d['no_location']} without one (no location read at half of their steps)")
    lines = [f"contexts: {n} of the {2 ** d['context_bits']} {d['context_bits']}-bit contexts seen; "
             + ", ".join(parts)]
    cost = d.get("cost")
    if cost and "error" in cost:
        lines.append(f"cost of this sequence: {cost['error']}")
    elif cost:
        optimal = "" if cost["optimal_bits"] is None else f", the optimal predictor {cost['optimal_bits']:.2f}"
        lines.append(f"cost of this sequence: the model {cost['bits']:.2f} bits{optimal} "
                     f"(cross-entropy of its {cost['scored']} scored bits)")
    r = d.get("reads")
    if r and r["written"] < n / 2:  # fewer locations than half the contexts: an accumulator, not a history
        lines.append(f"reads by context: the write heads' focus visited {r['written']} location"
                     f"{'s' * (r['written'] != 1)}, against {n} contexts seen: no history to look up")
    elif r and r["steps"]:
        lag = f"{r['lag']} step{'s' * (r['lag'] != 1)}"
        lines.append(f"reads by context: at the {r['steps']} steps whose context occurred before, the read heads "
                     f"put {r['share']:.0%} of their weight on the locations written {lag} after an earlier "
                     f"occurrence of the current context ({r['chance']:.0%} if spread over every location written)")
    for e in d["contexts"]:
        if e["location"] is None:
            lines.append(f"  context {e['context']}: {e['steps']} step{'s' * (e['steps'] != 1)}, never read with a "
                         "focus")
            continue
        reads = (f"read at {e['reads']} of its {e['steps']} steps ({e['share']:.0%}), written the step after at "
                 f"{e['written_after']} of {e['write_steps']}")
        if e["share"] < LOCATION_SHARE:
            lines.append(f"  context {e['context']}: no one location; the most read, {e['location']}, {reads}")
        else:
            lines.append(f"  context {e['context']}: location {e['location']} ({'own' if e['own'] else 'shared'}), "
                         + reads)
    return lines


# --------------------------------------------------------------------- priority sort: locations from priorities


def sort_items(inputs, metadata: dict) -> tuple[int, int]:
    """(items, priority channel) of a priority-sort trace: the metadata's ``items`` and ``priority_channel``;
    without them, the steps before the first step on the ``delimiter_channel`` (default: the last input
    channel) and the channel before the delimiter's. ValueError when neither says."""
    x = np.asarray(inputs)
    width = x.shape[1]
    delimiter = metadata.get("delimiter_channel", width - 1)
    channel = metadata.get("priority_channel", delimiter - 1 if isinstance(delimiter, int) else width - 2)
    if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < width:
        raise ValueError(f"priority_channel {channel!r} is not an input channel (the inputs have {width})")
    items = metadata.get("items")
    if items is None:
        if not isinstance(delimiter, int) or isinstance(delimiter, bool) or not 0 <= delimiter < width:
            raise ValueError(f"delimiter_channel {delimiter!r} is not an input channel (the inputs have {width})")
        hits = np.flatnonzero(x[:, delimiter] > 0.5)
        if not hits.size:
            raise ValueError(f"no items metadata and no delimiter on input channel {delimiter}: the items' steps "
                             "are unknown")
        items = int(hits[0])
    if not isinstance(items, int) or isinstance(items, bool) or not 2 <= items <= x.shape[0]:
        raise ValueError(f"items {items!r}: a fit needs 2 or more items, within the trace's {x.shape[0]} steps")
    return items, channel


ON_LINE = 2.0  # locations: an item written this close to the fitted line (circularly) is on it
MAX_PAIRS = 200_000  # Theil-Sen's pairs: every pair of up to 632 items; of more, this many drawn (seed 0)


def priority_fit(priorities, locations, N: int) -> dict:
    """The line location = slope x priority + intercept through the items' write locations on a circular
    memory of N (``unwrap``ped first), fitted by Theil and Sen: the slope is the median of the slopes
    between every two items of different priorities, the intercept the median of location - slope x
    priority. A model may park an item or two away from the band it writes the rest on; they would tilt
    a least-squares line towards them, and barely move this one (the bundled sample's 16: least
    squares, 25.5 locations per unit priority, or 19.9 through the 15 on its band alone; this line,
    20.3). Of more than 632 items, MAX_PAIRS pairs drawn at random (the same each time) stand for all
    of them. Returns {"slope" (locations per unit priority), "intercept" (the location at priority 0, in
    [0, N)), "r_squared" (of this line: 1 - the sum of squared residuals over the total sum of squares
    about the mean, below 0 for a line further from the locations than their mean; None when every
    location is the same), "on_line" (how many items lie within ON_LINE locations of it round the
    circle), "locations" (unwrapped), "fitted" (the line's location for each item, unwrapped)}."""
    p = np.asarray(priorities, np.float64)
    y = unwrap(locations, N)
    if p.size * (p.size - 1) // 2 <= MAX_PAIRS:
        i, j = np.triu_indices(p.size, 1)
    else:
        i, j = np.random.default_rng(0).integers(0, p.size, (2, MAX_PAIRS))
    apart = p[j] != p[i]
    slope = float(np.median((y[j] - y[i])[apart] / (p[j] - p[i])[apart])) if apart.any() else 0.0
    intercept = float(np.median(y - slope * p)) if p.size else 0.0
    fitted = slope * p + intercept
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum((y - fitted) ** 2)) / total if total > 1e-12 else None
    off = (y - fitted + N / 2) % N - N / 2  # round the circle: a line may run past the memory's end
    return {"slope": slope, "intercept": intercept % N, "r_squared": r2, "on_line": int(np.sum(np.abs(off) <= ON_LINE)),
            "locations": y.tolist(), "fitted": fitted.tolist()}


def priority_locations(inputs, write_weightings, metadata=None) -> dict:
    """Where a priority-sort trace wrote its items, against their priorities (the NTM paper's Figure 17's
    "hypothesised locations").

    The items are the first ``items`` steps, each with its priority on input channel ``priority_channel``
    (``sort_items``). An item's write location is the write focus at its step: of the write head with the
    largest weight at that step, the weight-averaged location within 2 of its peak (``focus_centroids``; the
    other heads do not count). ``fit`` is the line of those locations against the priorities
    (``priority_fit``, fitted by Theil and Sen: slope in locations per unit priority, intercept, R squared,
    items on it) through the ``selected`` items of highest priority, the ones written out (metadata
    ``selected``; default: all; every item when fewer than 2 are written out, as a line needs two): where
    the others go does not matter to the task, and a model may leave them anywhere. ``fitted``: the items
    the line goes through (their steps, in input order); ``fit_all``: the line through every item.
    ``hypothesised``: ``fit``'s location for each item, in [0, N). Only the items' steps of
    ``write_weightings`` are read (a weight that is not a number counts as 0); a priority that is not a
    number, or a ``selected`` that is not a number of items, is a ValueError."""
    meta = dict(metadata or {})
    x = np.asarray(inputs, np.float64)
    items, channel = sort_items(x, meta)
    selected = meta.get("selected", items)
    if isinstance(selected, bool) or not isinstance(selected, numbers.Integral) or not 1 <= selected <= items:
        raise ValueError(f"selected {selected!r} is not a number of items written out, from 1 to {items}")
    selected = int(selected)
    ww = np.asarray(write_weightings[:items])
    N = ww.shape[-1]
    write_loc, write_peak = focus_centroids(ww)
    priorities = x[:items, channel]
    if not np.isfinite(priorities).all():
        step = int(np.argmin(np.isfinite(priorities)))
        raise ValueError(f"the priority of the item at step {step} is {priorities[step]}, not a number")
    top = np.sort(np.argsort(-priorities, kind="stable")[:selected if selected >= 2 else items])  # input order
    fit = priority_fit(priorities[top], write_loc[top], N)
    return {"items": items, "selected": selected, "priority_channel": channel, "locations": N,
            "priorities": priorities.tolist(), "write_locations": write_loc.tolist(),
            "write_peaks": write_peak.tolist(), "fitted": top.tolist(), "fit": fit,
            "fit_all": priority_fit(priorities, write_loc, N),
            "hypothesised": ((fit["slope"] * priorities + fit["intercept"]) % N).tolist()}


def priority_sort_analysis(inputs, write_weightings, read_weightings, output_mask=None, metadata=None) -> dict:
    """Does a priority-sort trace write where its priorities say, and read back in order? ``priority_locations``
    (the items' write locations and the line fitted through them), and ``read``:

    the output steps (with ``output_mask``: the scored steps; without, the steps after the items and the
    delimiter) and each one's read: the read at its own step (``lag`` 0), or the step before (``lag`` 1:
    the read reaches the output through the controller, whose input at a step is the read of the step
    before), whichever has more output steps reading the item of their rank (the own step on a tie;
    ``steps``: the steps read, the output steps less ``lag``; ``by_lag``: the in-rank share at each lag);
    each read's location (``focus_centroids`` of the read heads);
    ``increasing_fraction``, the share of moves from one output step to the next that go to a higher
    location (circularly, less than half the memory on); ``items_read``, the item each output step reads
    (its step; None when the read shares no weight with any item's write): the one whose write weighting
    its read weighting overlaps most (cosine of the two, each of its strongest head; of items written
    alike, the last, which wrote over the others), so that a model that writes its items a location or
    less apart is judged by where its weight lies, not by which written focus is nearest;
    ``in_priority_order_fraction``, the share of the first ``selected`` output steps k that read the item
    of the k-th highest priority; ``descending_fraction``, the share of moves from one item read to the
    next that go to an item of lower priority (a skipped item does not count against it, so a model that
    skips one is out of rank from there on but still reads down the priorities; a read of the same item
    twice is a move that does not go down)."""
    out = priority_locations(inputs, write_weightings, metadata)
    items = out["items"]
    T = np.asarray(inputs).shape[0]
    steps = (np.flatnonzero(np.asarray(output_mask) != 0) if output_mask is not None
             else np.arange(items + 1, T))
    rank = np.argsort(-np.asarray(out["priorities"]), kind="stable")  # the items, highest priority first
    written = strongest_head(np.asarray(write_weightings)[:items])
    by_lag = [_sort_reads(np.asarray(read_weightings), steps - lag, written, rank, out, lag)
              for lag in (0, 1) if not steps.size or steps[0] - lag >= 0]
    out["read"] = max(by_lag, key=lambda r: r["in_priority_order_fraction"] or 0.0)  # lag 0 on a tie
    out["read"]["by_lag"] = {str(r["lag"]): r["in_priority_order_fraction"] for r in by_lag}
    return out


def _sort_reads(read_weightings, steps, written, rank, out: dict, lag: int) -> dict:
    """``priority_sort_analysis``'s ``read`` with the output steps' reads taken ``lag`` steps before them."""
    N, reads = out["locations"], read_weightings[steps]
    read_loc, read_peak = focus_centroids(reads)
    moves = (np.diff(read_loc) + N / 2) % N - N / 2
    r = strongest_head(reads)
    norms = np.linalg.norm(r, axis=1)[:, None] * np.linalg.norm(written, axis=1)[None, :]
    overlap = (r @ written.T) / np.maximum(norms, 1e-30)
    last = written.shape[0] - 1 - overlap[:, ::-1].argmax(axis=1) if overlap.size else np.zeros(0, int)
    read_items = [int(i) if overlap[n, i] > 0 else None for n, i in enumerate(last)]
    place = np.argsort(rank)  # each item's place in the order of priority
    at = np.array([place[i] if i is not None else np.nan for i in read_items])
    pairs = np.isfinite(at[:-1]) & np.isfinite(at[1:])
    k = min(steps.size, out["selected"])
    return {"lag": lag, "steps": steps.tolist(), "locations": read_loc.tolist(), "peaks": read_peak.tolist(),
            "items_read": read_items,
            "increasing_fraction": float(np.mean(moves > 0)) if moves.size else None,
            "descending_fraction": float(np.mean(np.diff(at)[pairs] > 0)) if pairs.any() else None,
            "item_moves": int(pairs.sum()),
            "in_priority_order_fraction": sum(read_items[j] == rank[j] for j in range(k)) / k if k else None}


def describe_fit(fit: dict, N: int | None = None) -> str:
    """A priority fit in words: "slope -12.1 locations per unit priority, intercept 64.0 (the location at
    priority 0), R² 0.97, 15 of 16 items within 2 locations of it"; with the memory's N, an intercept
    that rounds to N is shown as 0.0."""
    r2 = "R² undefined (every write at one location)" if fit["r_squared"] is None else f"R² {fit['r_squared']:.2f}"
    return (f"slope {fit['slope']:.3g} locations per unit priority, intercept {intercept_text(fit, N)} "
            f"(the location at priority 0), {r2}, {fit['on_line']} of {len(fit['locations'])} items within "
            f"{ON_LINE:g} locations of it")


def intercept_text(fit: dict, N: int | None = None) -> str:
    """The fit's intercept to one decimal: one that rounds to N (just below location 0) is 0.0."""
    text = f"{fit['intercept']:.1f}"
    return "0.0" if N is not None and text == f"{N:.1f}" else text


def fitted_items(d: dict) -> str:
    """The items a priority fit went through, in words: "the 20 items", "the 16 items written out (of 20)"."""
    n, k = d["items"], len(d.get("fitted", range(d["items"])))
    return f"the {n} items" if k == n else f"the {k} items written out (of {n})"


def describe_priority_sort(d: dict) -> list[str]:
    """A ``priority_sort_analysis`` result in words: the fit, then the reads."""
    if "error" in d:
        return [f"priority sort: {d['error']}"]
    n = d["items"]
    fit = describe_fit(d["fit"], d["locations"])
    if len(d.get("fitted", range(n))) == n:
        lines = [f"priority sort: the {n} items' write locations against their priorities (channel "
                 f"{d['priority_channel']}): {fit}"]
    else:
        lines = [f"priority sort: the write locations of {fitted_items(d)} against their priorities (channel "
                 f"{d['priority_channel']}): {fit}; the line through all {n} items: "
                 + ("R² undefined" if d["fit_all"]["r_squared"] is None else f"R² {d['fit_all']['r_squared']:.2f}")
                 + f", {d['fit_all']['on_line']} of {n} within {ON_LINE:g} locations of it"]
    r = d["read"]
    reads = len(r["locations"])
    if reads:
        up = "" if r["increasing_fraction"] is None else (f"{round(r['increasing_fraction'] * (reads - 1))} of "
                                                          f"{reads - 1} moves to a higher location, ")
        moves = r.get("item_moves", 0)
        down = "" if r.get("descending_fraction") is None else (f"{round(r['descending_fraction'] * moves)} of "
                                                                f"{moves} to an item of lower priority, ")
        k = min(reads, d.get("selected", n))
        order = round(r["in_priority_order_fraction"] * k)
        own = (r.get("by_lag") or {}).get("0")
        own = "" if own is None else f" ({round(own * k)} of {k} with the read of their own step)"
        when = ("" if not r.get("lag") else " a step ahead: the read of the step before, which reaches the output "
                "through the controller" + own)
        lines.append(f"reads: {up}{down}{order} of {k} output steps read the item of their rank (highest priority "
                     f"first){when}")
    return lines


def context_locations_from_file(f, name: str, info=None) -> dict:
    """``context_locations`` of an N-gram trace in an open TraceFile (its ``context_bits`` metadata, default
    5), read block by block; a problem becomes {'error': ...}."""
    from .errors import TraceError

    info = info or f.info(name)
    k = info.metadata.get("context_bits", 5)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 16:
        return {"error": f"context_bits {k!r} is not a number of bits from 1 to 16"}
    ctx, read_at, read_peak, write_at = [], [], [], []
    tail = np.zeros((0, 1))  # the k - 1 bits before the block: its first steps' contexts

    def blocks():  # (contexts, write focus, read weightings) of each block, read once, kept in the lists
        nonlocal tail
        for _, block in f.step_blocks(name, ("inputs", "read_weightings", "write_weightings"), info=info):
            bits = np.concatenate([tail, np.asarray(block["inputs"])[:, :1]])
            ctx.append(contexts(bits, k)[tail.shape[0]:])
            tail = bits[bits.shape[0] - (k - 1):]
            at, peak = focus(block["read_weightings"])
            read_at.append(at)
            read_peak.append(peak)
            write_at.append(focus(block["write_weightings"])[0])
            yield ctx[-1], write_at[-1], block["read_weightings"]

    try:
        reads = context_reads(blocks(), max_lag=k)
    except TraceError as e:
        return {"error": str(e)}
    out = context_locations_of(np.concatenate(ctx), np.concatenate(read_at), np.concatenate(read_peak),
                               np.concatenate(write_at), k)
    out["reads"] = reads
    if {"outputs", "targets", "output_mask"} <= set(info.datasets):
        try:
            baseline = f.read(name, "baseline_outputs") if "baseline_outputs" in info.datasets else None
            out["cost"] = sequence_costs(f.read(name, "outputs"), f.read(name, "targets"), f.read(name, "output_mask"),
                                         baseline)
        except TraceError as e:
            out["cost"] = {"error": str(e)}
    return out


def priority_sort_from_file(f, name: str, info=None) -> dict:
    """``priority_sort_analysis`` of a trace in an open TraceFile: its inputs whole, and of the weightings only
    the items' steps and the output steps (with the step before them); a problem becomes {'error': ...}."""
    from .errors import TraceError

    info = info or f.info(name)
    try:
        inputs = np.asarray(f.read(name, "inputs"), np.float64)
        items, _ = sort_items(inputs, info.metadata)
        mask = np.asarray(f.read(name, "output_mask")) if "output_mask" in info.datasets else None
        steps = np.flatnonzero(mask != 0) if mask is not None else np.arange(items + 1, inputs.shape[0])
        ww = f.read(name, "write_weightings", slice(0, items))
        rw_shape = info.datasets["read_weightings"][0]
        rw = np.zeros((inputs.shape[0],) + tuple(rw_shape[1:]))
        if steps.size:
            first = max(int(steps[0]) - 1, 0)  # and the step before: a read may reach the output a step later
            rw[first : steps[-1] + 1] = f.read(name, "read_weightings", slice(first, int(steps[-1]) + 1))
        return priority_sort_analysis(inputs, ww, rw, mask, info.metadata)
    except (ValueError, TraceError) as e:
        return {"error": str(e)}
