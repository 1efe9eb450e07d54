"""--layout dnc: the DNC's memory after the paper's Extended Data Figure 1 (inputs, outputs, weightings,
gates, read modes, usage) on one time axis, in every format; what an NTM trace lacks marked "not
recorded"; and the page's link matrix.

The traces are synthetic DNC copies made by the DNC's own equations (Graves et al. 2016, Methods), with
the gates and read modes that a learned DNC shows: every DNC dataset agrees with the others (usage
from the writes and the free gates, the allocation weighting from usage, the link matrix and
precedence from the writes, the read weightings from the read modes)."""

import io

import h5py
import numpy as np
import pytest
from PIL import Image
from test_addressing_layout import point
from test_view import Page, browser  # noqa: F401 (a fixture)

import attnviz
from attnviz import Trace
from attnviz.errors import OptionError
from attnviz.plot import PlotOptions, Source, build_scene, plot_trace
from attnviz.plot.dnc import DncScene, GateStrip, mode_names
from attnviz.plot.options import LOCATION_PANELS

from conftest import copy_like_arrays, png_cells_match_matplotlib, run


def allocation(u: np.ndarray) -> np.ndarray:
    """a_t[phi_j] = (1 - u[phi_j]) * prod_{i<j} u[phi_i], phi: locations by usage, least used first."""
    phi = np.argsort(u, kind="stable")
    a = np.zeros_like(u)
    a[phi] = (1 - u[phi]) * np.cumprod(np.concatenate([[1.0], u[phi][:-1]]))
    return a


def one_hot(N: int, at: int, peak: float, rng) -> np.ndarray:
    """A sharp weighting: ``peak`` at ``at``, the rest spread thinly (sums to 1)."""
    rest = rng.random(N)
    rest[at] = 0
    w = rest / rest.sum() * (1 - peak)
    w[at] = peak
    return w


