"""Locations in the order they were written: the strong-write rule, --order written in every layout
and on the page, and the copy verdict that judges the algorithm, not whether locations are adjacent."""

import h5py
import numpy as np
import pytest
from test_dnc_plot import dnc_copy_trace
from test_plot import copy_trace
from test_view import Page, browser  # noqa: F401 (a fixture)

import attnviz
from attnviz import Trace
from attnviz.analysis import copy_diagnostics, describe_copy, first_strong_writes, written_order
from attnviz.errors import OptionError
from attnviz.plot import PlotOptions, Renderer, Source, build_scene
from attnviz.plot.options import ORDERS

from conftest import copy_like_arrays, run


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


# ------------------------------------------------------------------ --order written in the figures


def scene_of(trace, **kw):
    opts = PlotOptions(**kw).validated()
    return build_scene(Source.of_trace(trace, opts), opts)


def test_the_rows_are_the_locations_in_the_order_written_labelled_with_their_numbers():
    t, stored = dnc_copy_trace(L=12, N=32)
    scene = scene_of(t, order="written")
    ww, rw = scene.panels[2], scene.panels[3]
    assert ww.locations.tolist() == stored.tolist() == rw.locations.tolist()  # the used: the items' locations
    assert ww.rows == (0, 12) and ww.modulo is None and ww.ylabel == "Location (write order)"
    assert np.allclose(ww.values, t["write_weightings"][:, stored])
    assert ww.values[:12].argmax(axis=1).tolist() == list(range(12))  # the writes: a diagonal
    assert rw.values[13:].argmax(axis=1).tolist() == list(range(12))  # and the reads back, in write order
    ticks = ww.yticks
    assert ticks.labels == tuple(str(stored[k]) for k in ticks.positions) and len(ticks.positions) >= 6
    assert ticks.positions[0] == 0 and len(set(np.diff(ticks.positions))) == 1  # every k-th row, from the first
    assert ticks.wraps == ()  # every row drawn was written: no line between written and not
    index = scene_of(t).panels[2]  # the default: by number (here the whole memory, rolled)
    assert index.locations is None and index.modulo == 32 and index.ylabel == "Location"
    assert np.abs(np.diff(index.values[:12].argmax(axis=1))).max() > 1  # scattered: no diagonal


def test_the_order_composes_with_the_location_crop():
    t, stored = dnc_copy_trace(L=12, N=32)
    a = dict(t.arrays)
    rw = a["read_weightings"].copy()
    rw[3, :] = 0
    rw[3, 30 if 30 not in stored else 29] = 0.6  # a read of a location never written: in use, not written
    t = Trace(dict(a, read_weightings=rw))
    lone = 30 if 30 not in stored else 29
    auto = scene_of(t, order="written").panels[2]
    assert auto.locations.tolist() == stored.tolist() + [lone]  # used: written by step, then the rest by number
    assert auto.yticks.wraps == (11.5,)  # a faint line above the last row written
    whole = scene_of(t, order="written", locations="all").panels[2]
    rest = [k for k in range(32) if k not in stored]
    assert whole.locations.tolist() == stored.tolist() + rest and whole.ylabel == "Location (write order)"
    assert whole.yticks.wraps == (11.5,)
    window = scene_of(t, order="written", locations=(28, 8)).panels[2]  # 28..31, then 0..7: wraps
    inside = [k for k in list(range(28, 32)) + list(range(8))]
    assert window.locations.tolist() == [k for k in stored if k in inside] + [k for k in inside if k not in stored]
    assert np.allclose(window.values, t["write_weightings"][:, window.locations])


def test_a_diffuse_head_is_ordered_by_half_its_peak():
    arrays = copy_like_arrays(L=6, N=16)
    ww = np.full((13, 16), 0.7 / 15, np.float32)  # an untrained head: never at 0.5
    for step, loc in enumerate((9, 2, 12, 5)):
        ww[step, loc] = 0.3
    arrays["write_weightings"] = ww
    p = scene_of(Trace(arrays), order="written", locations="all").panels[2]
    assert p.locations[:4].tolist() == [9, 2, 12, 5] and p.yticks.wraps == (3.5,)


def test_every_layout_sorts_its_location_panels():
    t, stored = dnc_copy_trace(L=8, N=24)
    paper = scene_of(t, layout="paper", order="written")
    assert [p.locations.tolist() for p in paper.panels[4:]] == [stored.tolist()] * 2
    panels = scene_of(t, panels=("usage", "allocation_weightings", "precedence_weightings"), order="written")
    for p in panels.panels:  # (no weighting drawn, nothing to crop to: every location, as in index order)
        assert p.locations[:8].tolist() == stored.tolist() and len(p.locations) == 24
        assert np.allclose(p.values, t[p.plan.key][:, p.locations])
    dnc = scene_of(t, layout="dnc", order="written")
    assert [p.plan.key for p in dnc.panels if p.locations is not None] == ["write_weightings", "read_weightings",
                                                                            "usage"]
    usage = dnc.panels[-1].values
    for k in range(8):  # usage rises at the step after each location is written: a staircase
        assert usage[k, k] < 0.1 and usage[k + 1, k] > 0.9
    ntm = Trace(copy_like_arrays(L=6, N=32, full=True), {"task": "copy", "sequence_length": 6})
    address = scene_of(ntm, layout="addressing", order="written")
    rows = {tuple(p.locations.tolist()) for p in address.panels[:4] if p.values is not None}
    assert rows == {tuple(range(6))}  # the read head's walk, locations 0 to 5, in the order written


