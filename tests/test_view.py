"""The interactive view, in a real browser: headless Chromium (Debian's `chromium`) driven by playwright."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import attnviz
from attnviz import Trace

from conftest import copy_like_arrays

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
HOW = "needs headless Chromium: `apt-get install chromium` (Debian) and `pip install playwright` (the test extras)"


def chromium_path() -> str | None:
    """The system's Chromium ($ATTNVIZ_CHROMIUM names another), or None."""
    path = os.environ.get("ATTNVIZ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return path if path and os.path.exists(path) else None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason=HOW)
    path = chromium_path()
    if path is None:
        pytest.skip(HOW)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A page opened from a file, recording console errors and every request it makes."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1000, "height": 900})
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_function("document.body.dataset.view !== undefined")

    def point(self, panel: int, step: int, row: int) -> tuple[float, float]:
        """Where the centre of a panel's cell at (step, row) is on the page."""
        geo = self.page.evaluate(f"""() => {{
            const f = window.ATTNVIZ.frames[window.attnvizView.frame], p = f.panels[{panel}];
            const r = document.querySelector("canvas[data-panel='{panel}']").getBoundingClientRect();
            return {{x: r.left, y: r.top, size: f.panel_size, time: p.time, rows: p.rows}};
        }}""")
        (W, H), (t0, t1), (r0, r1) = geo["size"], geo["time"], geo["rows"]
        return (geo["x"] + 58 + (step - t0 + 0.5) / (t1 - t0) * W,
                geo["y"] + 26 + H - (row - r0 + 0.5) / (r1 - r0) * H)

    def readout(self) -> str:
        return self.page.locator("#readout").text_content()

    def view(self) -> dict:
        import json

        return json.loads(self.page.evaluate("document.body.dataset.view"))

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:"))]


def known_trace(value=0.625, step=3, location=5, **meta):
    arrays = copy_like_arrays(L=6, N=32)
    arrays["write_weightings"][step, :] = 0
    arrays["write_weightings"][step, location] = value
    return Trace(arrays, {"task": "copy", "sequence_length": 6, **meta})


def test_page_renders_offline_and_reads_out_a_known_cell(browser, tmp_path):
    attnviz.export(known_trace(), tmp_path / "v.html")
    page = Page(browser, tmp_path / "v.html")
    x, y = page.point(2, 3, 5)
    page.page.mouse.move(x, y)
    assert page.readout() == "Write Weightings · step 3 · location 5 · 0.625"
    assert page.view()["t"] == 3  # the cursor, at that step in every panel
    x, y = page.point(1, 9, 2)  # an output bit in the scored phase
    page.page.mouse.move(x, y)
    assert page.readout().startswith("Outputs · step 9 · bit 2 · ")
    assert page.errors == [] and page.external_requests() == []


def test_non_finite_cells_are_drawn_in_their_colour_read_out_as_such_and_named(browser, tmp_path):
    from attnviz.plot.colors import NONFINITE_RGBA

    arrays = dict(known_trace().arrays)
    arrays["output_mask"] = np.arange(len(arrays["inputs"])) > 6
    trace = Trace(arrays, {"task": "copy", "sequence_length": 6})
    trace.arrays["write_weightings"][3, 5] = np.nan
    trace.arrays["write_weightings"][4, 6] = np.inf
    trace.arrays["outputs"][1, 2] = -np.inf  # an unscored step: its colour wins over the mask grey
    attnviz.export(trace, tmp_path / "v.html")
    page = Page(browser, tmp_path / "v.html")
    cells = [(2, 3, 5, "NaN"), (2, 4, 6, "inf"), (1, 1, 2, "-inf")]
    for panel, step, row, _ in cells:  # before the cursor is drawn over any of them
        x, y = page.point(panel, step, row)
        colour = page.page.evaluate(f"""() => {{
            const r = document.querySelector("canvas[data-panel='{panel}']").getBoundingClientRect();
            const c = document.querySelector("canvas[data-panel='{panel}']").getContext("2d");
            const d = window.devicePixelRatio || 1;
            return Array.from(c.getImageData(({x} - r.left) * d, ({y} - r.top) * d, 1, 1).data);
        }}""")
        assert colour[:3] == list(NONFINITE_RGBA[:3]), (panel, step, row)
    for panel, step, row, says in cells:
        page.page.mouse.move(*page.point(panel, step, row))
        assert page.readout().endswith(f" · step {step} · {'location' if panel == 2 else 'bit'} {row} · {says}"
                                       + (" (not scored)" if panel == 1 else ""))
    assert page.page.evaluate("window.ATTNVIZ.frames[0].panels.map((p) => p.nonfinite_label || null)") == [
        None, "-inf", "NaN, +inf", None]
    assert page.errors == []


def test_wheel_zooms_time_drag_pans_and_double_click_resets(browser, tmp_path):
    attnviz.export(known_trace(), tmp_path / "v.html")
    page = Page(browser, tmp_path / "v.html")
    full = page.view()["window"]
    x, y = page.point(2, 6, 5)
    page.page.mouse.move(x, y)
    page.page.mouse.wheel(0, -400)
    zoomed = page.view()["window"]
    assert zoomed[1] - zoomed[0] < full[1] - full[0]
    page.page.mouse.down()
    page.page.mouse.move(x + 80, y)
    page.page.mouse.up()
    panned = page.view()["window"]
    assert panned[0] < zoomed[0] and np.isclose(panned[1] - panned[0], zoomed[1] - zoomed[0])
    page.page.mouse.dblclick(x, y)
    assert page.view()["window"] == full
    assert page.errors == []


def test_keyboard_moves_the_cursor(browser, tmp_path):
    attnviz.export(known_trace(), tmp_path / "v.html")
    page = Page(browser, tmp_path / "v.html")
    x, y = page.point(2, 3, 5)
    page.page.mouse.move(x, y)
    page.page.locator("#attnviz").focus()
    page.page.keyboard.press("ArrowRight")
    assert page.readout().startswith("Write Weightings · step 4 · location 5 · ")
    page.page.keyboard.press("ArrowUp")
    assert page.readout().startswith("Write Weightings · step 4 · location 6 · ")
    assert page.page.locator("#play").get_attribute("aria-label") and page.page.locator("#frame").get_attribute(
        "aria-label") == "snapshot"


def test_slider_steps_through_the_traces_of_a_file(browser, tmp_path):
    traces = [Trace(known_trace(value=v).arrays, {"task": "copy", "step": 500 * k}, f"step_{500 * k:07d}")
              for k, v in ((1, 0.25), (2, 0.75))]
    attnviz.save(traces, tmp_path / "run.h5")
    r = attnviz.plot_files([tmp_path / "run.h5"], output=tmp_path / "run.html")
    assert r.ok and r.written == [tmp_path / "run.html"]
    page = Page(browser, tmp_path / "run.html")
    assert page.page.locator("h1").text_content() == "copy · step 500"
    page.page.evaluate("""() => { const s = document.getElementById('frame');
                                  s.value = 1; s.dispatchEvent(new Event('input')); }""")
    assert page.page.locator("h1").text_content() == "copy · step 1000"
    x, y = page.point(2, 3, 5)
    page.page.mouse.move(x, y)
    assert page.readout() == "Write Weightings · step 3 · location 5 · 0.750"
    assert page.errors == [] and page.external_requests() == []


def test_a_reduced_view_reads_out_the_cells_a_pixel_covers(browser, tmp_path):
    T, N = 4000, 16
    arrays = {"inputs": np.zeros((T, 2), np.float32), "outputs": np.zeros((T, 2), np.float32),
              "write_weightings": np.zeros((T, N), np.float32), "read_weightings": np.zeros((T, N), np.float32)}
    arrays["write_weightings"][1234, 7] = 0.9
    attnviz.export(Trace(arrays), tmp_path / "big.html", locations="all")
    page = Page(browser, tmp_path / "big.html")
    cols = page.page.evaluate("window.ATTNVIZ.frames[0].panels[2].cols")
    assert cols < T
    x, y = page.point(2, 1234, 7)
    page.page.mouse.move(x, y)
    text = page.readout()
    lo, hi = (int(v) for v in text.split(" · ")[1].removeprefix("steps ").split("-"))
    assert lo <= 1234 <= hi and hi - lo + 1 in (T // cols, T // cols + 1) and text.endswith("max 0.900")


def test_the_page_draws_the_ticks_and_wrap_of_the_static_figure(browser, tmp_path):
    import json

    from attnviz.plot import PlotOptions, Source, build_scene, draw_scene

    t = attnviz.load(SAMPLES / "copy_len20.h5")  # cropped and rolled: 88, ..., 120, 0
    attnviz.export(t, tmp_path / "v.html")
    page = Page(browser, tmp_path / "v.html")
    opts = PlotOptions().validated()
    scene = build_scene(Source.of_trace(t, opts), opts)
    axes = draw_scene(scene).axes

    def drawn(k):
        return json.loads(page.page.evaluate(f"document.querySelector(\"canvas[data-panel='{k}']\").dataset.ticks"))

    for k, (p, ax) in enumerate(zip(scene.panels, axes, strict=True)):
        ticks = drawn(k)
        assert ticks["x"] == [[v, s] for v, s in zip(p.xticks.positions, p.xticks.labels, strict=True)]
        assert ticks["y"] == [[v, s] for v, s in zip(p.yticks.positions, p.yticks.labels, strict=True)]
        assert [v for v, _ in ticks["y"]] == list(ax.get_yticks())
        assert [s for _, s in ticks["y"]] == [tk.get_text() for tk in ax.get_yticklabels()]
    ww = scene.panels[2]
    assert ww.yticks.wraps == (127.5,) and [s for _, s in drawn(2)["y"]][-1] == "0"
    # the wrap line: the pixel row below the boundary is lighter than the ground above and below it
    x, y127 = page.point(2, 30, 127)
    _, y128 = page.point(2, 30, 128)
    rows = page.page.evaluate(f"""() => {{
        const c = document.querySelector("canvas[data-panel='2']"), r = c.getBoundingClientRect();
        const d = window.devicePixelRatio || 1, ctx = c.getContext("2d");
        const at = Math.round({(y127 + y128) / 2} - r.top) + 0.5;  // the boundary, then half a pixel down
        return [-4, 0, 4].map((dy) => Array.from(ctx.getImageData(Math.round(({x} - r.left) * d),
            Math.floor((at + dy) * d), 1, 1).data).slice(0, 3).reduce((a, b) => a + b));
    }}""")
    assert rows[1] > rows[0] + 100 and rows[1] > rows[2] + 100, rows
    # zoomed in on time, the ticks are finer steps of the Scene's, at round labels
    x, y = page.point(2, 20, 120)
    page.page.mouse.move(x, y)
    for _ in range(4):  # to 0.8^4 of the steps
        page.page.mouse.wheel(0, -100)
    steps = [int(s) for _, s in drawn(2)["x"]]
    step = steps[1] - steps[0]
    assert step in ww.xticks.steps and step < ww.xticks.steps[0] and all(s % step == 0 for s in steps)
    assert len(steps) <= len(ww.xticks.positions)  # no more crowded than the whole axis
    assert page.errors == []


def test_pages_of_the_samples_are_small_and_self_contained(tmp_path):
    r = attnviz.plot_files([SAMPLES], out_dir=tmp_path, formats=["html"])
    assert r.ok and r.index == tmp_path / "index.html"
    for page in tmp_path.glob("copy_*.html"):
        text = page.read_text()
        assert page.stat().st_size < 3 * 2**20
        assert "http://" not in text and "https://" not in text and "<script src" not in text
    t = attnviz.load(SAMPLES / "copy_len20.h5")
    assert t._repr_html_().startswith("<iframe srcdoc=") and t._repr_png_().startswith(b"\x89PNG")
    result = attnviz.plot_trace(t)
    assert result._repr_html_().startswith("<iframe srcdoc=") and result._repr_png_().startswith(b"\x89PNG")