def dnc_copy_trace(L: int = 12, N: int = 32, seed: int = 0, read_order: str = "same", read_heads: int = 1,
                   links: bool = True, **meta) -> tuple[Trace, np.ndarray]:
    """A learned DNC copying L items through N locations with one write head.

    The memory starts partly used (as after an earlier sequence), so allocation hands out free
    locations scattered over the memory: item k is written to the k-th least used location. While
    the items come in, the write gate and the allocation gate are open and the free gates shut; after
    the delimiter the write gate shuts, the read heads go through the items by the forward mode (the
    first by content) and free each location as they read it. ``read_order``: "same" reads the items
    back in the order written; "reversed" and "shuffled" read the same locations in another order (and
    so output the wrong items). Returns the trace and the location each item was written to."""
    rng = np.random.default_rng(seed)
    T, width, R = 2 * L + 1, 6, read_heads
    seq = rng.integers(0, 2, (L, width)).astype(np.float64)
    x = np.zeros((T, width + 1))
    x[:L, :width], x[L, width] = seq, 1
    targets = np.zeros((T, width))
    targets[L + 1 :] = seq

    u = rng.uniform(0.3, 0.9, N)  # an earlier sequence's leftovers ...
    free = rng.choice(N, size=L + 4, replace=False)
    u[free] = rng.uniform(0.0, 0.002, free.size)  # ... and the locations it freed
    stored = np.zeros(L, int)  # where allocation put items 0..L-1
    reads = {"same": np.arange(L), "reversed": np.arange(L)[::-1],
             "shuffled": rng.permutation(L)}[read_order]

    write_gate = np.where(np.arange(T) < L, rng.uniform(0.993, 1.0, T), rng.uniform(0.0, 0.02, T))
    alloc_gate = np.where(np.arange(T) < L, rng.uniform(0.99, 1.0, T), rng.uniform(0.2, 0.8, T))
    free_gates = np.where(np.arange(T)[:, None] > L, rng.uniform(0.9, 1.0, (T, R)), rng.uniform(0.0, 0.05, (T, R)))
    modes = np.zeros((T, R, 3))
    for t in range(T):
        for i in range(R):
            if t <= L:  # nothing to read yet: mostly content, unsure
                modes[t, i] = rng.dirichlet([2, 6, 2])
            elif t == L + 1 or read_order != "same":  # find the first item (or any) by its content
                modes[t, i] = [0.02, 0.95, 0.03]
            else:
                modes[t, i] = rng.dirichlet([1, 6, 60])  # mostly forward: the item written after the last read

    ww, rw, us, aw, pw, lm = (np.zeros(s) for s in ((T, N), (T, R, N), (T, N), (T, N), (T, N), (T, N, N)))
    w_prev, r_prev, p, link = np.zeros(N), np.full((R, N), 1.0 / N), np.zeros(N), np.zeros((N, N))
    outputs = np.full((T, width), 0.5)
    for t in range(T):
        psi = np.prod(1 - free_gates[t][:, None] * r_prev, axis=0)
        u = (u + w_prev - u * w_prev) * psi
        a = allocation(u)
        content_w = one_hot(N, int(np.argmax(a)), 0.9, rng)  # (what the write key would match)
        w = write_gate[t] * (alloc_gate[t] * a + (1 - alloc_gate[t]) * content_w)
        if t < L:
            stored[t] = int(np.argmax(w))
        link = (1 - w[:, None] - w[None, :]) * link + w[:, None] * p[None, :]
        np.fill_diagonal(link, 0.0)
        p = (1 - w.sum()) * p + w
        r = np.zeros((R, N))
        for i in range(R):
            if t > L:
                k = reads[t - L - 1]
                content_r = one_hot(N, stored[k], 0.97, rng)
            else:
                content_r = np.full(N, 1.0 / N)
            forward, backward = link @ r_prev[i], link.T @ r_prev[i]
            r[i] = modes[t, i, 0] * backward + modes[t, i, 1] * content_r + modes[t, i, 2] * forward
        if t > L:
            item = reads[t - L - 1]
            outputs[t] = np.clip(seq[item] * 0.98 + 0.01 + rng.normal(0, 0.005, width), 0, 1)
        ww[t], rw[t], us[t], aw[t], pw[t], lm[t] = w, r, u, a, p, link
        w_prev, r_prev = w, r
    arrays = {"inputs": x, "outputs": outputs, "targets": targets, "output_mask": np.arange(T) > L,
              "write_weightings": ww, "read_weightings": rw[:, 0] if R == 1 else rw, "usage": us,
              "allocation_weightings": aw, "dnc_write_gates": write_gate, "allocation_gates": alloc_gate,
              "free_gates": free_gates[:, 0] if R == 1 else free_gates,
              "read_modes": modes[:, 0] if R == 1 else modes, "precedence_weightings": pw}
    if links:
        arrays["link_matrices"] = lm
    arrays = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in arrays.items()}
    return Trace(arrays, {"task": "copy", "model": "dnc", "sequence_length": L, **meta}), stored


# ------------------------------------------------------------------ the figure

TITLES = ["Inputs", "Outputs", "Write Weightings", "Read Weightings", "Write gate", "Allocation gate", "Free gate",
          "Read modes", "Usage"]


def scene_of(trace, **kw) -> DncScene:
    opts = PlotOptions(layout="dnc", **kw).validated()
    return build_scene(Source.of_trace(trace, opts), opts)


def two_heads_each(t: Trace) -> Trace:
    """The trace with a second write head (the first, a step later) and everything per head doubled."""
    a = dict(t.arrays)
    a["write_weightings"] = np.stack([a["write_weightings"], np.roll(a["write_weightings"], 1, axis=0)], axis=1)
    for k in ("dnc_write_gates", "allocation_gates"):
        a[k] = np.stack([a[k], a[k][::-1]], axis=1)
    for k in ("allocation_weightings", "precedence_weightings", "link_matrices"):
        a[k] = np.stack([a[k]] * 2, axis=1)
    m = a["read_modes"]  # (T, R, 3) -> (T, R, 5): each backward and forward mode shared by the write heads
    a["read_modes"] = np.concatenate([m[..., :1] / 2, m[..., :1] / 2, m[..., 1:2], m[..., 2:] / 2, m[..., 2:] / 2],
                                     axis=-1)
    return Trace(a, t.metadata)


