"""Locations in the order they were written: the strong-write rule, --order written in every layout
and on the page, and the copy verdict that judges the algorithm, not whether locations are adjacent."""

import numpy as np
from test_dnc_plot import dnc_copy_trace
from test_plot import copy_trace

from attnviz.analysis import copy_diagnostics, describe_copy, first_strong_writes, written_order


def verdict(t, outputs=True):
    a = t.arrays
    if not outputs:
        return copy_diagnostics(a["write_weightings"], a["read_weightings"], t.metadata["sequence_length"])
    return copy_diagnostics(a["write_weightings"], a["read_weightings"], t.metadata["sequence_length"],
                            a["outputs"], a["targets"], a.get("output_mask"))


# ------------------------------------------------------------------ the strong-write rule


def test_a_location_s_first_strong_write_is_its_first_step_at_half_weight_or_more():
    w = np.zeros((6, 5))
    w[0, 3] = 0.49  # not strong
    w[1, 3] = 0.5  # strong: step 1
    w[2, 1], w[2, 0] = 0.9, 0.1
    w[4, 3] = 1.0  # written again: its first strong write stays step 1
    assert first_strong_writes(w).tolist() == [-1, 2, -1, 1, -1]
    order, n = written_order(first_strong_writes(w))
    assert order.tolist() == [3, 1, 0, 2, 4] and n == 2  # then the rest, in index order
    two_heads = np.stack([w, np.roll(w, 3, axis=0)], axis=1)  # head 1 writes the same three steps later
    two_heads[5, 1, 4] = 0.8
    assert first_strong_writes(two_heads).tolist() == [-1, 2, -1, 1, 5]


def test_a_head_that_never_reaches_half_counts_its_writes_at_half_its_own_peak():
    w = np.full((4, 8), 0.02)
    w[1, 6], w[3, 2], w[2, 5] = 0.3, 0.2, 0.14  # peak 0.3: strong from 0.15 on
    assert first_strong_writes(w).tolist() == [-1, -1, 3, -1, -1, -1, 1, -1]
    assert first_strong_writes(np.zeros((3, 4))).tolist() == [-1] * 4  # no write at all: nothing written
    nan = w.copy()
    nan[0, 0] = np.nan  # not a number: counts as no write
    assert first_strong_writes(nan).tolist() == first_strong_writes(w).tolist()


# ------------------------------------------------------------------ the copy verdict


def test_an_ntm_walk_still_passes():
    d = verdict(copy_trace(L=20, N=32, start=27, diffuse_writes=2))
    assert d["learned"] and d["problems"] == [] and d["in_order_fraction"] == 1.0
    assert d["distinct_fraction"] == 1.0 and d["write"]["steady_fraction"] == 1.0


def test_a_dnc_copy_to_scattered_locations_read_back_in_write_order_passes():
    t, stored = dnc_copy_trace(L=12, N=32)
    assert np.abs(np.diff(stored)).max() > 1  # scattered: no walk
    d = verdict(t)
    assert d["learned"], d["problems"]
    assert d["in_order_fraction"] == 1.0 and d["distinct_fraction"] == 1.0 and d["wrong_bits"] == 0
    assert d["write"]["steady_fraction"] < 0.5  # what the old verdict judged by
    assert describe_copy(d).startswith("copy: learned; 0 of 72 scored output bits wrong")


def test_a_copy_read_back_in_the_wrong_order_fails_and_says_so():
    for order in ("reversed", "shuffled"):
        t, _ = dnc_copy_trace(L=12, N=32, read_order=order)
        d = verdict(t, outputs=False)  # the heads alone: the reads visit every written location...
        assert d["reads_written_fraction"] == 1.0 and d["read"]["mean_peak"] > 0.8
        assert not d["learned"]  # ...in another order
        assert d["problems"] == [f"not read back in write order: {round(d['in_order_fraction'] * 10)} of 10 output "
                                 "steps read the location their item was written to"]
        line = describe_copy(verdict(t))
        assert line.startswith("copy: NOT learned (not read back in write order: ") and "bits are wrong" in line


def test_items_that_share_a_location_fail():
    t, stored = dnc_copy_trace(L=12, N=32)
    arrays = dict(t.arrays)
    w = arrays["write_weightings"].copy()
    w[6:9] = w[5]  # items 5 to 8 all written where item 5 was
    d = copy_diagnostics(w, arrays["read_weightings"], 12)
    assert not d["learned"] and any(p.startswith("items share locations: 6 of 10 items") for p in d["problems"])
