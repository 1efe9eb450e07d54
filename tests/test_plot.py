"""Pictures that can be wrong: the drawing pipeline's decisions, checked in pixels and artists."""

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz import AttnvizError, Trace
from attnviz.errors import OptionError
from attnviz.plot import PlotOptions, Renderer, Source, build_scene, draw_panel, draw_scene, export, plot_trace
from attnviz.plot.colors import MASK_RGBA, contrast, lightness, lut
from attnviz.plot.plan import used_band

from conftest import copy_like_arrays

TOP = lut("attnviz")[255, :3].astype(int)  # the colour of 1.0
BOTTOM = lut("attnviz")[0, :3].astype(int)  # the colour of 0.0


def scene_of(trace, **kw):
    opts = PlotOptions(**kw).validated()
    return build_scene(Source.of_trace(trace, opts), opts)


def render(trace, **kw):
    """(scene, RGB pixels (H, W, 3) int, panel boxes) of the PNG back end."""
    scene = scene_of(trace, **kw)
    r = Renderer(scene.opts)
    img = np.asarray(Image.open(io.BytesIO(r.png(scene))).convert("RGB")).astype(int)
    return scene, img, r.frame(scene).boxes


def is_colour(pixels, rgb, tol=3):
    return np.abs(pixels - np.asarray(rgb)).max(axis=-1) <= tol


def copy_trace(L=10, N=64, start=0, diffuse_writes=0, slip=None, seed=0, mask=True, **meta):
    """A perfect copy (outputs = targets) whose heads walk up from ``start``, wrapping at N."""
    rng = np.random.default_rng(seed)
    T, width = 2 * L + 1, 8
    seq = rng.integers(0, 2, (L, width)).astype(np.float32)
    x = np.zeros((T, width + 1), np.float32)
    x[:L, :width], x[L, width] = seq, 1
    y = np.zeros((T, width), np.float32)
    y[L + 1 :] = seq
    ww, rw = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
    read_at = list(range(L)) if slip is None else list(range(slip)) + [slip - 1] + list(range(slip, L - 1))
    for t in range(T):
        ww[t, (start + min(t, L)) % N] = 1
        rw[t, (start + (read_at[t - L - 1] if t > L else 0)) % N] = 1
    for t in range(diffuse_writes):
        ww[t] = 0
        ww[t, [(start + t + d) % N for d in (-1, 0, 1)]] = [0.3, 0.4, 0.3]
    out = y.copy()
    if slip is not None:  # reading one behind from the slip on: outputs are the previous item
        for t in range(L + 1 + slip, T):
            out[t] = seq[read_at[t - L - 1]]
    arrays = {"inputs": x, "outputs": out, "targets": y, "write_weightings": ww, "read_weightings": rw}
    if mask:
        arrays["output_mask"] = np.arange(T) > L
    return Trace(arrays, {"task": "copy", "sequence_length": L, **meta})


# ---------------------------------------------------------------- the colormap


def test_default_colormap_rises_in_lightness_from_blue_to_bright_red():
    from attnviz.plot.colors import get_cmap

    table = get_cmap("attnviz").resampled(1024)(np.linspace(0, 1, 1024))[:, :3]
    assert np.all(np.diff(lightness(table)) > 0)  # the strongest weight is the lightest colour
    assert np.all(np.diff(lightness(lut("attnviz")[:, :3] / 255)) > -0.5)  # 8-bit rounding aside
    assert contrast(table[0], table[-1]) >= 4.0
    lo, hi = table[0], table[-1]
    assert lo[2] > lo[0] and hi[0] > 0.9 and hi[0] > 2 * hi[2]  # blue low, red high
    import colorsys

    hue, saturation, _ = colorsys.rgb_to_hsv(*hi)
    assert min(hue, 1 - hue) * 360 <= 10 and saturation >= 0.6  # red, not orange (#ff6a2a: 18 degrees)
    from matplotlib import colormaps

    attnviz.register_colormap()
    assert colormaps["attnviz"].name == "attnviz" and "attnviz_r" in colormaps


def test_the_focus_stays_light_on_a_dark_ground_for_every_colour_vision():
    from attnviz.plot.colors import CVD_SIMULATIONS, get_cmap, simulate

    table = get_cmap("attnviz").resampled(256)(np.linspace(0, 1, 256))[:, :3]
    for name, matrix in CVD_SIMULATIONS.items():
        seen = simulate(table, matrix)
        assert contrast(seen[0], seen[-1]) >= 4.0, name  # docs/figure.md's table
        assert lightness(seen[-1]) > lightness(seen[int(0.75 * 255)]) > lightness(seen[0]) + 25, name
    deuteranopia = lightness(simulate(table, CVD_SIMULATIONS["deuteranopia"]))
    assert np.all(np.diff(deuteranopia) > 0)