def test_the_panels_hold_the_dnc_datasets_on_one_time_axis():
    t, _ = dnc_copy_trace(L=12, N=32)
    scene = scene_of(t)
    assert isinstance(scene, DncScene) and scene.warnings == [] and scene.suptitle == "copy \u00b7 length 12"
    assert [p.title for p in scene.panels] == TITLES
    a, T = t.arrays, 25
    cols = {p.values.shape[0] for p in scene.panels}
    assert cols == {T} and {p.time for p in scene.panels} == {(0, T)}  # one time axis, a column per step
    lefts = {(round(r[0], 9), round(r[2], 9)) for r in scene.rects()}
    assert len(lefts) == 1  # every panel spans the same width: a step is in the same column everywhere
    tops = [r[1] + r[3] for r in scene.rects()]
    assert tops == sorted(tops, reverse=True)  # one above the other, in the order listed
    location = [p for p in scene.panels if p.plan.key in LOCATION_PANELS]
    assert [p.plan.key for p in location] == ["write_weightings", "read_weightings", "usage"]
    rows = location[0].rows
    for p in location:  # one crop, the weightings' and usage's
        assert p.rows == rows and p.modulo == 32 and p.ylabel.startswith("Location")
        assert np.allclose(p.values, a[p.plan.key][:, np.arange(*rows) % 32])
    assert set(np.flatnonzero(a["write_weightings"].max(axis=0) > 0.05)) <= set(np.arange(*rows) % 32)
    for p, key in zip(scene.panels[4:7], ("dnc_write_gates", "allocation_gates", "free_gates"), strict=True):
        assert isinstance(p, GateStrip) and p.values.shape == (T, 1) and np.allclose(p.series, a[key])
        assert (p.vmin, p.vmax) == (0.0, 1.0) and p.yticks.positions == () and not p.time_labels
    modes = scene.panels[7]
    assert np.allclose(modes.values, a["read_modes"]) and modes.rows == (0, 3)
    assert modes.yticks.labels == ("backward", "content", "forward") == mode_names(1)
    assert modes.values[14:, 2].mean() > 0.8  # mostly forward while the items are read back
    assert [p.xlabel for p in scene.panels] == [""] * 8 + ["Time"]  # the time axis of all, at the bottom
    assert scene.markers == (13,)  # the phase marker, through every panel


def test_more_heads_get_a_panel_each_and_their_modes_named():
    t, _ = dnc_copy_trace(L=6, N=16, read_heads=2)
    scene = scene_of(two_heads_each(t))
    assert [p.title for p in scene.panels] == [
        "Inputs", "Outputs", "Write Weightings (head 0)", "Write Weightings (head 1)", "Read Weightings (head 0)",
        "Read Weightings (head 1)", "Write gate (head 0)", "Write gate (head 1)", "Allocation gate (head 0)",
        "Allocation gate (head 1)", "Free gate (read head 0)", "Free gate (read head 1)",
        "Read modes (read head 0)", "Read modes (read head 1)", "Usage"]
    a = two_heads_each(t).arrays
    assert np.allclose(scene.panels[7].series, a["dnc_write_gates"][:, 1])
    assert np.allclose(scene.panels[11].series, a["free_gates"][:, 1])
    assert scene.panels[13].yticks.labels == ("backward 0", "backward 1", "content", "forward 0", "forward 1")
    assert np.allclose(scene.panels[13].values, a["read_modes"][:, 1])
    assert len({p.rows for p in scene.panels if p.of_locations}) == 1


