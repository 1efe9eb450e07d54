"""The paper's figures of dynamic N-grams and priority sort (--layout paper), what `inspect` says of them,
and the optimal predictor's outputs in the trace format.

The traces are synthetic, built in numpy with the structure a learned model shows (the NTM paper,
Figures 14, 15 and 17): for N-grams, one memory location per five-bit context, read while the context
is current and written the step after, with the model's predictions near the Bayesian predictor's; for
priority sort, each item written at a location linear in its priority, and read back in order of
location, highest priority first."""

import json

import numpy as np
import pytest
from test_view import browser  # noqa: F401 (a fixture)

import attnviz
from attnviz import Trace, TraceRecorder
from attnviz.trace import check_structure

from conftest import png_cells_match_matplotlib, run


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


# ------------------------------------------------------------------ N-grams: a location per context


def test_a_steps_context_is_its_five_last_bits_the_newest_lowest():
    from attnviz.analysis import contexts

    bits = np.array([1, 0, 0, 0, 0, 1, 1, 0])[:, None]
    assert contexts(bits).tolist() == [-1, -1, -1, -1, 0b10000, 0b00001, 0b00011, 0b00110]
    assert contexts(bits, 2).tolist() == [-1, 0b10, 0b00, 0b00, 0b00, 0b01, 0b11, 0b10]
    assert contexts(bits[:3]).tolist() == [-1, -1, -1]


def test_each_context_is_found_at_the_location_of_its_own():
    from attnviz.analysis import context_locations

    t, loc, ctx = ngram_trace()
    d = context_locations(t.inputs, t.read_weightings, t.write_weightings)
    seen = np.unique(ctx[ctx >= 0])
    assert d["contexts_seen"] == seen.size and d["steps"] == 200
    assert [e["context"] for e in d["contexts"]] == [format(c, "05b") for c in seen]
    for e in d["contexts"]:
        c = int(e["context"], 2)
        assert e["location"] == loc[c] and e["own"] and e["share"] == 1.0
        assert e["steps"] == e["reads"] == np.sum(ctx == c)
        assert e["written_after"] == e["write_steps"] == np.sum(ctx[:-1] == c)  # the last step has no step after
    assert (d["own_location"], d["sharing"], d["no_location"]) == (seen.size, 0, 0)


def test_contexts_that_share_a_location_or_have_none_are_told_apart():
    from attnviz.analysis import context_locations, describe_contexts

    t, loc, ctx = ngram_trace()
    common = by_frequency(ctx)
    loc = loc.copy()
    a, b = common[:2]
    loc[b] = loc[a]  # two contexts kept in one place
    t, _, ctx = ngram_trace(locations=loc)
    scattered = common[2]
    rw = t.read_weightings.copy()
    steps = np.flatnonzero(ctx == scattered)
    for n, s in enumerate(steps):  # read somewhere new each time the context recurs
        rw[s] = np.roll(rw[s], 7 * (n + 1))
    d = context_locations(t.inputs, rw, t.write_weightings)
    by = {int(e["context"], 2): e for e in d["contexts"]}
    assert not by[a]["own"] and not by[b]["own"] and by[a]["location"] == by[b]["location"] == loc[a]
    assert by[scattered]["share"] == 1 / steps.size and not by[scattered]["own"]
    assert (d["sharing"], d["shared_locations"], d["no_location"]) == (2, 1, 1)
    assert d["own_location"] == d["contexts_seen"] - 3
    lines = describe_contexts(d)
    assert lines[0] == (f"contexts: {d['contexts_seen']} of the 32 5-bit contexts seen; {d['contexts_seen'] - 3} with "
                        "a location of their own, 2 sharing 1 location, 1 without one (no location read at half of "
                        "their steps)")
    line = f"  context {format(a, '05b')}: location {loc[a]} (shared), read at {by[a]['steps']} of its"
    assert line in "\n".join(lines)
    n = steps.size
    e = by[scattered]
    assert (f"  context {format(scattered, '05b')}: no one location; the most read, {e['location']}, read at 1 of its "
            f"{n} steps ({1 / n:.0%}), written the step after at 0 of {e['write_steps']}") in lines


def by_frequency(ctx: np.ndarray) -> list[int]:
    """The contexts of a trace, most frequent first."""
    values, counts = np.unique(ctx[ctx >= 0], return_counts=True)
    return values[np.argsort(-counts, kind="stable")].tolist()


def test_a_diffuse_read_is_at_no_location():
    from attnviz.analysis import context_locations

    t, _, ctx = ngram_trace()
    c = by_frequency(ctx)[0]
    rw = t.read_weightings.copy()
    rw[ctx == c] = 1 / rw.shape[1]
    e = next(e for e in context_locations(t.inputs, rw, t.write_weightings)["contexts"] if int(e["context"], 2) == c)
    assert e["location"] is None and e["reads"] == 0 and not e["own"]


