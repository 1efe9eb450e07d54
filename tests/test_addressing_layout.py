"""--layout addressing: one head's addressing stages (content, interpolation, shift, sharpening) in
every format, on one crop, with the stages a trace did not record marked, and the page's readout."""

import io

import h5py
import numpy as np
import pytest
from PIL import Image
from test_view import Page, browser  # noqa: F401 (a fixture)

import attnviz
from attnviz import Trace
from attnviz.errors import OptionError
from attnviz.plot import PlotOptions, Renderer, Source, build_scene, plot_trace
from attnviz.plot.anatomy import AnatomyScene, StripGrid, nice_above
from attnviz.trace import STAGES, stage_name

from conftest import copy_like_arrays, png_cells_match_matplotlib, run

TITLES = ["Content weighting", "After interpolation (gate)", "After shift", "Final (after sharpening)"]


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def address(wc, g, s, gamma, w0):
    """docs/trace-format.md's stages from a content weighting, gate, shift distribution and sharpening
    per step (T, ...): (gated, shifted, final) weightings, each (T, N)."""
    T, N = wc.shape
    R = (s.shape[1] - 1) // 2
    gated, shifted, final = (np.zeros((T, N)) for _ in range(3))
    prev = w0
    for t in range(T):
        gated[t] = g[t] * wc[t] + (1 - g[t]) * prev
        shifted[t] = sum(s[t, k + R] * np.roll(gated[t], k) for k in range(-R, R + 1))  # offset k: i -> i + k
        final[t] = shifted[t] ** gamma[t] / (shifted[t] ** gamma[t]).sum()
        prev = final[t]
    return gated, shifted, final


def stage_trace(L=6, N=32, heads=1, S=3, seed=0, drop=(), **meta) -> Trace:
    """A copy-like trace whose write and read heads' stages are made by ``address`` from random but
    plausible choices (each head starting at its own location); ``drop``: stages left out."""
    rng = np.random.default_rng(seed)
    arrays = copy_like_arrays(L=L, N=N)
    T = arrays["inputs"].shape[0]
    for kind in ("write", "read"):
        per = {k: [] for k in (*STAGES, "weightings")}
        for h in range(heads):
            beta = rng.uniform(0.5, 20, T)
            wc = softmax(beta[:, None] * rng.uniform(-1, 1, (T, N)))
            g = rng.uniform(0.02, 0.98, T)
            s = softmax(rng.normal(0, 2, (T, S)))
            gamma = 1 + rng.uniform(0.1, 9, T)
            gated, shifted, final = address(wc, g, s, gamma, np.eye(N)[3 * h + (kind == "read")])
            for k, v in zip((*STAGES, "weightings"), (wc, beta, g, gated, s, shifted, gamma, final), strict=True):
                per[k].append(v)
        for k, parts in per.items():
            a = np.stack(parts, axis=1)
            name = f"{kind}_weightings" if k == "weightings" else stage_name(kind, k)
            if k not in drop:
                arrays[name] = a[:, 0] if heads == 1 else a
    return Trace(arrays, {"task": "copy", "sequence_length": L, **meta})


def scene_of(trace, **kw) -> AnatomyScene:
    opts = PlotOptions(layout="addressing", **kw).validated()
    return build_scene(Source.of_trace(trace, opts), opts)


def heads_of(trace, key, head):
    a = trace[key]
    return a[:, head] if a.ndim == (3 if key.endswith(("weightings", "shifts")) else 2) else a


# ------------------------------------------------------------------ the panels