def test_an_ntm_trace_is_drawn_with_the_dnc_panels_marked_not_recorded(runner, tmp_path):
    ntm = Trace(copy_like_arrays(L=5, N=16), {"task": "copy", "sequence_length": 5})
    scene = scene_of(ntm)
    assert [p.values is not None for p in scene.panels] == [True] * 4 + [False] * 5
    assert [p.title for p in scene.panels[4:]] == [f"{t} (not recorded)" for t in TITLES[4:]]
    assert len(scene.warnings) == 1 and scene.warnings[0].endswith(
        "records none of the DNC's datasets (dnc_write_gates, allocation_gates, free_gates, read_modes, usage); "
        "their panels are left empty")
    drawn = plot_trace(ntm, layout="dnc")
    assert [ax.texts[0].get_text() for ax in drawn.axes if ax.texts] == ["not recorded"] * 5
    assert drawn.axes[-1].get_xlabel() == "Time" and len(drawn.axes[-1].get_xticks()) > 1  # the time axis still
    attnviz.save(ntm, tmp_path / "ntm.h5")
    result = run(runner, "plot", tmp_path / "ntm.h5", "--layout", "dnc", "-f", "png", "-f", "html")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning:") == 1 and (tmp_path / "ntm.png").exists() and (tmp_path / "ntm.html").exists()
    some = dict(dnc_copy_trace(L=5, N=16)[0].arrays)
    del some["usage"], some["free_gates"]
    scene = scene_of(Trace(some))
    assert [p.title for p in scene.panels if p.values is None] == ["Free gate (not recorded)", "Usage (not recorded)"]
    assert len(scene.warnings) == 1 and scene.warnings[0].endswith(
        "free_gates, usage: not recorded; their panels are left empty")


def test_the_default_layout_of_a_dnc_trace_is_the_grid(runner, tmp_path):
    t, _ = dnc_copy_trace(L=6, N=16)
    opts = PlotOptions().validated()
    grid = build_scene(Source.of_trace(t, opts), opts)
    assert [p.title for p in grid.panels] == ["Inputs", "Outputs", "Write Weightings", "Read Weightings"]
    attnviz.save(t, tmp_path / "d.h5")
    assert run(runner, "plot", tmp_path / "d.h5").exit_code == 0
    assert Image.open(tmp_path / "d.png").size == (800, 560)  # the 2x2 grid's


def test_usage_and_the_allocation_and_precedence_weightings_are_panels_of_their_own():
    t, _ = dnc_copy_trace(L=6, N=16)
    opts = PlotOptions(panels=("usage", "allocation_weightings", "precedence_weightings", "write_weightings"),
                       locations="all").validated()
    scene = build_scene(Source.of_trace(t, opts), opts)
    assert [p.title for p in scene.panels] == ["Usage", "Allocation Weightings", "Precedence Weightings",
                                               "Write Weightings"]
    for p in scene.panels:
        assert p.ylabel == "Location" and (p.vmin, p.vmax) == (0.0, 1.0) and p.rows[1] - p.rows[0] == 16
        assert np.allclose(p.values, t[p.plan.key][:, np.arange(*p.rows) % 16])


# ------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "html"])
def test_every_format_is_written_the_same_each_time(runner, tmp_path, fmt):
    t, _ = dnc_copy_trace(L=8, N=24)
    attnviz.save(t, tmp_path / "t.h5")
    first = attnviz.export(t, tmp_path / f"a.{fmt}", layout="dnc")[0].read_bytes()
    assert attnviz.export(t, tmp_path / f"b.{fmt}", layout="dnc")[0].read_bytes() == first
    result = run(runner, "plot", tmp_path / "t.h5", "--layout", "dnc", "-o", tmp_path / f"c.{fmt}")
    assert result.exit_code == 0, result.output
    if fmt != "html":  # (a page from the CLI is titled after its file)
        assert (tmp_path / f"c.{fmt}").read_bytes() == first  # the CLI draws what the API draws
    if fmt == "png":
        image = Image.open(io.BytesIO(first))
        assert image.size == (700, 1130)  # 7 x 11.3 inches at 100 dpi, for one head of each kind
        assert np.array_equal(attnviz.render(t, layout="dnc"), np.asarray(image.convert("RGB")))
    elif fmt == "html":
        text = first.decode()
        assert '"links"' in text and '"alt"' in text and "Allocation gate" in text


