"""The paper's figures of dynamic N-grams and priority sort (--layout paper), what `inspect` says of them,
and the optimal predictor's outputs in the trace format.

The traces are synthetic, built in numpy with the structure a learned model shows (the NTM paper,
Figures 14, 15 and 17): for N-grams, one memory location per five-bit context, read while the context
is current and written the step after, with the model's predictions near the Bayesian predictor's; for
priority sort, each item written at a location linear in its priority, and read back in order of
location, highest priority first."""

import json

import h5py
import numpy as np
import pytest

import attnviz
from attnviz import Trace, TraceRecorder
from attnviz.trace import check_structure

from conftest import run


def bayes(bits: np.ndarray, k: int = 5) -> np.ndarray:
    """The optimal predictor's P(bit t + 1 = 1) at each step t: (N1 + 1/2) / (N1 + N0 + 1) over what followed
    the current context so far; 1/2 where the context is not yet known."""
    T = bits.size - 1
    out, n1, n0 = np.full(T, 0.5), np.zeros(2**k), np.zeros(2**k)
    for t in range(k - 1, T):
        c = sum(int(bits[t - j]) << j for j in range(k))
        out[t] = (n1[c] + 0.5) / (n1[c] + n0[c] + 1)
        n1[c] += bits[t + 1]
        n0[c] += 1 - bits[t + 1]
    return out


def ngram_trace(seed: int = 0, N: int = 64, k: int = 5, locations=None, baseline: bool = True,
                **meta) -> tuple[Trace, np.ndarray, np.ndarray]:
    """A learned N-gram model's trace: 5 fair coin flips, then 200 bits from a table of Beta(1/2, 1/2)
    probabilities; context c is kept at ``locations[c]`` (default: 32 distinct locations, scattered), which
    the read head reads (weight 0.98) whenever c is current and the write head writes the step after.
    Returns the trace, the locations and each step's context (-1 before the fifth bit)."""
    rng = np.random.default_rng(seed)
    table = rng.beta(0.5, 0.5, 2**k)
    bits = list(rng.integers(0, 2, k))
    for _ in range(200):
        c = sum(b << j for j, b in enumerate(reversed(bits[-k:])))
        bits.append(int(rng.random() < table[c]))
    bits = np.array(bits)
    T = bits.size - 1  # 204: bits 0..203 are given, each step predicts the next
    loc = rng.permutation(N)[: 2**k] if locations is None else np.asarray(locations)
    ctx = np.full(T, -1)
    for t in range(k - 1, T):
        ctx[t] = sum(int(bits[t - j]) << j for j in range(k))
    rw, ww = np.full((T, N), 0.02 / (N - 1)), np.full((T, N), 0.02 / (N - 1))
    for t in range(T):
        if ctx[t] >= 0:
            rw[t] = 0.02 / (N - 1)
            rw[t, loc[ctx[t]]] = 0.98
        else:
            rw[t] = 1 / N
        if t >= 1 and ctx[t - 1] >= 0:
            ww[t, loc[ctx[t - 1]]] = 0.98
        else:
            ww[t] = 1 / N
    optimal = bayes(bits, k)
    arrays = {"inputs": bits[:T, None], "targets": bits[1:, None],
              "outputs": np.clip(optimal + rng.normal(0, 0.03, T), 0.01, 0.99)[:, None],
              "output_mask": np.arange(T) >= k - 1, "write_weightings": ww, "read_weightings": rw}
    if baseline:
        arrays["baseline_outputs"] = optimal[:, None]
    arrays = {key: v.astype(np.float32) if v.dtype.kind in "fi" and key != "output_mask" else v
              for key, v in arrays.items()}
    return Trace(arrays, {"task": "ngrams", "context_bits": k, **meta}), loc, ctx


def split(N: int, x: float) -> np.ndarray:
    """A weighting at a real location x: split between the two locations around it (4.25: 0.75 at 4, 0.25 at 5)."""
    w, lo = np.zeros(N), int(np.floor(x))
    w[lo % N] += 1 - (x - lo)
    w[(lo + 1) % N] += x - lo
    return w