def test_the_panels_hold_the_head_s_stages_and_the_strips_their_values():
    t = stage_trace()
    scene = scene_of(t)
    assert isinstance(scene, AnatomyScene) and scene.warnings == []
    assert scene.suptitle == "Addressing of read head 0 \u00b7 copy \u00b7 length 6"
    assert [p.plan.title for p in scene.panels[:4]] == TITLES
    assert [p.plan.key for p in scene.panels] == [stage_name("read", s) for s in (
        "content_weightings", "gated_weightings", "shifted_weightings")] + ["read_weightings"] + [
        stage_name("read", s) for s in ("gates", "key_strengths", "sharpenings", "shifts")]
    rows = scene.panels[0].rows
    for p in scene.panels[:4]:
        assert p.rows == rows and p.time == (0, 13) and p.modulo == 32  # one crop, one time axis
        assert np.allclose(p.values, t[p.plan.key][:, np.arange(*rows) % 32])
        assert (p.vmin, p.vmax) == (0.0, 1.0)
    for p, stage, symbol, bottom in zip(scene.panels[4:7], ("gates", "key_strengths", "sharpenings"),
                                        ("g", "\u03b2", "\u03b3"), (0.0, 0.0, 1.0), strict=True):
        values = t[stage_name("read", stage)]
        assert isinstance(p, StripGrid) and p.ylabel == symbol
        assert np.allclose(p.series, values) and p.data == (values.min(), values.max())
        assert p.plan.title == f"{p.name} ({values.min():.3g} to {values.max():.3g})"
        top = 1.0 if stage == "gates" else nice_above(values.max())
        assert p.axis == (bottom, top) and top >= values.max()
        assert p.yticks.labels == (f"{bottom:.3g}", f"{top:.3g}")
        # a column is filled from the bottom up to its value: its filled rows stand for the value
        height = p.values.shape[1]
        filled = (p.values > 0).sum(axis=1)
        assert np.all((p.values > 0) == (np.arange(height)[None, :] < filled[:, None]))  # bars, from below
        assert np.allclose(bottom + filled / height * (top - bottom), values, atol=(top - bottom) / height)
    shift = scene.panels[7]
    assert shift.plan.title == "Shift distribution s" and shift.ylabel == "Offset" and shift.rows == (-1, 2)
    assert np.allclose(shift.values, t["read_shifts"]) and shift.yticks.labels == ("-1", "0", "1")
    assert [p.xlabel for p in scene.panels] == [""] * 7 + ["Time"]  # one time axis, labelled at the bottom


def test_the_crop_is_shared_and_holds_every_stage_s_locations():
    """A head whose content weighting sits at location 40 while its gate keeps it walking from 0:
    the crop holds 40 too (the final weighting alone would be cropped to the walk)."""
    T, N = 11, 64
    wc = np.full((T, N), 0.001 / (N - 1))
    wc[:, 40] = 0.999
    g, s, gamma = np.full(T, 0.02), np.tile([0.0, 0.05, 0.95], (T, 1)), np.full(T, 3.0)
    gated, shifted, final = address(wc, g, s, gamma, np.eye(N)[0])
    arrays = copy_like_arrays(L=5, N=N)
    arrays.update(read_weightings=final, read_content_weightings=wc, read_gates=g, read_gated_weightings=gated,
                  read_shifts=s, read_shifted_weightings=shifted, read_sharpenings=gamma)
    scene = scene_of(Trace(arrays))
    rows = {p.rows for p in scene.panels[:4]}
    assert len(rows) == 1
    (y0, y1), = rows
    shown = set(np.arange(y0, y1) % N)
    assert 40 in shown and set(np.flatnonzero(final.max(axis=0) > 0.05)) <= shown  # location 40 and the walk
    assert final[:, 40].max() < 0.05 and y1 - y0 < N
    alone = attnviz.plot.PlotOptions().validated()  # the default layout crops to the final weightings
    assert 40 not in set(np.arange(*build_scene(Source.of_trace(Trace(arrays), alone), alone).panels[3].rows) % N)
    assert scene_of(Trace(arrays), locations="all").panels[0].rows[1] - scene_of(
        Trace(arrays), locations="all").panels[0].rows[0] == N
    window = scene_of(Trace(arrays), locations=(30, 50))
    for p in window.panels[:4]:  # a window of locations reads those columns of every stage
        assert p.rows == (30, 50) and np.allclose(p.values, arrays[p.plan.key][:, 30:50])