def test_the_png_paints_the_cells_matplotlib_draws():
    t, _ = dnc_copy_trace(L=8, N=24)
    opts = PlotOptions(layout="dnc", order="written").validated()
    scene = build_scene(Source.of_trace(t, opts), opts)
    checked = png_cells_match_matplotlib(scene)
    assert checked > 700  # every panel, the strips too


def test_a_long_trace_s_strips_keep_a_lone_open_gate_and_share_the_columns():
    T, N = 3001, 16
    arrays = copy_like_arrays(L=1500, N=N)
    gate = np.zeros(T, np.float32)
    gate[1234] = 1.0
    arrays.update(free_gates=gate, usage=np.zeros((T, N), np.float32))
    scene = scene_of(Trace(arrays))
    cols = {p.values.shape[0] for p in scene.panels if p.values is not None}
    assert len(cols) == 1 and cols.pop() < T  # a column per pixel, the same in every panel
    free = scene.panels[6]
    assert free.title == "Free gate" and free.series.max() == 1.0 and np.count_nonzero(free.series) == 1
    assert np.count_nonzero(free.values[:, 0] == 1.0) == 3  # spread over its neighbours, as a heatmap's maximum


# ----------------------------------------------------------------- bad input


def test_datasets_that_do_not_fit_the_heads_are_one_line(runner, tmp_path):
    t, _ = dnc_copy_trace(L=5, N=16)
    for key, value, message in (
            ("free_gates", np.stack([t["free_gates"]] * 2, axis=1), "has 2 read head(s) but read_weightings has 1"),
            ("read_modes", t["read_modes"][:, :2] / t["read_modes"][:, :2].sum(axis=1, keepdims=True),
             "has 2 modes; with 1 write head(s) there are 3")):
        with h5py.File(tmp_path / "bad.h5", "w") as f:
            for k, v in t.arrays.items():
                f.create_dataset(k, data=value if k == key else v)
        result = run(runner, "plot", tmp_path / "bad.h5", "--layout", "dnc")
        assert result.exit_code == 1 and f"dataset '{key}'" in result.stderr, result.stderr
        assert message in result.stderr or "expected" in result.stderr  # (or the trace format's own words)
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "bad.png").exists()


def test_options_that_do_not_apply_are_usage_errors(runner, tmp_path):
    t, _ = dnc_copy_trace(L=5, N=16)
    attnviz.save(t, tmp_path / "t.h5")
    cases = [
        (["plot", tmp_path / "t.h5", "--layout", "dnc", "--head", "0"],
         "layout dnc draws every head; it takes no --head"),
        (["plot", tmp_path / "t.h5", "--layout", "dnc", "--panels", "usage"], "layout dnc draws its own panels"),
        (["plot", tmp_path / "t.h5", "--layout", "dnc", "--grid", "3x3"], "layout dnc draws its own panels"),
        (["compare", tmp_path / "t.h5", tmp_path / "t.h5", "--layout", "dnc"],
         "layout dnc draws one trace's memory, with attnviz plot; a comparison is drawn in the grid or paper layout"),
        (["animate", tmp_path / "t.h5", "-o", tmp_path / "a.gif", "--layout", "dnc"],
         "an animation is drawn in the grid or paper layout"),
    ]
    for args, message in cases:
        result = run(runner, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.gif"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.csv").write_text("step,sequences\n")
    result = run(runner, "plot", tmp_path / "run", "--layout", "dnc")
    assert result.exit_code == 2 and "a run folder is drawn in the grid or paper layout" in result.stderr
    with pytest.raises(OptionError, match="unknown layout"):
        PlotOptions(layout="dnc2").validated()