def test_reads_by_context_find_a_model_that_looks_its_history_up_by_content():
    """A model that writes each step to the next location and reads, with all its weight, the locations
    written 2 steps after the current context was current before: lag 2, every bit of weight, against the
    share of the written locations those are by chance. The location-per-context trace reads at lag 1."""
    from attnviz.analysis import context_reads, contexts, describe_contexts

    t, _, ctx = ngram_trace()
    T = ctx.size
    rw = np.zeros((T, T))
    expected_chance = []
    for step in range(T):
        mine = [s for s in range(2, step) if ctx[s - 2] >= 0 and ctx[s - 2] == ctx[step]]
        if ctx[step] >= 0 and mine:
            rw[step, mine] = 1 / len(mine)
            expected_chance.append(len(mine) / sum(ctx[s - 2] >= 0 for s in range(2, step)))
        else:
            rw[step] = 1 / T
    c, at = contexts(t.inputs), np.arange(T)
    r = context_reads([(c[:100], at[:100], rw[:100]), (c[100:], at[100:], rw[100:, None, :])])
    assert r["lag"] == 2 and r["share"] == pytest.approx(1.0) and r["steps"] == len(expected_chance)
    assert r["chance"] == pytest.approx(np.mean(expected_chance))
    d = context_locations_with(t, rw)
    assert d["reads"] == r
    assert (f"reads by context: at the {r['steps']} steps whose context occurred before, the read heads put 100% "
            "of their weight on the locations written 2 steps after an earlier occurrence of the current context "
            f"({r['chance']:.0%} if spread over every location written)") in describe_contexts(d)
    paper = context_locations_with(t, t.read_weightings)["reads"]
    assert paper["lag"] == 1 and paper["share"] == pytest.approx(0.98)


def test_reads_by_context_say_there_is_no_history_when_the_write_head_stays_put():
    from attnviz.analysis import context_locations, describe_contexts

    t, _, _ = ngram_trace()
    still = np.zeros_like(t.write_weightings)
    still[:, 3] = 1.0  # one location, written over and over: an accumulator, not a history
    d = context_locations(t.inputs, t.read_weightings, still)
    assert d["reads"]["written"] == 1
    assert (f"reads by context: the write heads' focus visited 1 location, against {d['contexts_seen']} contexts "
            "seen: no history to look up") in describe_contexts(d)


def context_locations_with(t, read_weightings):
    from attnviz.analysis import context_locations

    N = read_weightings.shape[1]
    walk = np.eye(N)[np.arange(t.steps) % N] if N >= t.steps else t.write_weightings
    return context_locations(t.inputs, read_weightings, walk)


def test_a_sequences_cost_is_its_cross_entropy_in_bits_over_the_scored_steps():
    from attnviz.analysis import sequence_costs

    p = np.array([[0.5], [0.25], [0.9], [0.5]])
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    mask = np.array([False, True, True, True])
    c = sequence_costs(p, y, mask, baseline=np.full((4, 1), 0.5))
    assert c["bits"] == pytest.approx(-np.log2(0.75) - np.log2(0.9) + 1.0) and c["scored"] == 3
    assert c["optimal_bits"] == pytest.approx(3.0)
    assert sequence_costs(p, y, mask)["optimal_bits"] is None


# ------------------------------------------------------------------ priority sort: locations from priorities


def analyse(t: Trace) -> dict:
    from attnviz.analysis import priority_sort_analysis

    return priority_sort_analysis(t.inputs, t.write_weightings, t.read_weightings, t.output_mask, t.metadata)


@pytest.mark.parametrize("slope, intercept", [(-10.0, 50.0), (12.5, 3.0), (-30.0, 126.0)])  # the last two wrap
def test_the_line_through_the_write_locations_is_the_one_they_were_written_by(slope, intercept):
    t, loc = priority_trace(slope=slope, intercept=intercept)
    d = analyse(t)
    fit = d["fit"]
    # (within the thin floor of weight spread over the whole memory, which pulls a focus a little)
    assert fit["slope"] == pytest.approx(slope, abs=0.01) and fit["intercept"] == pytest.approx(intercept, abs=0.01)
    assert fit["r_squared"] == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(d["write_locations"], loc, atol=0.01) and np.allclose(d["hypothesised"], loc, atol=0.01)
    assert (d["items"], d["priority_channel"]) == (20, 8)
    read = d["read"]
    assert read["steps"] == list(range(21, 37)) and read["in_priority_order_fraction"] == 1.0
    assert read["increasing_fraction"] == (1.0 if slope < 0 else 0.0)  # highest priority first: at the lowest location