def test_every_matplotlib_colormap_name_still_works_and_typos_get_suggestions():
    res = plot_trace(copy_trace(), cmap="viridis", panel_cmaps={"inputs": "gray"})
    assert res.images["Outputs"].get_cmap().name == "viridis"
    assert res.images["Inputs"].get_cmap().name == "gray"
    with pytest.raises(AttnvizError, match="did you mean viridis"):
        Renderer(PlotOptions(cmap="viridi"))
    with pytest.raises(AttnvizError, match="did you mean turbo"):
        plot_trace(copy_trace(), panel_cmaps={"reads": "turbp"})


# ------------------------------------------------------------ panels and scales


def test_rows_are_labelled_by_kind_and_scales_follow_the_kind():
    t = Trace(copy_like_arrays(L=5, N=16, full=True))
    res = plot_trace(t, layout="paper", panels=None, locations="all")
    labels = {ax.get_title(): ax.get_ylabel() for ax in res.axes}
    assert labels == {"Inputs": "Channel", "Outputs": "Bit", "Adds": "Element", "Reads": "Element",
                      "Write Weightings": "Location", "Read Weightings": "Location"}
    clim = {k: im.get_clim() for k, im in res.images.items()}
    assert clim["Outputs"] == clim["Write Weightings"] == (0.0, 1.0)
    lo, hi = clim["Adds"]
    assert lo == -hi and hi >= np.abs(t["adds"]).max()  # signed: centred on 0
    assert res.images["Adds"].get_cmap().name == "RdBu_r" and res.images["Outputs"].get_cmap().name == "attnviz"


def test_unsure_outputs_are_not_painted_as_sure():
    arrays = copy_like_arrays(L=5, N=16)
    arrays["outputs"] = np.random.default_rng(0).uniform(0.31, 0.65, arrays["outputs"].shape).astype(np.float32)
    scene, img, boxes = render(Trace(arrays), panels=("outputs",))
    top, bottom, left, right = boxes[0]
    panel = img[top:bottom, left:right]
    assert scene.panels[0].vmin == 0.0 and scene.panels[0].vmax == 1.0
    assert not is_colour(panel, TOP, 40).any() and not is_colour(panel, BOTTOM, 40).any()


def test_limits_override_the_kind():
    res = plot_trace(copy_trace(), limits={"outputs": (-1.0, 2.0), "write_weightings": (None, 0.5)})
    assert res.images["Outputs"].get_clim() == (-1.0, 2.0)
    assert res.images["Write Weightings"].get_clim() == (0.0, 0.5)


# --------------------------------------------------------------------- the crop


def test_crop_to_the_memory_in_use_with_true_location_numbers():
    scene, img, boxes = render(copy_trace(L=10, N=128))
    ww = scene.panels[2]
    assert ww.rows == (0, 12) and ww.ylabel == "Location (12 of 128)"  # 0-10 in use, then a multiple of 4
    assert scene.panels[3].rows == ww.rows  # the same range in the read panel
    top, bottom, left, right = boxes[2]
    hot = is_colour(img[top:bottom, left:right], TOP)
    rows = np.nonzero(hot.any(axis=1))[0]
    assert rows.min() < 0.2 * (bottom - top) and rows.max() > 0.05 * (bottom - top)  # the walk fills the panel
    full = scene_of(copy_trace(L=10, N=128), locations="all").panels[2]
    assert full.rows == (68, 196) and full.ylabel == "Location"  # every location, the walk (0-10) mid-panel
    uniform = copy_trace(L=10, N=128)
    for k in ("write_weightings", "read_weightings"):
        uniform.arrays[k][:] = 1 / 128
    assert scene_of(uniform).panels[2].rows == scene_of(uniform, locations="all").panels[2].rows == (0, 128)
    window = scene_of(copy_trace(L=10, N=128), locations=(4, 40)).panels[2]
    assert window.rows == (4, 40) and window.values.shape[1] == 36