def test_the_chosen_head_of_several_and_the_default():
    t = stage_trace(heads=3)
    assert scene_of(t).head == ("read", 0) and scene_of(t, head=2).head == ("read", 2)  # a number: a read head
    for head, kind, h in (("read:1", "read", 1), ("write:2", "write", 2)):
        scene = scene_of(t, head=head)
        assert scene.suptitle.startswith(f"Addressing of {kind} head {h} ")
        for p in scene.panels:
            assert p.plan.key.startswith(kind)
            if p.plan.key.endswith("weightings"):
                assert np.allclose(p.values, heads_of(t, p.plan.key, h)[:, np.arange(*p.rows) % 32])
        assert np.allclose(scene.panels[4].series, t[f"{kind}_gates"][:, h])
        assert np.allclose(scene.panels[7].values, t[f"{kind}_shifts"][:, h])


def test_a_long_trace_s_columns_stand_for_blocks_of_steps():
    """More steps than pixel columns: a column's bar is the maximum of its steps (a lone open gate
    still shows, full height), or their mean; every panel, and the readout, has the same columns."""
    T, N = 3001, 16
    arrays = copy_like_arrays(L=1500, N=N)
    gates = np.zeros(T)
    gates[1234] = 1.0
    arrays.update(read_gates=gates, read_key_strengths=np.linspace(0, 10, T),
                  read_shifts=np.tile([0.1, 0.2, 0.7], (T, 1)))
    t = Trace(arrays)
    scene = scene_of(t)
    gate = scene.panels[4]
    cols = gate.values.shape[0]
    assert cols < T and all(p.values.shape[0] == cols for p in scene.panels if p.values is not None)
    assert scene.readout["cols"] == cols
    from attnviz.plot.reduce import pixel_bins

    block = int(np.searchsorted(pixel_bins(T, cols), 1234, "right")) - 1
    assert np.flatnonzero(gate.series) == [block] and gate.series[block] == 1.0
    assert np.all(gate.values[block] > 0)  # a full bar
    strength = scene.panels[5]
    assert strength.series[-1] == 10.0 and strength.axis == (0.0, 10.0)
    mean = scene_of(t, reduce="mean").panels[5].series
    edges = np.append(pixel_bins(T, cols), T)
    assert np.allclose(mean, [np.linspace(0, 10, T)[a:b].mean() for a, b in zip(edges[:-1], edges[1:], strict=True)])


def test_stages_not_recorded_are_marked_and_named_once(runner, tmp_path):
    t = stage_trace(drop=("gates", "shifts", "gated_weightings"))
    scene = scene_of(t)
    empty = [p.title for p in scene.panels if p.values is None]
    assert empty == ["After interpolation (gate) (not recorded)", "Gate g (not recorded)",
                     "Shift distribution s (not recorded)"]
    assert len(scene.warnings) == 1
    assert scene.warnings[0].endswith("read_gated_weightings, read_gates, read_shifts: not recorded; their panels "
                                      "are left empty")
    drawn = plot_trace(t, layout="addressing")
    assert [ax.texts[0].get_text() for ax in drawn.axes if ax.texts] == ["not recorded"] * 3
    bare = Trace(copy_like_arrays(L=5, N=16))  # no stages at all: the final weighting alone
    scene = scene_of(bare)
    assert [p.values is not None for p in scene.panels] == [False, False, False, True, False, False, False, False]
    assert len(scene.warnings) == 1 and "records no addressing stages of the read heads" in scene.warnings[0]
    attnviz.save(bare, tmp_path / "bare.h5")
    result = run(runner, "plot", tmp_path / "bare.h5", "--layout", "addressing", "-f", "png", "-f", "html")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning:") == 1 and (tmp_path / "bare.png").exists()
    assert '"steps"' in (tmp_path / "bare.html").read_text()


def test_a_stage_that_does_not_fit_its_head_is_one_line(runner, tmp_path):
    arrays = stage_trace().arrays
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v[..., :20] if k == "read_content_weightings" else v)
    result = run(runner, "plot", tmp_path / "bad.h5", "--layout", "addressing")
    assert result.exit_code == 1 and "read_content_weightings" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()