def test_writes_that_ignore_the_priorities_fit_badly_and_reads_out_of_order_are_counted():
    from attnviz.analysis import describe_priority_sort

    t, _ = priority_trace(write_at=np.random.default_rng(5).permutation(128)[:20] + 0.0)
    d = analyse(t)
    assert d["fit"]["r_squared"] < 0.3
    t, _ = priority_trace(read_order=[1, 0] + list(range(2, 16)))  # the first two swapped
    d = analyse(t)
    assert d["read"]["in_priority_order_fraction"] == 14 / 16 and d["read"]["increasing_fraction"] == 14 / 15
    assert d["read"]["descending_fraction"] == 14 / 15  # the swap is one move up the priorities
    lines = describe_priority_sort(d)
    assert lines[0] == ("priority sort: the write locations of the 16 items written out (of 20) against their "
                        "priorities (channel 8): slope -10 locations per unit priority, intercept 50.0 (the location "
                        "at priority 0), R² 1.00, 16 of 16 items within 2 locations of it; the line through all 20 "
                        "items: R² 1.00, 20 of 20 within 2 locations of it")
    assert lines[1] == ("reads: 14 of 15 moves to a higher location, 14 of 15 to an item of lower priority, 14 of 16 "
                        "output steps read the item of their rank "
                        "(highest priority first)")


def test_the_line_is_fitted_through_the_items_written_out_and_the_rest_may_land_anywhere():
    from attnviz.analysis import describe_priority_sort

    pr = priority_trace()[0].inputs[:20, 8]
    loc = (-10.0 * pr + 50.0) % 128
    low = np.argsort(-pr)[16:]  # the 4 of lowest priority, never written out
    loc[low] = [10.0, 15.0, 20.0, 90.0]
    t, _ = priority_trace(write_at=loc)
    d = analyse(t)
    assert d["selected"] == 16 and d["fit"]["slope"] == pytest.approx(-10, abs=0.01)
    assert d["fit"]["r_squared"] == pytest.approx(1.0, abs=1e-5) and d["fit_all"]["r_squared"] < 0.1
    assert np.allclose(d["hypothesised"], (-10.0 * pr + 50.0) % 128, atol=0.01)  # every item, on the line
    assert d["fitted"] == sorted(np.argsort(-pr)[:16].tolist())
    assert d["fit"]["on_line"] == 16 and d["fit_all"]["on_line"] == 16  # the 4 left elsewhere are off it
    assert describe_priority_sort(d)[0].endswith(f"R² 1.00, 16 of 16 items within 2 locations of it; the line through "
                                                 f"all 20 items: R² {d['fit_all']['r_squared']:.2f}, 16 of 20 within 2 "
                                                 "locations of it")
    t.metadata["selected"] = 20  # a sort that writes every item out is fitted through all of them
    d = analyse(t)
    assert d["fit"] == d["fit_all"] and d["fit"]["r_squared"] < 0.1
    assert describe_priority_sort(d)[0].startswith("priority sort: the 20 items' write locations against")
    t.metadata["selected"] = np.int64(1)  # one written out: a line needs two, so through all, and reads still told
    d = analyse(t)
    assert d["fitted"] == list(range(20)) and d["read"]["in_priority_order_fraction"] == 1.0
    del t.metadata["selected"]  # no metadata: every item is written out
    assert analyse(t)["fitted"] == list(range(20))
    t.metadata["selected"] = 21
    with pytest.raises(ValueError, match="selected 21 is not a number of items written out, from 1 to 20"):
        analyse(t)


def test_reads_of_items_written_less_than_a_location_apart_are_told_apart_by_their_weight():
    """A dense band: the item of rank k written at 40 + 0.6 k; each read at its item's place with 0.3 of
    its weight a location below. The read's focus is then nearer its neighbour's write than its own; the
    weight it shares with each item's write weighting still says which it reads, mostly."""
    t, _ = priority_trace()
    rank = np.argsort(-t.inputs[:20, 8])
    loc = np.empty(20)
    loc[rank] = 40 + 0.6 * np.arange(20)
    t, _ = priority_trace(write_at=loc)
    rw = t.read_weightings.copy()
    for k in range(16):
        rw[21 + k, 0] = 0.6 * split(128, loc[rank[k]]) + 0.3 * split(128, loc[rank[k]] - 1) + 0.1 / 128
    d = analyse(Trace({**t.arrays, "read_weightings": rw}, t.metadata))
    written = np.asarray(d["write_locations"])
    nearest = np.array([np.abs(written - r).argmin() for r in d["read"]["locations"]])
    assert np.mean(nearest == rank[:16]) <= 2 / 16  # the nearest focus misses almost every one
    assert d["read"]["in_priority_order_fraction"] >= 12 / 16
    assert np.mean(np.asarray(d["read"]["items_read"]) == rank[:16]) == d["read"]["in_priority_order_fraction"]
    rw[21:37, 0] = [split(128, loc[rank[k]]) for k in range(16)]  # reads exactly where it wrote: every one
    assert analyse(Trace({**t.arrays, "read_weightings": rw}, t.metadata))["read"]["items_read"] == rank[:16].tolist()


def test_a_read_that_skips_an_item_is_out_of_rank_from_there_on_but_still_reads_down_the_priorities():
    t, _ = priority_trace(read_order=list(range(8)) + list(range(9, 16)) + [15])  # rank 8 skipped, 15 read twice
    r = analyse(t)["read"]
    assert r["lag"] == 0 and r["in_priority_order_fraction"] == 9 / 16  # ranks 0-7, and 15 at the last step
    assert r["descending_fraction"] == 14 / 15
    t, _ = priority_trace(read_order=[0, 0] + list(range(1, 15)))  # rank 0 read twice
    assert analyse(t)["read"]["descending_fraction"] == 14 / 15