def test_a_walk_that_wraps_is_rolled_with_true_tick_labels():
    t = copy_trace(L=10, N=64, start=58)  # writes 58..63, then 0..4
    scene = scene_of(t)
    ww = scene.panels[2]
    assert ww.rows == (56, 72) and ww.modulo == 64
    res = draw_scene(scene)
    ax = res.axes[2]
    ax.figure.canvas.draw()
    labels = {int(round(v)): tk.get_text() for v, tk in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
    assert max(labels) >= 64 and min(labels) < 64
    assert all(text == str(v % 64) for v, text in labels.items())
    # in the pixels: the focus climbs without a break from the bottom to the top of the panel
    scene, img, boxes = render(t)
    top, bottom, left, right = boxes[2]
    hot = is_colour(img[top:bottom, left:right], TOP)
    cols = [c for c in range(right - left) if hot[:, c].any()]
    mean_row = [np.nonzero(hot[:, c])[0].mean() for c in cols[: len(cols) // 2]]
    assert np.all(np.diff(mean_row) <= 0) and mean_row[0] - mean_row[-1] > 0.4 * (bottom - top)


@pytest.mark.parametrize("used, N, band", [
    ([0, 1, 2, 3], 128, (0, 5)),
    ([40], 128, (40, 41)),
    ([126, 127, 0, 1, 2, 3, 4, 5], 128, (124, 136)),
    ([5, 6, 7, 8, 9, 10, 11, 12, 13, 14], 128, (4, 16)),  # a margin, then multiples of 4
    (list(range(100)), 128, (0, 112)),
    (list(range(20, 120)), 128, (8, 128)),
    (list(range(4, 126)), 128, None),  # the crop and its margins would be the whole memory: draw it all
    ([], 128, None),  # nothing focused (an untrained, uniform model): draw it all
])
def test_used_band(used, N, band):
    peaks = np.full(N, 1 / N)
    peaks[used] = 0.9
    assert used_band(peaks) == band


def down_walk(L, N=128, T=None):
    """A copy whose write head walks down from location 0 (0, N-1, N-2, ...) on every step, as the
    bundled model's does, while the read head waits at 0 until the delimiter, then walks the same way."""
    T = T or 2 * L + 1
    arrays = copy_like_arrays(L=L, N=N)
    ww, rw = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
    for t in range(T):
        ww[t, -t % N] = 1
        rw[t, -max(0, t - L) % N] = 1
    arrays.update(write_weightings=ww, read_weightings=rw)
    return Trace(arrays, {"task": "copy", "sequence_length": L})


def in_one_piece_and_off_the_edges(panel, steps):
    """The focus moves at most one row a step over ``steps``, and never sits in the panel's two top
    or two bottom rows."""
    rows = panel.values[steps].argmax(axis=1)
    assert np.all(np.abs(np.diff(rows)) <= 1), f"{panel.title}: the walk jumps"
    assert rows.min() >= 2 and rows.max() <= panel.values.shape[1] - 3, f"{panel.title}: a focus on an edge"


@pytest.mark.parametrize("L, band", [(50, (16, 144)), (120, (4, 132))])
def test_a_walk_over_the_whole_memory_is_rolled_in_one_piece(L, band):
    """A copy of 50 leaves 1-27 unused, and the memory is cut open in their middle; one of 120 uses
    every location, and is cut where the heads spend least time (1-8, passed once each)."""
    scene = scene_of(down_walk(L))
    write, read = scene.panels[2:]
    assert write.rows == read.rows == band and write.ylabel == "Location"
    in_one_piece_and_off_the_edges(read, slice(None))
    in_one_piece_and_off_the_edges(write, slice(0, L + 1))  # on to the delimiter: 0, 127, ... 128 - L
    if L == 50:
        in_one_piece_and_off_the_edges(write, slice(None))
    assert scene_of(down_walk(L), locations="all").panels[2].rows == band


def test_the_shipped_length_50_sample_is_rolled_in_one_piece():
    from test_view import SAMPLES

    scene = scene_of(attnviz.load(SAMPLES / "copy_len50.h5"), layout="paper")
    write, read = scene.panels[4:]
    assert write.rows[1] - write.rows[0] == 128 and write.rows[0] > 0
    for panel in (write, read):
        in_one_piece_and_off_the_edges(panel, slice(None))


@pytest.mark.parametrize("used, dwell, band", [
    ([0] + list(range(28, 128)), None, (16, 144)),  # the longest unused stretch (1-27) cut in its middle
    (list(range(128)), {k: 0.2 for k in range(40, 48)}, (44, 172)),  # all in use: where heads spend least time
    (list(range(4, 124)), None, (0, 128)),  # the end of memory is unused already: not rolled
    ([], None, (0, 128)),  # nothing focused
])
def test_whole_memory(used, dwell, band):
    from attnviz.plot.plan import whole_memory

    peaks, time = np.full(128, 0.01), np.full(128, 2.0)
    peaks[used] = 0.9
    for k, v in (dwell or {}).items():
        time[k] = v
    assert whole_memory(peaks, time) == band


def test_a_location_window_may_wrap(runner, tmp_path):
    from attnviz.plot import MemoryReader

    t = copy_trace(L=10, N=128, start=120)  # writes 120..127, then 0..2
    columns = []

    class Counting(MemoryReader):
        def read(self, name, dataset, rows=slice(None), cols=None):
            if cols is not None:
                columns.append((cols.start, cols.stop))
            return super().read(name, dataset, rows, cols)

    opts = PlotOptions(locations=(100, 10)).validated()  # 100..127, then 0..9
    ww = build_scene(Source(Counting(t), "/", opts), opts).panels[2]
    assert ww.rows == (100, 138) and ww.ylabel == "Location (38 of 128)"
    np.testing.assert_array_equal(ww.values, t["write_weightings"][:, np.r_[100:128, 0:10]])
    assert set(columns) == {(100, 128), (0, 10)}  # only those locations are read
    assert ww.yticks.wraps == (127.5,) and "0" in ww.yticks.labels
    assert scene_of(t, locations=(-28, 10)).panels[2].rows == (100, 138)
    attnviz.save(t, tmp_path / "t.h5")
    from conftest import run

    r = run(runner, "plot", tmp_path / "t.h5", "--locations", "100:10", "-o", tmp_path / "w.png")
    assert r.exit_code == 0 and (tmp_path / "w.png").exists()
    r = run(runner, "plot", tmp_path / "t.h5", "--locations", "10:10", "-o", tmp_path / "e.png")
    assert r.exit_code != 0 and "location window 10:10 is empty for 128 locations" in r.stderr
    assert not (tmp_path / "e.png").exists()


@pytest.mark.parametrize("lo, hi, most, modulo", [
    (0, 41, 7, None), (0, 241, 7, None), (0, 200_000, 7, None), (0, 9, 6, None), (0, 20, 6, None),
    (84, 136, 6, 128), (16, 144, 6, 128), (100, 138, 6, 128), (0, 12, 6, 128), (90, 140, 6, 120), (56, 72, 6, 64),
])
def test_ticks_are_round_and_evenly_spaced_across_the_wrap(lo, hi, most, modulo):
    from attnviz.plot.plan import axis_ticks

    ticks = axis_ticks(lo, hi, most, modulo)
    step = ticks.steps[0]
    assert 2 <= len(ticks.positions) <= most and all(lo <= v < hi for v in ticks.positions)
    assert set(np.diff(ticks.positions)) == {step}  # evenly spaced, across the wrap too
    assert ticks.labels == tuple(str(v % modulo if modulo else v) for v in ticks.positions)  # true numbers
    assert all(int(label) % step == 0 for label in ticks.labels)
    assert str(step).rstrip("0") in ("1", "2", "25", "5") or (modulo and modulo % step == 0 and step & (step - 1) == 0)
    wraps = tuple(k * modulo - 0.5 for k in range(1, 3) if lo < k * modulo < hi) if modulo else ()
    assert ticks.wraps == wraps and (not wraps or "0" in ticks.labels)
    assert list(ticks.steps) == sorted(ticks.steps, reverse=True) and ticks.steps[-1] == 1


def test_every_back_end_draws_the_scenes_ticks_and_marks_the_wrap():
    t = copy_trace(L=20, N=128, start=110)  # the walk wraps from 127 to 0
    scene = scene_of(t)
    ww = scene.panels[2]
    assert ww.yticks.wraps == (127.5,) and ww.yticks.labels[-2:] == ("120", "0")
    res = draw_scene(scene)
    for ax, p in zip(res.axes, scene.panels, strict=True):
        assert list(ax.get_xticks()) == list(p.xticks.positions)
        assert [tk.get_text() for tk in ax.get_xticklabels()] == list(p.xticks.labels)
        assert list(ax.get_yticks()) == list(p.yticks.positions)
        assert [tk.get_text() for tk in ax.get_yticklabels()] == list(p.yticks.labels)
    wrap_lines = [line for line in res.axes[2].lines if line.get_alpha() is not None]
    assert len(wrap_lines) == 1 and list(wrap_lines[0].get_ydata()) == [127.5, 127.5]
    # in the PNG: a faint white line along the top of location 127's cells, the cells showing through
    scene, img, boxes = render(t)
    top, bottom, left, right = boxes[2]
    h = (bottom - top) / (ww.rows[1] - ww.rows[0])
    y = bottom - round((128 - ww.rows[0]) * h)
    line, below = img[y, left:right], img[y + int(h // 2), left:right]
    ground = is_colour(below, BOTTOM)
    assert ground.mean() > 0.9 and np.all(line[ground].sum(axis=1) > BOTTOM.sum() + 150)
    assert not is_colour(img[y - 1, left:right], line[ground][0]).any()  # one pixel row


# ------------------------------------------------- masks, markers, titles, spikes


def test_unscored_outputs_are_masked_in_both_back_ends():
    t = copy_trace(L=10, N=32)
    scene, img, boxes = render(t)
    top, bottom, left, right = boxes[1]
    panel = img[top + 2 : bottom - 2, left:right]
    grey = is_colour(panel, MASK_RGBA[:3]).all(axis=0)  # whole columns in the mask colour
    x_phase = round(11 / 21 * (right - left))
    assert grey[: x_phase - 2].all() and not grey[x_phase + 2 :].any()
    image = draw_scene(scene).images["Outputs"]
    data = image.get_array()
    assert np.ma.is_masked(data) and data.mask[:, :11].all() and not data.mask[:, 11:].any()


def test_title_and_phase_marker_by_default_and_off_on_request():
    t = copy_trace(L=10, N=32, step=500)
    scene = scene_of(t)
    assert scene.suptitle == "copy · step 500 · length 10" and scene.markers == (11,)
    assert scene_of(t, title=False, phase_marker=False).markers == ()
    assert scene_of(t, title=False).suptitle is None
    no_mask = copy_trace(L=10, N=32, mask=False)
    assert scene_of(no_mask).markers == (11,)  # from the copy metadata
    scene, img, boxes = render(t)
    top, bottom, left, right = boxes[2]
    x = left + round(11 / 21 * (right - left))
    column = img[top:bottom, x]
    assert 0.3 < is_colour(column, (255, 255, 255)).mean() < 0.7  # a dashed white line
    assert not is_colour(img[top:bottom, x - 3], (255, 255, 255)).any()


def test_a_layout_draws_what_was_recorded_and_says_what_was_not(runner, tmp_path):
    arrays = copy_like_arrays(L=5, N=16, full=True)
    del arrays["adds"]
    t = Trace(arrays)
    res = plot_trace(t, layout="paper")
    assert [ax.get_title() for ax in res.axes] == ["Inputs", "Outputs", "Adds (not recorded)", "Reads",
                                                   "Write Weightings", "Read Weightings"]
    assert len(res.warnings) == 1 and "'adds': not recorded" in res.warnings[0]
    with pytest.raises(AttnvizError, match="panel 'adds' needs dataset 'adds'"):
        plot_trace(t, panels=("inputs", "adds"))
    attnviz.save(t, tmp_path / "t.h5")
    from conftest import run

    r = run(runner, "plot", tmp_path / "t.h5", "--layout", "paper", "-f", "png", "-f", "svg")
    assert r.exit_code == 0 and (tmp_path / "t.png").exists() and (tmp_path / "t.svg").exists()
    assert r.stderr.count("warning:") == 1 and "dataset 'adds': not recorded" in r.stderr


def test_a_lone_spike_in_a_long_wide_trace_is_a_3x3_block():
    T, N = 20_000, 600  # reduced on both axes, like 200,000 x 2,048 (benchmarks/large_traces.py)
    ww = np.zeros((T, N), np.float32)
    ww[:, 0] = 1.0
    ww[12_345, 0], ww[12_345, 450] = 0.0, 1.0
    arrays = {"inputs": np.zeros((T, 2), np.float32), "outputs": np.zeros((T, 2), np.float32),
              "write_weightings": ww, "read_weightings": np.zeros((T, N), np.float32)}
    scene, img, boxes = render(Trace(arrays), locations=(0, N))  # every location, not rolled
    top, bottom, left, right = boxes[2]
    hot = is_colour(img[top:bottom, left:right], TOP)
    hot[-4:] = False  # the bottom row of location 0
    rows, cols = np.nonzero(hot)
    block = hot[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert block.shape[0] >= 3 and block.shape[1] >= 3 and block.all()
    assert abs(cols.mean() - 12_345 / T * (right - left)) <= 2
    assert abs((bottom - top - rows.mean()) - 450.5 / N * (bottom - top)) <= 2


# ------------------------------------------------------- one pipeline, two back ends


def test_png_and_matplotlib_paint_the_same_cell_colours():
    t = copy_trace(L=8, N=64, start=60)
    arrays = dict(t.arrays)
    rng = np.random.default_rng(1)
    arrays["outputs"] = rng.random(arrays["outputs"].shape).astype(np.float32)
    arrays["adds"] = rng.normal(size=(17, 6)).astype(np.float32)
    arrays["reads"] = rng.normal(size=(17, 6)).astype(np.float32)
    arrays["write_weightings"] = (0.97 * arrays["write_weightings"] + 0.03 * rng.random((17, 64))).astype(np.float32)
    t = Trace(arrays, t.metadata)
    scene, img, boxes = render(t, layout="paper", colorbar=True)
    from attnviz.plot.draw import default_style

    with default_style():
        fig = draw_scene(scene).figure
        fig.canvas.draw()
    mpl = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    assert mpl.shape == img.shape
    from attnviz.plot.plan import title_strip_inches

    strip = int(title_strip_inches(scene.opts) * scene.opts.dpi)
    assert scene.suptitle and (img[:strip] == mpl[:strip]).all()  # the title, painted in a strip of its own
    checked = 0
    for p, (top, bottom, left, right) in zip(scene.panels, boxes, strict=True):
        C, R = p.values.shape
        for i in range(C):
            for j in range(R):
                x = int(left + (i + 0.5) * (right - left) / C)
                y = int(bottom - (j + 0.5) * (bottom - top) / R)
                if any(abs(x - (left + (m - p.time[0]) * (right - left) / C)) < 2 for m in scene.markers):
                    continue
                assert np.abs(img[y, x] - mpl[y, x]).max() <= 2, (p.title, i, j, img[y, x], mpl[y, x])
                checked += 1
    assert checked > 500


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "html"])
def test_same_input_and_options_same_bytes(tmp_path, fmt):
    t = copy_trace(L=6, N=32, step=3)
    a = export(t, tmp_path / f"a.{fmt}", layout="paper", colorbar=True)[0].read_bytes()
    b = export(t, tmp_path / f"b.{fmt}", layout="paper", colorbar=True)[0].read_bytes()
    assert a == b
    if fmt == "svg":
        assert ET.fromstring(a).tag.endswith("svg")
    elif fmt == "pdf":
        assert a.startswith(b"%PDF-") and a.rstrip().endswith(b"%%EOF")


def test_every_format_reads_only_the_time_window():
    from attnviz.plot import MemoryReader

    t = copy_trace(L=40, N=32)
    reads = []

    class Counting(MemoryReader):
        def read(self, name, dataset, rows=slice(None), cols=None):
            a = super().read(name, dataset, rows, cols)
            if dataset != "output_mask":
                reads.append(a.shape[0])
            return a

    opts = PlotOptions(time=(30, 50)).validated()
    scene = build_scene(Source(Counting(t), "/", opts), opts)
    assert reads and max(reads) <= 20 and scene.panels[0].values.shape[0] == 20
    from attnviz.plot.draw import vector_bytes

    assert vector_bytes(scene, "svg").startswith(b"<?xml")


# ----------------------------------------------------------------- draw_panel


def test_draw_panel_takes_what_seaborn_heatmap_takes():
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    data = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]  # a list of lists: 2 steps x 3 rows
    image, cbar = draw_panel(ax, data, cmap=attnviz.plot.colors.get_cmap("magma"), norm=LogNorm(0.1, 1),
                             colorbar=True, alpha=0.5, mask=[True, False])
    assert isinstance(image.norm, LogNorm) and image.get_alpha() == 0.5 and cbar is not None
    assert image.get_array().shape == (3, 2) and image.get_array().mask[:, 0].all()
    image, _ = draw_panel(fig.add_subplot(2, 1, 2), np.arange(6.0).reshape(3, 2) - 2, center=0, cmap="RdBu_r")
    assert image.get_clim() == (-3.0, 3.0)
    assert attnviz.PlotOptions is PlotOptions


# ---------------------------------------------------------- non-finite values


def diverged(**meta):
    """copy_trace(L=10, N=32) with NaN, +inf and -inf in both weightings and in the outputs (scored
    and unscored steps), and where each is: {panel index: [(step, row), ...]}."""
    t = copy_trace(L=10, N=32, **meta)
    a = {k: v.copy() for k, v in t.arrays.items()}
    a["write_weightings"][4, 4], a["write_weightings"][6, 9] = np.nan, np.inf
    a["read_weightings"][15, 3] = -np.inf
    a["outputs"][13, 2], a["outputs"][14, 5], a["outputs"][16, 0], a["outputs"][3, 1] = np.nan, np.inf, -np.inf, np.nan
    return Trace(a, t.metadata), {1: [(13, 2), (14, 5), (16, 0), (3, 1)], 2: [(4, 4), (6, 9)], 3: [(15, 3)]}


def test_the_non_finite_colour_is_far_from_the_default_colours_for_every_colour_vision():
    from attnviz.plot.colors import CVD_SIMULATIONS, NONFINITE_RGBA, lab, simulate

    tables = [lut(name)[:, :3] / 255 for name in ("attnviz", "RdBu_r")] + [np.array([MASK_RGBA[:3]]) / 255]
    green = np.array(NONFINITE_RGBA[:3]) / 255
    for name, matrix in CVD_SIMULATIONS.items():  # CIE76 distance to the nearest colour: 32 at least
        for table in tables:
            distance = np.linalg.norm(lab(simulate(table, matrix)) - lab(simulate(green, matrix)), axis=-1)
            assert distance.min() >= 30, (name, distance.min())
    assert contrast(green, lut("attnviz")[0, :3] / 255) >= 7 and contrast(green, lut("attnviz")[-1, :3] / 255) >= 2


def test_non_finite_values_are_drawn_in_their_own_colour_and_named_by_png_and_matplotlib():
    from attnviz.plot.colors import NONFINITE_RGBA
    from attnviz.plot.draw import default_style

    t, where = diverged()
    scene, img, boxes = render(t)
    assert [p.nonfinite for p in scene.panels] == [None, "NaN, +inf, -inf", "NaN, +inf", "-inf"]
    assert [w.split(": ", 2)[1:] for w in scene.warnings] == [
        ["dataset 'outputs'", "contains nan at step 3, element 1; 4 values NaN or infinite in all, drawn in bright "
                              "green"],
        ["dataset 'write_weightings'", "contains nan at step 4, location 4; 2 values NaN or infinite in all, drawn "
                                       "in bright green"],
        ["dataset 'read_weightings'", "contains -inf at step 15, location 3; 1 value NaN or infinite in all, drawn "
                                      "in bright green"]]
    with default_style():
        result = draw_scene(scene)
        result.figure.canvas.draw()
    mpl = np.asarray(result.figure.canvas.buffer_rgba())[:, :, :3].astype(int)
    for k, p in enumerate(scene.panels):
        top, bottom, left, right = boxes[k]
        C, R = p.values.shape
        for i in range(C):
            for j in range(R):
                x, y = int(left + (i + 0.5) * (right - left) / C), int(bottom - (j + 0.5) * (bottom - top) / R)
                bad = (i, j + p.rows[0]) in where.get(k, [])
                for pixels in (img, mpl):  # over the unscored grey too (step 3 of the outputs)
                    assert is_colour(pixels[y, x], NONFINITE_RGBA[:3]) == bad, (p.title, i, j)
        legend = result.axes[k].get_legend()
        assert (legend is None) == (p.nonfinite is None)
        if legend is not None:  # a swatch of the colour and its words, under the panel's right end, by "Time"
            assert [x.get_text() for x in legend.get_texts()] == [p.nonfinite]
            box, axes = legend.get_window_extent(), result.axes[k]
            label = axes.xaxis.label.get_window_extent()
            assert box.x0 > label.x1 and abs(box.x1 - axes.get_window_extent().x1) <= 4
            assert box.y0 < (label.y0 + label.y1) / 2 < box.y1  # level with the axis label
            ticks = max(t.get_window_extent().y0 for t in axes.get_xticklabels())
            assert box.y1 < ticks
            below = img[boxes[k][1] + 1 : boxes[k][1] + 50, boxes[k][2] : boxes[k][3] + 4]  # 0.5 inch
            assert is_colour(below, NONFINITE_RGBA[:3]).sum() >= 16  # in the PNG's frame too


def test_the_crop_scales_and_phase_of_a_diverged_trace_are_those_of_its_finite_values():
    t, where = diverged()
    zeroed = {k: np.where(np.isfinite(v), v, 0) if v.dtype.kind == "f" else v for k, v in t.arrays.items()}
    a, b = scene_of(t), scene_of(Trace(zeroed, t.metadata))  # a NaN weighs as nothing: 0 is "not in use"
    assert a.markers == b.markers == (11,)
    assert [(p.rows, p.vmin, p.vmax, p.ylabel) for p in a.panels] == [(p.rows, p.vmin, p.vmax, p.ylabel)
                                                                        for p in b.panels]
    np.testing.assert_array_equal(a.peaks, b.peaks)
    # a scale that follows the data takes the finite values' range: no infinite or NaN end
    arrays = dict(zeroed, inputs=np.linspace(2, 5, 21 * 9).reshape(21, 9).astype(np.float32))
    wide = Trace(arrays, t.metadata)
    arrays = dict(arrays, inputs=arrays["inputs"].copy())
    arrays["inputs"][7, 3], arrays["inputs"][8, 3], arrays["inputs"][9, 3] = np.inf, -np.inf, np.nan
    inputs = scene_of(Trace(arrays, t.metadata)).panels[0]
    assert (inputs.vmin, inputs.vmax) == (scene_of(wide).panels[0].vmin, scene_of(wide).panels[0].vmax) == (2, 5)
    # a panel with no finite value at all: its kind's default scale, every cell non-finite
    arrays["read_weightings"] = np.full_like(arrays["read_weightings"], np.nan)
    nothing = scene_of(Trace(arrays, t.metadata), locations="all").panels[3]
    assert (nothing.vmin, nothing.vmax, nothing.nonfinite) == (0, 1, "NaN") and not np.isfinite(nothing.values).any()


@pytest.mark.parametrize("fmt", ["svg", "pdf", "html"])
def test_every_format_draws_a_diverged_trace(tmp_path, fmt, runner):
    from conftest import run

    t, _ = diverged(step=3)
    attnviz.save(t, tmp_path / "d.h5")
    r = run(runner, "plot", tmp_path / "d.h5", "-f", fmt, "-f", "png")
    assert r.exit_code == 0 and (tmp_path / f"d.{fmt}").exists() and (tmp_path / "d.png").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"attnviz: warning: {tmp_path / 'd.h5'}: trace '/': dataset ")
                                   for line in lines) and "contains nan at step 4, location 4" in lines[1]
    data = (tmp_path / f"d.{fmt}").read_bytes()
    if fmt == "svg":  # each panel's cells, an embedded PNG: three of them hold the non-finite colour
        import base64
        import re

        from attnviz.plot.colors import NONFINITE_RGBA

        assert ET.fromstring(data).tag.endswith("svg")
        cells = [np.asarray(Image.open(io.BytesIO(base64.b64decode(m))).convert("RGB")).astype(int)
                 for m in re.findall(rb'href="data:image/png;base64,([^"]+)"', data)]
        assert [is_colour(c, NONFINITE_RGBA[:3]).any() for c in cells] == [False, True, True, True]
    elif fmt == "pdf":
        assert data.startswith(b"%PDF-")
    else:
        import json

        from attnviz.plot.colors import NONFINITE_RGBA

        payload = json.loads(data.split(b"window.ATTNVIZ = ", 1)[1].split(b";</script>", 1)[0])
        assert payload["nonfinite"] == list(NONFINITE_RGBA)
        panels = payload["frames"][0]["panels"]
        assert [p.get("nonfinite_label") for p in panels] == [None, "NaN, +inf, -inf", "NaN, +inf", "-inf"]
        import base64

        flags = np.frombuffer(base64.b64decode(panels[2]["nonfinite"]), np.uint8).reshape(panels[2]["cols"], -1)
        assert np.argwhere(flags).tolist() == [[4, 4 - panels[2]["rows"][0]], [6, 9 - panels[2]["rows"][0]]]
    assert export(t, tmp_path / f"again.{fmt}")[0].read_bytes() == export(t, tmp_path / f"more.{fmt}")[0].read_bytes()


def test_draw_panel_draws_non_finite_cells_over_the_mask_and_scales_by_the_finite_ones():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from attnviz.plot.colors import NONFINITE_RGBA

    fig = Figure(figsize=(3, 2), dpi=50)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    data = np.array([[np.nan, -3.0], [0.25, 2.0], [np.inf, -np.inf]])  # 3 steps x 2 rows; step 0 masked
    image, _ = draw_panel(ax, data, center=0, mask=[True, False, False], cmap="RdBu_r")
    assert image.get_clim() == (-2.0, 2.0)
    fig.canvas.draw()
    px = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    H, W = px.shape[:2]
    cell = {(i, j): px[int(H * (1 - (j + 0.5) / 2)), int(W * (i + 0.5) / 3)] for i in range(3) for j in range(2)}
    green = {k for k, v in cell.items() if is_colour(v, NONFINITE_RGBA[:3])}
    assert green == {(0, 0), (2, 0), (2, 1)} and is_colour(cell[(0, 1)], MASK_RGBA[:3])


# ------------------------------------------------------------------- layouts


def test_multi_head_panels_and_head_choice():
    t = Trace(copy_like_arrays(heads=3))
    scene = scene_of(t)
    assert [p.title for p in scene.panels][2:] == [f"Write Weightings (head {h})" for h in range(3)] + [
        f"Read Weightings (head {h})" for h in range(3)]
    assert scene.grid == (4, 2)
    assert len(scene_of(t, head=1).panels) == 4
    with pytest.raises(OptionError, match="head 5 does not exist; it has 3 heads, 0 to 2"):
        scene_of(t, head=5)
    # a (T, N) dataset is one head: head 0 draws it, another head is refused, never ignored
    one = Trace(copy_like_arrays())
    assert [p.title for p in scene_of(one, head=0).panels] == [p.title for p in scene_of(one).panels]
    with pytest.raises(OptionError, match="dataset 'write_weightings': head 3 does not exist; it has 1 head"):
        scene_of(one, head=3)
    # a grid asked for is never grown: one panel per head must fit it
    assert scene_of(t, panels=("inputs", "write_weightings"), grid=(2, 2)).grid == (2, 2)
    with pytest.raises(OptionError, match="grid 2x2 has 4 cells but this trace has 8 panels, one per head"):
        scene_of(t, grid=(2, 2))
    assert scene_of(t, grid=(2, 2), head=2).grid == (2, 2)
    with pytest.raises(OptionError, match="grid 1x2 has 2 cells for 3 panels"):
        PlotOptions(panels=("inputs", "outputs", "reads"), grid=(1, 2)).validated()


@pytest.mark.parametrize("figsize, dpi", [((8, 5.6), 100), ((4.33, 2.717), 100), ((6.1, 4.05), 250)])
def test_cells_fill_the_axes_exactly_inside_the_spines(figsize, dpi):
    """At any size (fractional pixels included) the painted box meets the spines on every side."""
    scene = scene_of(Trace(copy_like_arrays()), figsize=figsize, dpi=dpi, fontsize=6)
    frame = Renderer(scene.opts).frame(scene)
    px = frame.pixels[:, :, 0].astype(int)
    for top, bottom, left, right in frame.boxes:
        c, r = (left + right) // 2, (top + bottom) // 2
        assert max(px[top - 1, c], px[bottom, c], px[r, left - 1], px[r, right]) < 100
        assert min(px[top, c], px[bottom - 1, c], px[r, left], px[r, right - 1]) > 150


def test_export_writes_atomically_and_by_suffix(tmp_path):
    t = Trace(copy_like_arrays())
    assert export(t, tmp_path / "fig.svg") == [tmp_path / "fig.svg"]
    written = export(t, tmp_path / "many", formats=["png", "pdf"])
    assert [p.name for p in written] == ["many.png", "many.pdf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg", "many.pdf", "many.png"]


@pytest.mark.parametrize("transparent", [False, True])
def test_png_encoder_is_lossless(transparent):
    from attnviz.plot.raster import encode_png

    rgba = np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_png(rgba, transparent)))
    assert img.mode == ("RGBA" if transparent else "RGB") and img.info["Software"] == "attnviz"
    np.testing.assert_array_equal(np.asarray(img), rgba if transparent else rgba[:, :, :3])