# ------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "html"])
def test_every_format_is_written_the_same_each_time(runner, tmp_path, fmt):
    t = stage_trace()
    attnviz.save(t, tmp_path / "t.h5")
    first = attnviz.export(t, tmp_path / f"a.{fmt}", layout="addressing")[0].read_bytes()
    assert attnviz.export(t, tmp_path / f"b.{fmt}", layout="addressing")[0].read_bytes() == first
    result = run(runner, "plot", tmp_path / "t.h5", "--layout", "addressing", "--head", "read:0", "-o",
                 tmp_path / f"c.{fmt}")
    assert result.exit_code == 0, result.output
    if fmt != "html":  # (a page from the CLI is titled after its file)
        assert (tmp_path / f"c.{fmt}").read_bytes() == first  # the CLI draws what the API draws
    if fmt == "png":
        image = Image.open(io.BytesIO(first))
        assert image.size == (700, 1195)  # 7 x 11.95 inches at 100 dpi
        assert np.array_equal(attnviz.render(t, layout="addressing"), np.asarray(image.convert("RGB")))
    elif fmt == "svg":
        assert first.startswith(b"<?xml")
    elif fmt == "pdf":
        assert first.startswith(b"%PDF-")
    else:
        assert '"steps"' in first.decode() and "Final (after sharpening)" in first.decode()


def test_the_png_paints_the_cells_matplotlib_draws():
    t = stage_trace(L=8)
    opts = PlotOptions(layout="addressing", colorbar=True).validated()
    scene = build_scene(Source.of_trace(t, opts), opts)
    # a bar strip's rows are a pixel high: not beside a spine, nor a bar's top
    checked = png_cells_match_matplotlib(scene, lambda p, i, j: j > 0 and p.values[i, j] != p.values[i, j - 1])
    assert checked > 2000


def test_the_pictures_of_a_strip_show_bars_and_markers_in_ink():
    t = stage_trace(L=6)
    scene = scene_of(t)
    renderer = Renderer(scene.opts)
    img = renderer.pixels(scene)[:, :, :3].astype(int)
    top, bottom, left, right = renderer.frame(scene).boxes[4]  # the gate
    strip = img[top:bottom, left:right]
    ground, bar = strip[0, 0], strip[-1, 1]  # a gate of at most 0.98 never reaches the top row
    assert ground.min() > 240 and bar[2] > bar[0] + 60  # near white; blue
    x = left + round((7 - 0) * (right - left) / 13)  # the phase marker before step 7, in grey ink
    assert np.any(np.all(np.abs(img[top:bottom, x] - 0x4D) <= 2, axis=1))


# ----------------------------------------------------------------- --head


def test_head_by_kind_and_its_mistakes(runner, tmp_path):
    attnviz.save(stage_trace(heads=2), tmp_path / "t.h5")
    for head in ("read:1", "write:0", "1"):
        result = run(runner, "plot", tmp_path / "t.h5", "--layout", "addressing", "--head", head, "-o",
                     tmp_path / "h.svg")
        assert result.exit_code == 0, result.output
    assert "Addressing of read head 1" in plot_trace(attnviz.load(tmp_path / "t.h5"), layout="addressing",
                                                    head=1).figure.get_suptitle()
    cases = [
        (["--layout", "addressing", "--head", "read:5"], "dataset 'read_weightings': read head 5 does not exist; "
                                                         "it has 2 read heads, 0 to 1"),
        (["--layout", "addressing", "--head", "sideways:0"], "head 'sideways:0' is not a head"),
        (["--layout", "addressing", "--head", "read:"], "head 'read:' is not a head"),
        (["--layout", "addressing", "--head", "-1"], "head -1 does not exist; heads are numbered from 0"),
        (["--head", "read:0"], "names a kind of head, which only layout addressing draws"),
        (["--layout", "addressing", "--grid", "2x4"], "layout addressing draws its own panels"),
    ]
    for args, message in cases:
        result = run(runner, "plot", tmp_path / "t.h5", *args, "-o", tmp_path / "x.png")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "x.png").exists()
    result = run(runner, "plot", tmp_path / "t.h5", "--head", "1", "-o", tmp_path / "grid.png")  # as before
    assert result.exit_code == 0
    for command in (["compare", tmp_path / "t.h5", tmp_path / "t.h5"], ["animate", tmp_path / "t.h5", "-o",
                                                                         tmp_path / "a.gif"]):
        result = run(runner, *command, "--layout", "addressing")
        assert result.exit_code == 2 and "layout addressing draws one trace's head" in result.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.csv").write_text("step,sequences\n")
    result = run(runner, "plot", tmp_path / "run", "--layout", "addressing")
    assert result.exit_code == 2 and "a run folder is drawn in the grid or paper layout" in result.stderr
    assert not (tmp_path / "run" / "figures").exists()
    with pytest.raises(OptionError, match="is not a head"):
        PlotOptions(layout="addressing", head="read:one").validated()
    assert PlotOptions(layout="addressing").validated().addressed_head == ("read", 0)
    assert PlotOptions(layout="addressing", head=2).validated().addressed_head == ("read", 2)


