"""attnviz.render (a figure's pixels for image loggers) and the comparison of two traces
(attnviz.compare_traces, `attnviz compare`)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_view import Page, browser  # noqa: F401 (a fixture)

import attnviz
from attnviz import Trace
from attnviz.errors import AttnvizError, OptionError
from attnviz.plot.pair import DIFF, comparison, default_output

from conftest import copy_like_arrays, run

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
TRAINING = SAMPLES / "copy_training.h5"  # snapshots step_0000050, step_0001400 and step_0003600 of one run


def png_pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def walk(L=6, N=32, start=0, seed=0, inputs=1.0, **kw) -> Trace:
    """A copy-like trace whose heads walk from location ``start``, its inputs 0 or ``inputs``."""
    arrays = copy_like_arrays(L=L, N=N, seed=seed, **kw)
    for key in ("write_weightings", "read_weightings"):
        arrays[key] = np.roll(arrays[key], start, axis=-1)
    arrays["inputs"] = arrays["inputs"] * inputs
    return Trace(arrays, {"task": "copy", "sequence_length": L})


# ---------------------------------------------------------------------- render


def test_render_gives_the_pixels_of_the_png_plot_writes(runner, tmp_path):
    result = run(runner, "plot", TRAINING, "--trace", "step_0001400", "-o", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    pixels = attnviz.render(TRAINING, name="step_0001400")
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert np.array_equal(pixels, png_pixels(tmp_path / "p.png"))
    # a Trace in memory, and options: those of the PNG export writes, again and again (a training loop)
    trace = attnviz.load(TRAINING, "step_0001400")
    opts = attnviz.PlotOptions(layout="paper", colorbar=True)
    attnviz.export(trace, tmp_path / "e.png", opts)
    for _ in range(2):
        assert np.array_equal(attnviz.render(trace, opts), png_pixels(tmp_path / "e.png"))
    assert np.array_equal(attnviz.render(trace, cmap="viridis", time=(0, 20)),
                          png_pixels(attnviz.export(trace, tmp_path / "v.png", cmap="viridis", time=(0, 20))[0]))


def test_render_is_rgba_when_transparent_and_refuses_what_plot_refuses(tmp_path):
    trace = walk()
    attnviz.export(trace, tmp_path / "t.png", transparent=True)
    rgba = attnviz.render(trace, transparent=True)
    assert rgba.shape[2] == 4 and np.array_equal(rgba, png_pixels(tmp_path / "t.png"))
    with pytest.raises(AttnvizError, match="holds 3 traces"):
        attnviz.render(TRAINING)  # which one?
    with pytest.raises(OptionError, match="unknown colormap"):
        attnviz.render(trace, cmap="nope")


# ------------------------------------------------------------------ comparison


def test_the_difference_is_b_minus_a_on_one_shared_crop_and_scale():
    a, b = walk(start=0), walk(start=12, seed=1, inputs=2.0)  # inputs in 0:2: a scale that follows the data
    c = comparison(a, b)
    assert [p.plan.key for p in c.diff.panels] == ["write_weightings", "read_weightings"]
    for p, j in zip(c.diff.panels, c.diff_of, strict=True):
        pa, pb = c.a.panels[j], c.b.panels[j]
        assert pa.plan.key == pb.plan.key == p.plan.key
        assert pa.rows == pb.rows == p.rows and pa.time == pb.time == p.time  # one crop, one window
        assert np.array_equal(p.values, pb.values - pa.values) and np.array_equal(p.raw, p.values)
        rows = np.arange(*p.rows) % 32
        assert np.allclose(p.values, b[p.plan.key][:, rows] - a[p.plan.key][:, rows])
        assert (p.vmin, p.vmax) == (-1.0, 1.0) and p.title == f"{pa.title}: {DIFF}"
    used = set(np.flatnonzero(a.write_weightings.max(0))) | set(np.flatnonzero(b.write_weightings.max(0)))
    crop = set(np.arange(*c.a.panels[2].rows) % 32)
    assert used <= crop and len(crop) < 32  # the crop holds what either uses, and no more than needed
    inputs = [c.a.panels[0], c.b.panels[0]]
    assert [(p.vmin, p.vmax) for p in inputs] == [(0.0, 2.0)] * 2
    assert c.diff.panels[0].values.min() == -1 and c.diff.panels[0].values.max() == 1


def test_a_trace_that_diverged_is_compared_its_non_finite_cells_in_their_colour_and_out_of_the_scale(tmp_path):
    a = walk(start=0)
    arrays = {k: v.copy() for k, v in walk(start=0).arrays.items()}
    arrays["write_weightings"][3, 3], arrays["read_weightings"][9, 2] = np.nan, -np.inf
    arrays["write_weightings"][5, 5] = 0.5  # a finite difference of -0.5 besides
    c = comparison(a, Trace(arrays, a.metadata))
    assert len(c.warnings) == 2 and all("drawn in bright green" in w for w in c.warnings)
    write, read = c.diff.panels
    assert (write.vmin, write.vmax) == (-1.0, 1.0) and (write.nonfinite, read.nonfinite) == ("NaN", "-inf")
    bad = np.argwhere(~np.isfinite(write.values))
    assert bad.tolist() == [[3, 3 - write.rows[0]]] and np.argwhere(~np.isfinite(read.values)).tolist() == [
        [9, 2 - read.rows[0]]]
    assert c.block_headings()[2].endswith("largest |b \u2212 a|: 0.5)")
    for fmt in ("png", "html"):
        assert c.save(tmp_path / f"c.{fmt}")[0].exists()


@pytest.mark.parametrize("how", ["max", "mean"])
def test_a_reduced_difference_keeps_its_sign(how):
    """More steps than pixels: a column stands for a block of steps. With max, it shows the value of
    largest magnitude in its block with its sign (a focus lost is as visible as one gained); with
    mean, the mean of b - a."""
    from attnviz.plot.reduce import pixel_bins

    T, N = 3000, 16
    arrays = {"inputs": np.zeros((T, 2), np.float32), "outputs": np.zeros((T, 2), np.float32),
              "write_weightings": np.zeros((T, N), np.float32), "read_weightings": np.zeros((T, N), np.float32)}
    a = {k: v.copy() for k, v in arrays.items()}
    b = {k: v.copy() for k, v in arrays.items()}
    a["write_weightings"][1000, 3] = 1.0  # a focus that b lacks: b - a is -1 there
    b["write_weightings"][2000, 9] = 0.5  # and one that b has: +0.5
    c = comparison(Trace(a), Trace(b), reduce=how, locations=(0, N))
    diff = c.diff.panels[0]
    cols = diff.raw.shape[0]
    assert cols < T

    def col(step):  # the column of the block holding a step
        return int(np.searchsorted(pixel_bins(T, cols), step, "right")) - 1

    if how == "max":
        assert diff.raw[col(1000), 3] == -1.0 and diff.raw[col(2000), 9] == 0.5
        assert np.count_nonzero(diff.raw) == 2
        assert diff.values[col(1000), 3] == diff.values.min()  # spread to its neighbours, still negative
    else:
        pa, pb = c.a.panels[2], c.b.panels[2]
        assert np.allclose(diff.values, pb.values - pa.values)
        assert diff.values[col(1000), 3] < 0 < diff.values[col(2000), 9]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "html"])
def test_compare_writes_every_format_with_the_same_bytes_each_time(tmp_path, fmt):
    a, b = (TRAINING, "step_0000050"), (TRAINING, "step_0003600")
    first = attnviz.compare_traces(a, b, tmp_path / f"one.{fmt}")
    second = attnviz.compare_traces(a, b, tmp_path / f"two.{fmt}")
    assert first == [tmp_path / f"one.{fmt}"] and first[0].read_bytes() == second[0].read_bytes()
    data = first[0].read_bytes()
    if fmt == "png":
        pixels = png_pixels(first[0])
        assert pixels.shape[0] > pixels.shape[1] > 600  # a's grid, b's below it, then the difference
    elif fmt == "html":
        text = data.decode()
        assert '"sections"' in text and "step 50" in text and "step 3600" in text and "<script>" in text
    else:
        assert data.startswith(b"%PDF" if fmt == "pdf" else b"<?xml")


def test_a_comparison_without_output_is_its_data_and_shows_itself(tmp_path):
    c = attnviz.compare_traces(walk(), walk(start=3, seed=1))
    assert c.headings == ("copy · length 6", "copy · length 6") and c.warnings == []
    assert c._repr_png_().startswith(b"\x89PNG") and c._repr_html_().startswith("<iframe srcdoc=")
    drawn = c.draw()
    assert len(drawn.axes) == len(c.a.panels) + len(c.b.panels) + len(c.diff.panels) == 10
    assert c.save(tmp_path / "c", formats=["png", "svg"]) == [tmp_path / "c.png", tmp_path / "c.svg"]
    named = attnviz.compare_traces((TRAINING, "step_0000050"), (TRAINING, "step_0003600"))
    assert named.headings[0] == f"{TRAINING} · copy · step 50 · 1,600 sequences · length 20"


def test_figure_options_reach_both_traces_and_only_weightings_are_subtracted():
    a, b = walk(heads=2), walk(start=2, seed=1, heads=2)
    c = comparison(a, b)
    assert len(c.a.panels) == len(c.b.panels) == 6 and len(c.diff.panels) == 4  # one panel per head
    c = comparison(a, b, head=1, colorbar=True, diff_limit=0.5, diff_cmap="PuOr")
    assert [p.title for p in c.diff.panels] == [f"{kind} Weightings (head 1): {DIFF}" for kind in ("Write", "Read")]
    assert all((p.vmin, p.vmax, p.plan.cmap) == (-0.5, 0.5, "PuOr") for p in c.diff.panels)
    c = comparison(a, b, panels=("inputs", "write_weightings", "outputs"), head=0)
    assert [p.plan.key for p in c.diff.panels] == ["write_weightings"] and c.blocks[2] == [(0, 1)]  # under its panel
    assert comparison(a, b, panels=("inputs", "outputs")).diff is None
    c = comparison(walk(L=6), walk(L=8), time=(0, 13), locations=(0, 10))
    assert c.a.panels[2].rows == c.diff.panels[0].rows == (0, 10) and c.diff.panels[0].time == (0, 13)


def test_traces_that_cannot_be_subtracted_are_refused_in_one_line_naming_both(tmp_path):
    attnviz.save(walk(L=6), tmp_path / "six.h5")
    attnviz.save(walk(L=8), tmp_path / "eight.h5")
    attnviz.save(walk(N=64), tmp_path / "n64.h5")
    attnviz.save(walk(heads=2), tmp_path / "two_heads.h5")
    six = tmp_path / "six.h5"
    cases = [(tmp_path / "eight.h5", {}, "has 13 steps and .*eight.h5 17.*--time 0:13"),
             (tmp_path / "eight.h5", {"time": (-5, None)}, "gives steps 8:13 of the first and 12:17 of the second"),
             (tmp_path / "n64.h5", {}, "has 32 memory locations and .*n64.h5 64"),
             (tmp_path / "two_heads.h5", {}, "1 head.*2: compare one head of each with --head")]
    for other, kw, words in cases:
        with pytest.raises(AttnvizError, match=words) as e:
            attnviz.compare_traces(six, other, tmp_path / "out.png", **kw)
        assert "\n" not in str(e.value) and str(six) in str(e.value) and str(other) in str(e.value)
    assert not (tmp_path / "out.png").exists()
    attnviz.compare_traces(six, tmp_path / "eight.h5", tmp_path / "out.png", time=(0, 13))  # the common steps
    assert (tmp_path / "out.png").exists()


def test_cli_compare_picks_two_traces_and_names_its_output(runner, tmp_path):
    import shutil

    run_file = tmp_path / "traces.h5"
    shutil.copy(TRAINING, run_file)
    result = run(runner, "compare", run_file, "--trace", "step_0000050", "--trace", "step_0003600")
    out = tmp_path / "traces__step_0000050-vs-step_0003600.png"
    assert result.exit_code == 0 and result.stdout == f"wrote {out}\n" and out.exists()
    expected = attnviz.compare_traces((TRAINING, "step_0000050"), (TRAINING, "step_0003600"), tmp_path / "api.png")
    assert png_pixels(out).shape == png_pixels(expected[0]).shape
    attnviz.save(walk(), tmp_path / "x.h5")
    attnviz.save(walk(start=4, seed=1), tmp_path / "y.h5")
    result = run(runner, "compare", tmp_path / "x.h5", tmp_path / "y.h5", "-f", "svg", "-f", "html",
                 "--cmap", "viridis")
    assert result.exit_code == 0
    assert result.stdout.split() == ["wrote", str(tmp_path / "x-vs-y.svg"), "wrote", str(tmp_path / "x-vs-y.html")]
    result = run(runner, "compare", run_file, run_file, "--trace", "step_0001400", "-o", tmp_path / "same.pdf")
    assert result.exit_code == 0 and (tmp_path / "same.pdf").exists()  # one name: that trace of both files
    assert default_output((run_file, "step_0000050"), tmp_path / "x.h5") == tmp_path / "traces__step_0000050-vs-x.png"


@pytest.mark.parametrize("args, code, words", [
    (["{x}"], 2, "one file needs --trace twice"),
    (["{x}", "--trace", "/"], 2, "one file needs --trace twice"),
    (["{x}", "{x}", "{x}"], 2, "compare takes two trace files"),
    (["{x}", "{x}", "--trace", "a", "--trace", "b", "--trace", "c"], 2, r"got 2 file\(s\) and 3 --trace"),
    (["{x}", "{x}", "-o", "out.jpg"], 2, "unknown output format 'jpg'"),
    (["{x}", "{x}", "--diff-limit", "0"], 2, "--diff-limit 0 must be a number above 0"),
    (["{x}", "{x}", "--diff-cmap", "nope"], 2, "unknown colormap 'nope'"),
    (["{x}", "{long}"], 1, "has 13 steps and .*long.h5 17"),
    (["{x}", "{training}"], 1, "holds 3 traces .*pick one by name"),
    (["{x}", "{x}", "--trace", "nope"], 1, "has no trace 'nope'"),
    (["{x}", "missing.h5"], 1, "missing.h5: no such file"),
])
def test_cli_compare_bad_input_is_one_line_and_its_exit_code(runner, tmp_path, args, code, words):
    import re

    attnviz.save(walk(), tmp_path / "x.h5")
    attnviz.save(walk(L=8), tmp_path / "long.h5")
    names = {"x": tmp_path / "x.h5", "long": tmp_path / "long.h5", "training": TRAINING}
    result = run(runner, "compare", *(a.format(**names) for a in args))
    assert result.exit_code == code
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and re.search(words, result.stderr)
    assert list(tmp_path.glob("*.png")) == []


def test_the_page_reads_a_b_and_their_difference_at_one_cell(browser, tmp_path):  # noqa: F811
    a, b = walk(), walk(start=2, seed=1)  # b writes two locations further on
    attnviz.compare_traces(a, b, tmp_path / "c.html")
    page = Page(browser, tmp_path / "c.html")
    headings = [h.text_content() for h in page.page.locator("h2").all()]
    assert headings[:2] == ["a: copy · length 6", "b: copy · length 6"] and headings[2].startswith(f"{DIFF}: ")
    write_diff = 8  # a's four panels, b's four, then the differences of the write and read weightings
    page.page.locator(f"canvas[data-panel='{write_diff}']").scroll_into_view_if_needed()
    x, y = page.point(write_diff, 3, 3)  # a writes location 3 at step 3, b location 5
    page.page.mouse.move(x, y)
    assert page.readout() == f"Write Weightings · step 3 · location 3 · a 1.000 · b 0.000 · {DIFF} -1.000"
    x, y = page.point(write_diff, 3, 5)
    page.page.mouse.move(x, y)
    assert page.readout() == f"Write Weightings · step 3 · location 5 · a 0.000 · b 1.000 · {DIFF} 1.000"
    page.page.keyboard.down("Shift")
    page.page.mouse.wheel(0, -300)  # the rows of the difference, and with them those of a and b
    page.page.keyboard.up("Shift")
    rows = page.page.evaluate("window.attnvizView.rows")
    assert list(rows) == ["panel 2"] and rows["panel 2"][1] - rows["panel 2"][0] < 12
    page.page.locator("canvas[data-panel='0']").scroll_into_view_if_needed()
    x, y = page.point(0, 2, 1)
    page.page.mouse.move(x, y)
    assert page.readout().startswith("Inputs · step 2 · channel 1 · a ")
    assert page.page.locator("canvas.legend").count() == 1
    assert page.errors == [] and page.external_requests() == []