def test_reads_a_step_ahead_of_their_outputs_are_paired_with_them():
    """An LSTM controller may read an item a step before it is output: its input at a step is the read of
    the step before. Such reads are counted against the next output step (lag 1)."""
    from attnviz.analysis import describe_priority_sort

    t, _ = priority_trace()
    rw = np.roll(t.read_weightings, -1, axis=0)  # each read one step earlier: the first at the delimiter
    d = analyse(Trace({**t.arrays, "read_weightings": rw}, t.metadata))
    assert d["read"]["lag"] == 1 and d["read"]["steps"] == list(range(20, 36))
    assert d["read"]["in_priority_order_fraction"] == 1.0
    assert describe_priority_sort(d)[1].endswith("16 of 16 output steps read the item of their rank (highest priority "
                                                 "first) a step ahead: the read of the step before, which reaches "
                                                 "the output through the controller (0 of 16 with the read of their "
                                                 "own step)")
    assert d["read"]["by_lag"] == {"0": 0.0, "1": 1.0}
    assert analyse(t)["read"]["lag"] == 0  # read at their own steps: lag 0


def test_inspect_reads_the_step_before_the_outputs_from_the_file(runner, tmp_path):
    t, _ = priority_trace()
    attnviz.save(Trace({**t.arrays, "read_weightings": np.roll(t.read_weightings, -1, axis=0)}, t.metadata),
                 tmp_path / "t.h5")
    d = json.loads(run(runner, "inspect", "--json", tmp_path / "t.h5").output)[0]["traces"][0]["priority_sort"]
    assert d["read"]["lag"] == 1 and d["read"]["in_priority_order_fraction"] == 1.0


def test_a_read_that_shares_no_weight_with_any_write_reads_no_item():
    t, _ = priority_trace()
    rank = np.argsort(-t.inputs[:20, 8])
    loc = np.empty(20)
    loc[rank] = 10.0 + 2 * np.arange(20)  # one-hot writes two locations apart
    ww = np.zeros((37, 128))
    ww[np.arange(20), loc.astype(int)] = 1.0
    rw = np.zeros((37, 128))
    rw[21:37] = ww[rank[:16]]
    rw[22] = 0.0  # no weight at all
    rw[23] = np.eye(128)[int(loc[rank[2]]) + 1]  # between two writes: on no item's location
    rw[24] = np.nan
    d = analyse(Trace({**t.arrays, "write_weightings": ww, "read_weightings": rw}, t.metadata))
    r = d["read"]
    assert r["items_read"] == [rank[0], None, None, None] + rank[4:16].tolist()
    assert r["in_priority_order_fraction"] == 13 / 16 and r["item_moves"] == 11 and r["descending_fraction"] == 1.0
    ww[5] = ww[3]  # two items written at one location: the read of it reads the later, which wrote over the other
    rw[21:37] = ww[3]
    assert set(analyse(Trace({**t.arrays, "write_weightings": ww, "read_weightings": rw},
                             t.metadata))["read"]["items_read"]) == {5}


def test_a_write_location_is_the_strongest_heads_focus_weight_averaged_near_its_peak():
    from attnviz.analysis import focus_centroids

    N = 32
    w = np.full((3, 2, N), 0.0)
    w[0, 0] = split(N, 4.25) * 0.6
    w[0, 1, 20] = 0.4  # weaker: not the write location
    w[1, 1] = split(N, 31.5)  # across the end of memory
    w[2, 0, [10, 11, 20]] = [0.3, 0.3, 0.4]  # 20 is the peak; 10 and 11 are too far from it to count
    at, peak = focus_centroids(w)
    assert np.allclose(at, [4.25, 31.5, 20.0]) and np.allclose(peak, [0.45, 0.5, 0.4])


def test_the_items_are_told_by_metadata_or_by_the_delimiter():
    from attnviz.analysis import sort_items

    t, _ = priority_trace(meta=False)
    assert sort_items(t.inputs, {}) == (20, 8)  # before the delimiter, on the last channel; priorities before it
    assert sort_items(t.inputs, {"items": 12, "priority_channel": 3}) == (12, 3)
    no_delimiter = t.inputs.copy()
    no_delimiter[:, 9] = 0
    with pytest.raises(ValueError, match="no items metadata and no delimiter on input channel 9"):
        sort_items(no_delimiter, {})
    with pytest.raises(ValueError, match="priority_channel 10 is not an input channel"):
        sort_items(t.inputs, {"priority_channel": 10})
    with pytest.raises(ValueError, match="a fit needs 2 or more items"):
        sort_items(t.inputs, {"items": 1})


# ------------------------------------------------------------------ the figures