def priority_trace(seed: int = 0, N: int = 128, heads: int = 8, items: int = 20, selected: int = 16,
                   slope: float = -10.0, intercept: float = 50.0, read_order=None, write_at=None,
                   meta: bool = True) -> tuple[Trace, np.ndarray]:
    """A learned priority sort: 20 vectors of 8 bits with priorities from U(-1, 1) (channel 8), the
    delimiter on channel 9, the 16 of highest priority as targets. Write head 0 writes item k at location
    ``slope`` x priority + ``intercept`` (mod N; 0.9 of its weight, split between the two locations around
    it); the other heads write weakly (0.3) a few locations away; after the delimiter read head 0 reads
    the items' locations highest priority first (``read_order``: another order of the ranks). Returns the
    trace and the items' write locations (``write_at`` overrides them)."""
    rng = np.random.default_rng(seed)
    vec = rng.integers(0, 2, (items, 8)).astype(np.float32)
    pr = rng.uniform(-1, 1, items)
    T = items + 1 + selected
    x = np.zeros((T, 10), np.float32)
    x[:items, :8], x[:items, 8], x[items, 9] = vec, pr, 1
    order = np.argsort(-pr)[:selected]
    if read_order is not None:
        order = order[np.asarray(read_order)]
    y = np.zeros((T, 8), np.float32)
    y[items + 1 :] = vec[np.argsort(-pr)[:selected]]
    loc = (slope * pr + intercept) % N if write_at is None else np.asarray(write_at, float)
    ww, rw = np.full((T, heads, N), 1.0 / N), np.full((T, heads, N), 1.0 / N)
    for t in range(items):
        ww[t, 0] = 0.9 * split(N, loc[t]) + 0.1 / N
        for h in range(1, heads):
            ww[t, h] = 0.3 * split(N, loc[t] + h - 4) + 0.7 / N
    for k in range(selected):
        rw[items + 1 + k, 0] = 0.9 * split(N, loc[order[k]]) + 0.1 / N
    metadata = {"task": "priority-sort"}
    if meta:
        metadata.update(priority_channel=8, delimiter_channel=9, items=items, selected=selected)
    return Trace({"inputs": x, "outputs": np.clip(y * 0.96 + 0.02, 0, 1), "targets": y,
                  "output_mask": np.arange(T) > items, "write_weightings": ww.astype(np.float32),
                  "read_weightings": rw.astype(np.float32)}, metadata), loc


# ------------------------------------------------------------------ the optimal predictor's outputs


def test_the_optimal_predictors_outputs_are_a_dataset_of_the_outputs_shape():
    t, _, _ = ngram_trace()
    assert t.baseline_outputs.shape == t.outputs.shape == (204, 1)
    assert t.baseline_outputs[3, 0] == 0.5 and 0 < t.baseline_outputs.min() < t.baseline_outputs.max() < 1
    shapes = {k: (v.shape, v.dtype) for k, v in t.arrays.items()}
    assert check_structure(shapes) == []
    shapes["baseline_outputs"] = ((204, 2), np.float32)
    assert check_structure(shapes) == [("baseline_outputs", "has output_width = 2 but outputs has output_width = 1")]
    assert Trace({k: v for k, v in t.arrays.items() if k != "baseline_outputs"}).baseline_outputs is None


def test_the_recorder_records_them_step_by_step(tmp_path):
    t, _, _ = ngram_trace()
    rec = TraceRecorder(task="ngrams")
    for s in range(t.steps):
        rec.step(**{k: v[s] for k, v in t.arrays.items()})
    rec.save(tmp_path / "r.h5")
    assert np.array_equal(attnviz.load(tmp_path / "r.h5").baseline_outputs, t.baseline_outputs)


@pytest.mark.parametrize("value, line", [
    (1.2, "dataset 'baseline_outputs': has 1.2 at step 7, bit 0; the optimal predictor's outputs are probabilities "
          "in [0, 1] (within 0.001)"),
    (-0.5, "dataset 'baseline_outputs': has -0.5 at step 7, bit 0"),
    (1.0005, None),  # within the tolerance
])
def test_validate_holds_them_to_the_range_of_probabilities(runner, tmp_path, value, line):
    t, _, _ = ngram_trace()
    t.baseline_outputs[7, 0] = value
    attnviz.save(t, tmp_path / "t.h5")
    result = run(runner, "validate", tmp_path / "t.h5")
    if line is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1 and line in result.output
        assert len([x for x in result.output.splitlines() if "error" in x]) == 1