# --------------------------------------------------------------------- the page


def link_colour(page, row: int, col: int, n: int) -> list[int]:
    """The colour of the link inset's cell at (row, col) of n x n (rows upwards)."""
    return page.page.evaluate(f"""() => {{
        const c = document.getElementById("link-matrix"), d = window.devicePixelRatio || 1;
        const S = 150, x = 44 + ({col} + 0.5) * S / {n}, y = 40 + S - ({row} + 0.5) * S / {n};
        return Array.from(c.getContext("2d").getImageData(Math.round(x * d), Math.round(y * d), 1, 1).data).slice(0, 3);
    }}""")


def test_the_page_shows_the_link_matrix_of_the_step_pointed_at(browser, tmp_path):  # noqa: F811 (the fixture)
    from attnviz.plot.colors import lut

    t, stored = dnc_copy_trace(L=8, N=24)
    attnviz.export(t, tmp_path / "d.html", layout="dnc", order="written")
    page = Page(browser, tmp_path / "d.html")
    assert page.page.locator("#links").is_hidden() is False
    assert page.page.evaluate("document.getElementById('link-matrix').dataset.step") == ""  # nothing pointed at yet
    step = 6
    x, y = point(page, 2, step, 0)
    page.page.mouse.move(x, y)
    assert page.readout() == f"Write Weightings \u00b7 step {step} \u00b7 location {stored[0]} \u00b7 " \
                             f"{t['write_weightings'][step, stored[0]]:.3f}"
    assert page.page.evaluate("document.getElementById('link-matrix').dataset.step") == str(step)
    top, ground = lut("attnviz")[255, :3].astype(int), lut("attnviz")[0, :3].astype(int)
    n = 8  # the locations in use: the items', in the order written
    link = t["link_matrices"][step]
    for k in range(n - 1):  # L[stored[k + 1], stored[k]]: written right after, a line beside the diagonal
        expect = lut("attnviz")[min(255, int(link[stored[k + 1], stored[k]] * 256)), :3].astype(int)
        assert np.abs(np.array(link_colour(page, k + 1, k, n)) - expect).max() <= 2, k
        assert (np.abs(np.array(link_colour(page, k + 1, k, n)) - top).max() <= 40) == (k < step)
    assert np.abs(np.array(link_colour(page, 0, 1, n)) - ground).max() <= 12  # (the other way round: nothing)
    x, y = point(page, 4, 3, 0)  # a gate strip reads out its value at the step
    page.page.mouse.move(x, y)
    assert page.readout() == f"Write gate \u00b7 step 3 \u00b7 {t['dnc_write_gates'][3]:.3f}"
    x, y = point(page, 7, 12, 2)  # the read modes by name
    page.page.mouse.move(x, y)
    assert page.readout() == f"Read modes \u00b7 step 12 \u00b7 mode forward \u00b7 {t['read_modes'][12, 2]:.3f}"
    assert page.errors == [] and page.external_requests() == []


def test_a_page_without_link_matrices_shows_none(browser, tmp_path):  # noqa: F811 (the fixture)
    t, _ = dnc_copy_trace(L=5, N=16, links=False)
    attnviz.export(t, tmp_path / "d.html", layout="dnc")
    page = Page(browser, tmp_path / "d.html")
    page.page.mouse.move(*point(page, 2, 3, 4))
    assert page.page.locator("#links").is_hidden() and page.errors == []