def paper_scene(t: Trace, **kw):
    from attnviz.plot import PlotOptions, Source, build_scene

    opts = PlotOptions(layout="paper", **kw).validated()
    return build_scene(Source.of_trace(t, opts), opts)


def test_the_ngram_figure_draws_inputs_and_both_predictions_as_strips_over_the_weightings():
    from attnviz.plot.paper import PaperScene

    t, loc, _ = ngram_trace()
    scene = paper_scene(t)
    assert isinstance(scene, PaperScene) and scene.warnings == []
    assert [p.title for p in scene.panels] == ["Inputs", "Outputs (the model's predictions)", "Optimal predictions",
                                               "Write Weightings", "Read Weightings"]
    inputs, outputs, optimal, write, read = scene.panels
    for p, key in ((inputs, "inputs"), (outputs, "outputs"), (optimal, "baseline_outputs")):
        assert p.strip and p.values.shape == (204, 1) and np.allclose(p.values[:, 0], t[key][:, 0])
        assert p.yticks.positions == ()
    assert outputs.unscored.tolist() == optimal.unscored.tolist() == [True] * 4 + [False] * 200
    assert inputs.unscored is None and scene.markers == (4,)  # scoring starts at step 4
    assert write.rows == read.rows and write.values.shape == read.values.shape
    rows = np.arange(*write.rows) % 64
    assert set(loc) <= set(rows.tolist())  # every context's location is in the crop
    t_read = np.flatnonzero(t.read_weightings[:, loc[0]] > 0.5)
    assert np.all(read.values[t_read, list(rows).index(loc[0])] > 0.9)
    boxes = scene.rects()
    assert len({round(b[2], 6) for b in boxes}) == 1  # one time axis: every panel as wide
    assert [p.xlabel for p in scene.panels] == [""] * 4 + ["Time"]
    assert [p.time_labels for p in scene.panels] == [False, False, True, True, True]


def test_a_missing_optimal_prediction_is_a_panel_not_recorded(runner, tmp_path):
    t, _, _ = ngram_trace(baseline=False)
    scene = paper_scene(t)
    assert scene.panels[2].title == "Optimal predictions (not recorded)" and scene.panels[2].values is None
    assert scene.warnings == ["trace '/': dataset 'baseline_outputs': not recorded; its panel is left empty"]
    attnviz.save(t, tmp_path / "t.h5")
    result = run(runner, "plot", tmp_path / "t.h5", "--layout", "paper", "-o", tmp_path / "t.png")
    assert result.exit_code == 0 and "baseline_outputs': not recorded" in result.output
    assert (tmp_path / "t.png").is_file()


def test_the_priority_sort_figure_draws_the_hypothesised_locations_beside_the_weightings():
    t, loc = priority_trace()
    scene = paper_scene(t)
    titles = [p.title for p in scene.panels]
    assert titles == ["Inputs", "Priority (input channel 8)", "Outputs", "Hypothesised Locations (R² 1.00)",
                      "Write Weightings (8 heads, max)", "Read Weightings (8 heads, max)"]
    inputs, priority, outputs, hyp, write, read = scene.panels
    assert inputs.values.shape == (37, 9) and inputs.row_names == tuple("012345679")  # the priority has a strip
    assert np.array_equal(inputs.values, t.inputs[:, [0, 1, 2, 3, 4, 5, 6, 7, 9]])
    assert inputs.yticks.labels[-1] == "9" and (inputs.vmin, inputs.vmax) == (0, 1)
    assert np.allclose(priority.values[:, 0], t.inputs[:, 8]) and (priority.vmin, priority.vmax) == (-1, 1)
    assert priority.plan.cmap == "RdBu_r" and priority.ink  # (dark markers: its ground is white)
    assert outputs.unscored.tolist() == [True] * 21 + [False] * 16 and scene.markers == (21,)
    assert hyp.rows == write.rows == read.rows and hyp.modulo == 128
    rows = np.arange(*hyp.rows) % 128
    for step in range(37):  # one cell a step while the items come in, at the fitted location
        lit = np.flatnonzero(hyp.values[step] > 0)
        assert (rows[lit].tolist() == [round(loc[step]) % 128]) if step < 20 else lit.size == 0
    heads = np.max(t.write_weightings, axis=1)  # the heads' maximum
    assert np.allclose(write.values, heads[:, rows])
    n = len(scene.notes)
    assert n == 2 and scene.notes[0][2] == ("Hypothesised Locations: location = 50.0 \u2212 10 \u00d7 priority, the "
                                            "line (Theil\u2013Sen) through the write locations of the 16 items "
                                            "written out (of 20)")
    assert scene.notes[1][2] == ("slope \u221210 locations per unit priority, intercept 50.0 (the location at "
                                 "priority 0), R² 1.00, 16 of 16 items within 2 locations of it")
    side = scene.rects()[3:]
    assert len({round(r[1], 6) for r in side}) == 1 and side[0][0] < side[1][0] < side[2][0]  # side by side