def test_the_written_order_is_read_from_files_block_by_block_in_a_time_window(tmp_path):
    t, stored = dnc_copy_trace(L=12, N=32)
    with h5py.File(tmp_path / "t.h5", "w") as f:
        for k, v in t.arrays.items():
            f.create_dataset(k, data=v, chunks=(3,) + v.shape[1:] if v.ndim else None)
    opts = PlotOptions(order="written", time=(4, 25)).validated()
    with attnviz.io.open_traces(tmp_path / "t.h5") as f:
        scene = build_scene(Source(f, "/", opts), opts)
    assert scene.panels[2].locations[:8].tolist() == stored[4:].tolist()  # written from step 4 on, in order
    assert np.allclose(scene.panels[2].values, t["write_weightings"][4:25, scene.panels[2].locations])


def test_a_memory_too_large_to_sort_is_drawn_by_number_with_a_warning():
    from attnviz.plot.source import FULL_ROWS

    N = FULL_ROWS + 8
    arrays = copy_like_arrays(L=2, N=N)
    scene = scene_of(Trace(arrays), order="written")
    assert scene.panels[2].locations is None
    assert len(scene.warnings) == 1 and f"{N:,} are drawn in index order" in scene.warnings[0]


def test_the_frame_of_one_order_is_not_reused_for_another():
    """Two traces whose written rows are as many, but other locations: the cached frame (axes, tick labels)
    of the first must not be painted under the second."""
    a, _ = dnc_copy_trace(L=8, N=24, seed=1)
    b, _ = dnc_copy_trace(L=8, N=24, seed=2)
    opts = PlotOptions(order="written").validated()
    sa, sb = (build_scene(Source.of_trace(t, opts), opts) for t in (a, b))
    assert sa.panels[2].rows == sb.panels[2].rows and sa.frame_key() != sb.frame_key()
    shared = Renderer(opts)
    shared.png(sa)
    assert shared.png(sb) == Renderer(opts).png(sb)


def test_the_option_on_the_command_line_and_its_mistakes(runner, tmp_path):
    from attnviz.cli import Order

    assert [e.value for e in Order] == list(ORDERS)
    t, _ = dnc_copy_trace(L=6, N=16)
    attnviz.save(t, tmp_path / "t.h5")
    result = run(runner, "plot", tmp_path / "t.h5", "--order", "written", "-o", tmp_path / "w.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w.png").read_bytes() == attnviz.export(t, tmp_path / "api.png", order="written")[0].read_bytes()
    for args, message in ((["plot", tmp_path / "t.h5", "--order", "first"], "'first' is not one of 'index', 'written'"),
                          (["compare", tmp_path / "t.h5", tmp_path / "t.h5", "--order", "written"],
                           "--order written sorts one trace's locations by its own writes"),
                          (["animate", tmp_path / "t.h5", "-o", tmp_path / "a.gif", "--order", "written"],
                           "an animation shares one crop, its locations by number")):
        result = run(runner, *args)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(OptionError, match="unknown order 'first'; choose index, written"):
        PlotOptions(order="first").validated()


# ------------------------------------------------------------------ the page


def test_the_page_toggles_between_the_orders(browser, tmp_path):  # noqa: F811 (the fixture)
    import json

    t, stored = dnc_copy_trace(L=8, N=24)
    attnviz.export(t, tmp_path / "p.html")  # by number, the default
    page = Page(browser, tmp_path / "p.html")
    assert page.page.locator("#order").is_visible() and page.view()["order"] == "index"
    index = scene_of(t)
    written = scene_of(t, order="written")

    def drawn_y(k):
        ticks = page.page.evaluate(f"document.querySelector(\"canvas[data-panel='{k}']\").dataset.ticks")
        return json.loads(ticks)["y"]

    assert drawn_y(2) == [[v, s] for v, s in zip(index.panels[2].yticks.positions, index.panels[2].yticks.labels,
                                                   strict=True)]
    page.page.locator("#order input[value=written]").check()
    assert page.view()["order"] == "written"
    assert drawn_y(2) == [[v, s] for v, s in zip(written.panels[2].yticks.positions, written.panels[2].yticks.labels,
                                                   strict=True)]
    page.page.mouse.move(*page.point(3, 11, 2))  # the third item read back, in the third row
    assert page.readout() == f"Read Weightings \u00b7 step 11 \u00b7 location {stored[2]} \u00b7 " \
                             f"{t['read_weightings'][11, stored[2]]:.3f}"
    assert page.page.evaluate("document.getElementById('link-matrix').dataset.order") == "written"
    page.page.locator("#order input[value=index]").check()
    assert drawn_y(2)[0][1] == index.panels[2].yticks.labels[0] and page.errors == []
    attnviz.export(Trace(copy_like_arrays(L=5, N=16)), tmp_path / "inputs.html", panels=("inputs", "outputs"))
    assert Page(browser, tmp_path / "inputs.html").page.locator("#order").is_hidden()  # no locations: no toggle