# --------------------------------------------------------------- the page


def point(page, panel: int, step: int, row: float) -> tuple[float, float]:
    """Where the centre of a panel's cell at (step, row) is in the window (scrolled into view): the
    panels of an anatomy have sizes of their own."""
    page.page.locator(f"canvas[data-panel='{panel}']").scroll_into_view_if_needed()
    geo = page.page.evaluate(f"""() => {{
        const p = window.ATTNVIZ.frames[0].panels[{panel}];
        const r = document.querySelector("canvas[data-panel='{panel}']").getBoundingClientRect();
        return {{x: r.left, y: r.top, size: p.size, time: p.time, rows: p.rows}};
    }}""")
    (W, H), (t0, t1), (r0, r1) = geo["size"], geo["time"], geo["rows"]
    return (geo["x"] + 58 + (step - t0 + 0.5) / (t1 - t0) * W, geo["y"] + 26 + H - (row - r0 + 0.5) / (r1 - r0) * H)


def test_the_page_reads_out_a_step_s_stages(browser, tmp_path):  # noqa: F811 (the fixture)
    t = stage_trace()
    attnviz.export(t, tmp_path / "a.html", layout="addressing")
    page = Page(browser, tmp_path / "a.html")
    step, N = 4, 32
    rows = scene_of(t).panels[3].rows
    location = int(np.argmax(t["read_weightings"][step]))
    row = next(r for r in range(*rows) if r % N == location)
    x, y = point(page, 3, step, row)
    page.page.mouse.move(x, y)
    cell, line = page.readout().split("\n")
    assert cell == f"Final (after sharpening) \u00b7 step {step} \u00b7 location {location} \u00b7 " \
                   f"{t['read_weightings'][step, location]:.3f}"
    s = t["read_shifts"][step]
    content = t["read_content_weightings"][step]
    peak = int(np.argmax(content))
    assert line == (f"read head 0 \u00b7 step {step} \u00b7 gate {t['read_gates'][step]:.3f} \u00b7 key strength "
                    f"{t['read_key_strengths'][step]:.3f} \u00b7 sharpening {t['read_sharpenings'][step]:.3f} \u00b7 "
                    f"shift -1: {s[0]:.3f}, 0: {s[1]:.3f}, +1: {s[2]:.3f} \u00b7 content peak: location {peak} "
                    f"({content[peak]:.3f})")
    x, y = point(page, 5, step, 10)  # the key strength's bar strip: its value at the step
    page.page.mouse.move(x, y)
    assert page.readout().split("\n") == [f"Key strength \u03b2 \u00b7 step {step} \u00b7 "
                                          f"{t['read_key_strengths'][step]:.3f}", line]
    assert page.view()["t"] == step and page.errors == [] and page.external_requests() == []


def test_the_page_of_a_trace_without_stages_says_so(browser, tmp_path):  # noqa: F811 (the fixture)
    attnviz.export(Trace(copy_like_arrays(L=5, N=16)), tmp_path / "b.html", layout="addressing", head="write:0")
    page = Page(browser, tmp_path / "b.html")
    x, y = point(page, 3, 2, 2)
    page.page.mouse.move(x, y)
    assert page.readout().split("\n")[1] == ("write head 0 \u00b7 step 2 \u00b7 gate not recorded \u00b7 key strength "
                                             "not recorded \u00b7 sharpening not recorded \u00b7 shift not recorded "
                                             "\u00b7 content weighting not recorded")
    assert page.errors == []