def test_one_head_is_drawn_with_head():
    t, _ = priority_trace()
    write = paper_scene(t, head=3).panels[4]
    assert write.title == "Write Weightings (head 3)"
    assert np.allclose(write.values, t.write_weightings[:, 3, np.arange(*write.rows) % 128])


def test_a_head_that_does_not_exist_is_a_usage_error(runner, tmp_path):
    t, _ = priority_trace(heads=2)
    attnviz.save(t, tmp_path / "t.h5")
    result = run(runner, "plot", tmp_path / "t.h5", "--layout", "paper", "--head", "2")
    assert result.exit_code == 2 and "head 2 does not exist; it has 2 heads, 0 to 1" in result.output


def test_without_the_items_steps_there_is_no_fit_and_the_figure_says_so():
    t, _ = priority_trace(meta=False)
    assert paper_scene(t).panels[3].title == "Hypothesised Locations (R² 1.00)"  # by the delimiter
    arrays = dict(t.arrays)
    arrays["inputs"] = arrays["inputs"].copy()
    arrays["inputs"][:, 9] = 0
    scene = paper_scene(Trace(arrays, t.metadata))
    hyp = scene.panels[3]
    assert hyp.values is None and hyp.title == "Hypothesised Locations" and hyp.empty == "no fit"
    assert scene.warnings == ["trace '/': no hypothesised locations: no items metadata and no delimiter on input "
                              "channel 9: the items' steps are unknown"]
    assert scene.notes[0][2].startswith("Hypothesised Locations: no fit (no items metadata")


def test_other_tasks_and_layouts_keep_their_figures():
    from attnviz.plot.paper import PaperScene

    ng, _, _ = ngram_trace()
    assert [p.title for p in paper_scene(ng, panels=("inputs", "baseline_outputs")).panels] == [
        "Inputs", "Optimal predictions"]  # --panels: the grid
    grid = paper_scene(Trace(ng.arrays, {**ng.metadata, "task": "copy"}))
    assert not isinstance(grid, PaperScene) and len(grid.panels) == 6  # the 3x2 grid
    from attnviz.plot import PlotOptions, Source, build_scene

    opts = PlotOptions().validated()
    assert [p.title for p in build_scene(Source.of_trace(ng, opts), opts).panels] == [
        "Inputs", "Outputs", "Write Weightings", "Read Weightings"]  # the default layout: the grid


def test_a_comparison_of_two_task_traces_is_drawn_in_the_grid(tmp_path):
    a, _, _ = ngram_trace(seed=1)
    b, _, _ = ngram_trace(seed=2)
    result = attnviz.compare_traces(a, b, layout="paper")
    assert [p.title for p in result.a.panels] == ["Inputs", "Outputs", "Adds (not recorded)", "Reads (not recorded)",
                                                  "Write Weightings", "Read Weightings"]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "html"])
@pytest.mark.parametrize("make", [ngram_trace, priority_trace])
def test_every_format_is_written_the_same_each_time(runner, tmp_path, fmt, make):
    from PIL import Image

    t = make()[0]
    attnviz.save(t, tmp_path / "t.h5")
    first = attnviz.export(t, tmp_path / f"a.{fmt}", layout="paper")[0].read_bytes()
    assert attnviz.export(t, tmp_path / f"b.{fmt}", layout="paper")[0].read_bytes() == first
    result = run(runner, "plot", tmp_path / "t.h5", "--layout", "paper", "-o", tmp_path / f"c.{fmt}")
    assert result.exit_code == 0, result.output
    if fmt != "html":  # (a page from the CLI is titled after its file)
        assert (tmp_path / f"c.{fmt}").read_bytes() == first
    if fmt == "png":
        import io

        image = Image.open(io.BytesIO(first))
        assert image.size == ((800, 695) if make is ngram_trace else (900, 732))  # docs/figure.md
        assert np.array_equal(attnviz.render(t, layout="paper"), np.asarray(image.convert("RGB")))
    elif fmt == "html" and make is priority_trace:
        assert json.dumps("slope \u221210 locations per unit priority")[1:-1] in first.decode()  # the notes


def test_the_png_paints_the_cells_matplotlib_draws():
    t, _ = priority_trace()
    scene = paper_scene(t)
    checked = png_cells_match_matplotlib(scene)
    assert checked > 2000


def test_the_page_reads_out_the_strips_and_shows_the_fit(browser, tmp_path):  # noqa: F811 (the fixture)
    from test_addressing_layout import point
    from test_view import Page

    t, loc = priority_trace()
    attnviz.export(t, tmp_path / "p.html", layout="paper")
    page = Page(browser, tmp_path / "p.html")
    x, y = point(page, 1, 3, 0)  # the priorities' strip
    page.page.mouse.move(x, y)
    assert page.readout() == f"Priority (input channel 8) \u00b7 step 3 \u00b7 {t.inputs[3, 8]:.3f}"
    hyp = paper_scene(t).panels[3]
    row = next(r for r in range(*hyp.rows) if r % 128 == round(loc[5]) % 128)
    x, y = point(page, 3, 5, row)
    page.page.mouse.move(x, y)
    assert page.readout() == (f"Hypothesised Locations (R² 1.00) \u00b7 step 5 \u00b7 location {round(loc[5])} "
                              "\u00b7 1.000")
    notes = page.page.eval_on_selector_all("p.note", "ps => ps.map((p) => p.textContent)")
    assert notes == [n for _, _, n in paper_scene(t).notes]
    assert page.errors == [] and page.external_requests() == []
    t, _, _ = ngram_trace()
    attnviz.export(t, tmp_path / "n.html", layout="paper")
    page = Page(browser, tmp_path / "n.html")
    x, y = point(page, 2, 30, 0)
    page.page.mouse.move(x, y)
    assert page.readout() == f"Optimal predictions \u00b7 step 30 \u00b7 {t.baseline_outputs[30, 0]:.3f}"
    assert page.errors == []