def test_one_head_stored_with_a_heads_axis_is_drawn_as_without():
    t, _ = dnc_copy_trace(L=5, N=16)
    a = dict(t.arrays)
    for k in ("write_weightings", "read_weightings", "dnc_write_gates", "free_gates", "read_modes"):
        a[k] = a[k][:, None]
    with_axis, without = scene_of(Trace(a), order="written"), scene_of(t, order="written")
    assert [p.title for p in with_axis.panels] == TITLES
    for p, q in zip(with_axis.panels, without.panels, strict=True):
        assert np.array_equal(p.values, q.values), p.title


def test_a_diverged_dnc_is_drawn_with_its_non_finite_values_named(runner, tmp_path, browser):  # noqa: F811
    from attnviz.plot.colors import NONFINITE_RGBA

    t, stored = dnc_copy_trace(L=6, N=16)
    a = {k: v.copy() for k, v in t.arrays.items()}
    a["free_gates"][9] = np.nan
    a["usage"][8:, stored[0]] = np.inf
    a["link_matrices"][11, stored[1], stored[0]] = np.nan
    attnviz.save(Trace(a, t.metadata), tmp_path / "nan.h5")
    result = run(runner, "plot", tmp_path / "nan.h5", "--layout", "dnc", "--order", "written", "-f", "png", "-f",
                 "html")
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "dataset 'free_gates': contains nan at step 9; 1 value NaN or infinite" in lines[0]
    assert "dataset 'usage': contains inf at step 8" in lines[1] and "5 values" in lines[1]
    scene = scene_of(Trace(a), order="written")
    assert scene.panels[6].nonfinite == "NaN" and scene.panels[-1].nonfinite == "+inf"
    page = Page(browser, tmp_path / "nan.html")
    page.page.mouse.move(*point(page, 2, 11, 0))
    assert page.page.evaluate("document.getElementById('link-matrix').dataset.step") == "11"
    assert link_colour(page, 1, 0, 6) == list(NONFINITE_RGBA[:3]) and page.errors == []


def test_a_dnc_memory_is_drawn_in_index_order_and_an_ntm_memory_rolled():
    """A DNC allocates wherever a location is free: its crop is the run from the lowest location in use
    to the highest, 0 at the bottom, never wrapped from N-1 to 0 as an NTM's walk is."""
    from attnviz.plot.plan import memory_rows, used_band
    from attnviz.plot.source import Source

    peaks = np.zeros(32)
    peaks[[1, 2, 30, 31]] = 1.0  # an NTM's walk across the end of memory; a DNC's writes at both ends
    assert used_band(peaks) == (29, 36)  # circular: 29..31, then 0..3
    assert used_band(peaks, circular=False) is None  # 1..31 is nearly all of it: the whole memory
    assert memory_rows(peaks, peaks, "auto", circular=False) == (0, 32)  # in index order, not rolled
    peaks[:] = 0
    peaks[[5, 9]] = 1.0
    assert used_band(peaks, circular=False) == used_band(peaks) == (4, 11)
    t, _ = dnc_copy_trace(L=5, N=16)
    assert not Source.of_trace(t, attnviz.PlotOptions()).circular
    assert Source.of_trace(Trace(copy_like_arrays(L=5, N=16)), attnviz.PlotOptions()).circular


def test_every_output_phase_is_marked():
    from attnviz.plot.plan import phase_starts

    mask = np.zeros(20, bool)
    mask[[3, 4, 9, 10, 11, 17]] = True
    assert phase_starts({}, mask) == (3, 9, 17)
    assert phase_starts({"task": "copy", "sequence_length": 4}, None) == (5,)
    assert phase_starts({}, None) == ()


def test_an_animation_of_traces_of_two_memory_sizes_is_one_line(runner, tmp_path):
    from pathlib import Path

    samples = Path(__file__).resolve().parent.parent / "sample_traces"
    result = run(runner, "animate", samples / "copy_len20.h5", samples / "dnc_copy_len20.h5", "-o", tmp_path / "a.gif")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "memory locations, but" in result.stderr and "has 32" in result.stderr and "has 128" in result.stderr
    assert not (tmp_path / "a.gif").exists()
