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