# ------------------------------------------------------------------ inspect


def test_inspect_names_the_location_of_each_context(runner, tmp_path):
    from attnviz.analysis import context_locations

    t, loc, ctx = ngram_trace()
    attnviz.save(t, tmp_path / "t.h5")
    attnviz.save(t, tmp_path / "t.npz")
    result = run(runner, "inspect", "--json", tmp_path / "t.h5", tmp_path / "t.npz")
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)
    expected = json.loads(json.dumps(context_locations(t.inputs, t.read_weightings, t.write_weightings)))
    from attnviz.analysis import sequence_costs

    cost = sequence_costs(t.outputs, t["targets"], t["output_mask"], t.baseline_outputs)
    for f in files:
        got = dict(f["traces"][0]["contexts"])
        assert got.pop("cost") == pytest.approx(cost)  # and the sequence's cost, from the file's outputs
        assert got == expected  # read block by block, from either format
        assert f["traces"][0]["layouts"] == ["grid", "paper"]
    seen = expected["contexts_seen"]
    text = run(runner, "inspect", tmp_path / "t.h5").output
    assert "  layouts: grid, paper\n" in text  # (its paper figure draws no adds or reads)
    assert f"  contexts: {seen} of the 32 5-bit contexts seen; {seen} with a location of their own\n" in text
    assert (f"  cost of this sequence: the model {cost['bits']:.2f} bits, the optimal predictor "
            f"{cost['optimal_bits']:.2f} (cross-entropy of its 200 scored bits)\n") in text
    assert "  reads by context: at the " in text and " on the locations written 1 step after an earlier" in text
    c = by_frequency(ctx)[0]
    n = int(np.sum(ctx == c))
    assert (f"    context {format(c, '05b')}: location {loc[c]} (own), read at {n} of its {n} steps (100%), written "
            f"the step after at {n - (ctx[-1] == c)} of {n - (ctx[-1] == c)}\n") in text
    t, _, _ = ngram_trace(baseline=False)
    attnviz.save(t, tmp_path / "u.h5")
    text = run(runner, "inspect", tmp_path / "u.h5").output
    assert "  layouts: grid, paper (baseline_outputs not recorded)\n" in text


def test_an_item_written_off_the_band_does_not_tilt_the_line():
    """A trained sort may park one item it writes out away from the band of the rest (the bundled sample
    does): the line is the band's, and the item is counted off it; a least-squares line would lean
    towards it."""
    pr = priority_trace()[0].inputs[:20, 8]
    loc = (-10.0 * pr + 50.0) % 128
    loc[np.argsort(-pr)[15]] += 40.0  # the 16th of highest priority, 40 locations off
    d = analyse(priority_trace(write_at=loc)[0])
    fit = d["fit"]
    assert fit["slope"] == pytest.approx(-10, abs=0.05) and fit["intercept"] == pytest.approx(50, abs=0.5)
    assert fit["on_line"] == 15 and 0 < fit["r_squared"] < 0.9
    top = np.argsort(-pr)[:16]
    least_squares = np.polyfit(pr[top], loc[top], 1)[0]
    assert abs(least_squares + 10) > 3 * abs(fit["slope"] + 10)


def test_a_line_through_items_of_one_priority_is_flat_and_its_r_squared_undefined_when_all_at_one_location():
    from attnviz.analysis import priority_fit

    fit = priority_fit([0.5, 0.5, 0.5], [10.0, 12.0, 14.0], 128)  # no two priorities differ: no slope
    assert fit["slope"] == 0.0 and fit["intercept"] == pytest.approx(12.0) and fit["on_line"] == 3
    fit = priority_fit([-0.5, 0.0, 0.5], [7.0, 7.0, 7.0], 128)
    assert fit["slope"] == 0.0 and fit["r_squared"] is None
    rng = np.random.default_rng(1)  # more items than every pair of them is worth: pairs drawn, same line
    p = rng.uniform(-1, 1, 5000)
    loc = (40 + 20 * p + rng.normal(0, 0.3, p.size)) % 128
    loc[:500] = rng.uniform(0, 128, 500)  # a tenth anywhere
    fit = priority_fit(p, loc, 128)
    assert fit["slope"] == pytest.approx(20, abs=0.2) and fit["intercept"] == pytest.approx(40, abs=0.2)
    assert 4500 <= fit["on_line"] <= 4560 and priority_fit(p, loc, 128) == fit  # (the draw is the same each time)


def test_an_item_on_the_line_across_the_end_of_memory_is_on_it():
    from attnviz.analysis import priority_fit

    # 200 locations per unit priority: the line goes round the memory more than once, and the item at
    # priority -0.4 is written at 48, which is -80 round the circle: on the line, 128 away from it unwrapped
    fit = priority_fit([0.0, 0.05, 0.1, 0.15, 0.2, -0.4], [0.0, 10.0, 20.0, 30.0, 40.0, 48.0], 128)
    assert fit["slope"] == pytest.approx(200) and fit["intercept"] == pytest.approx(0) and fit["on_line"] == 6


def test_inspect_gives_the_priority_fit_and_how_the_reads_go(runner, tmp_path):
    t, _ = priority_trace(read_order=[1, 0] + list(range(2, 16)))
    attnviz.save(t, tmp_path / "t.h5")
    result = run(runner, "inspect", "--json", tmp_path / "t.h5")
    d = json.loads(result.output)[0]["traces"][0]["priority_sort"]
    assert d["fit"]["slope"] == pytest.approx(-10, abs=0.01) and d["fit"]["intercept"] == pytest.approx(50, abs=0.01)
    assert d["read"]["in_priority_order_fraction"] == 14 / 16 and d == json.loads(json.dumps(analyse(t)))
    text = run(runner, "inspect", tmp_path / "t.h5").output
    assert ("  priority sort: the write locations of the 16 items written out (of 20) against their priorities "
            "(channel 8): slope -10 locations per unit priority, intercept 50.0 (the location at priority 0), R² 1.00, "
            "16 of 16 items within 2 locations of it; the line through all 20 items: R² 1.00, 20 of 20 within 2 "
            "locations of it\n") in text
    assert ("  reads: 14 of 15 moves to a higher location, 14 of 15 to an item of lower priority, 14 of 16 output "
            "steps read the item of their rank") in text
    arrays = dict(t.arrays)
    arrays["inputs"] = arrays["inputs"].copy()
    arrays["inputs"][:, 9] = 0
    attnviz.save(Trace(arrays, {"task": "priority-sort"}), tmp_path / "u.h5")
    result = run(runner, "inspect", tmp_path / "u.h5")
    assert result.exit_code == 0  # a trace it cannot fit is still a valid trace
    assert ("  priority sort: no items metadata and no delimiter on input channel 9: the items' steps are "
            "unknown\n") in result.output


def test_a_diverged_sort_is_fitted_from_its_finite_weights_and_a_priority_not_a_number_is_named():
    t, _ = priority_trace()
    arrays = dict(t.arrays)
    arrays["write_weightings"] = arrays["write_weightings"].copy()
    arrays["write_weightings"][3, 0, 60] = np.nan  # in view, far from the item's focus (44): counts as 0
    scene = paper_scene(Trace(arrays, t.metadata))
    assert scene.panels[3].title == "Hypothesised Locations (R² 1.00)" and scene.panels[4].nonfinite == "NaN"
    arrays = dict(t.arrays)
    arrays["inputs"] = arrays["inputs"].copy()
    arrays["inputs"][4, 8] = np.nan
    scene = paper_scene(Trace(arrays, t.metadata))
    assert scene.panels[3].empty == "no fit" and scene.panels[3].values is None
    assert scene.warnings[0] == ("trace '/': no hypothesised locations: the priority of the item at step 4 is nan, "
                                 "not a number")


def test_an_intercept_just_below_location_0_is_written_0():
    from attnviz.analysis import describe_fit, priority_fit

    fit = priority_fit([-1.0, 0.0, 1.0], [1.0, 127.99, 126.98], 128)  # across the end of memory
    assert fit["slope"] == pytest.approx(-1.01) and fit["intercept"] == pytest.approx(127.99)
    assert describe_fit(fit, 128) == ("slope -1.01 locations per unit priority, intercept 0.0 (the location at "
                                      "priority 0), R² 1.00, 3 of 3 items within 2 locations of it")
    assert "intercept 128.0" in describe_fit(fit)  # (without N, as it is)


def test_contexts_read_block_by_block_are_those_of_the_whole_trace(tmp_path):
    """Blocks of 7 steps: a block's first contexts take the bits before it, its reads the lags before it."""
    import functools

    from attnviz.analysis import context_locations, context_locations_from_file
    from attnviz.io import open_traces

    t, _, _ = ngram_trace()
    attnviz.save(t, tmp_path / "t.h5")
    with open_traces(tmp_path / "t.h5") as f:
        f.step_blocks = functools.partial(f.step_blocks, block_bytes=7 * 8 * (1 + 2 * t.locations))
        small = context_locations_from_file(f, "/")
    small.pop("cost")
    assert small == context_locations(t.inputs, t.read_weightings, t.write_weightings)
