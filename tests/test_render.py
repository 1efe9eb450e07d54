"""Pictures that can be wrong: known patterns must light the right cells and pixels."""

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from attnviz import AttnvizError, Trace
from attnviz.render import ArraySource, PlotOptions, Renderer, export, figure_bytes, plan_panels, plot_trace

from conftest import copy_like_arrays


def spike_trace(T=31, N=20, t=7, n=13):
    assert T % 2, "copy traces have 2L + 1 steps"
    arrays = copy_like_arrays(L=(T - 1) // 2, N=N)
    arrays["write_weightings"][:] = 0
    arrays["write_weightings"][t, n] = 1.0
    return Trace(arrays)


def test_panels_titles_and_axes():
    res = plot_trace(Trace(copy_like_arrays(full=True)))
    titles = [ax.get_title() for ax in res.figure.axes]
    assert titles == ["Inputs", "Outputs", "Write Weightings", "Read Weightings"]
    for ax in res.figure.axes:
        assert ax.get_xlabel() == "Time" and ax.get_ylabel() == "Location"
    xlims = {ax.get_xlim() for ax in res.figure.axes}
    assert xlims == {(-0.5, 10.5)}  # a shared time axis: panels line up step for step


def test_paper_layout_and_custom_panels():
    t = Trace(copy_like_arrays(full=True))
    res = plot_trace(t, layout="paper")
    assert [ax.get_title() for ax in res.figure.axes] == [
        "Inputs", "Outputs", "Adds", "Reads", "Write Weightings", "Read Weightings"]
    res = plot_trace(t, panels=("inputs", "targets", "outputs", "erases"), grid=(1, 4))
    assert [ax.get_title() for ax in res.figure.axes] == ["Inputs", "Targets", "Outputs", "Erases"]


def test_artist_holds_the_data_with_time_on_x():
    t = spike_trace()
    image = plot_trace(t).images["Write Weightings"]
    arr = np.asarray(image.get_array())
    assert arr.shape == (20, 31)  # (locations, time)
    assert np.unravel_index(arr.argmax(), arr.shape) == (13, 7)
    assert image.get_clim() == (0.0, 1.0)
    assert image.get_cmap().name == "turbo"


def test_multi_head_panels_and_head_choice():
    t = Trace(copy_like_arrays(heads=3))
    panels, grid = plan_panels({k: v.shape for k, v in t.arrays.items()}, PlotOptions())
    assert [p.title for p in panels][2:] == [f"Write Weightings (head {h})" for h in range(3)] + [
        f"Read Weightings (head {h})" for h in range(3)]
    assert grid == (4, 2)
    panels, grid = plan_panels({k: v.shape for k, v in t.arrays.items()}, PlotOptions(head=1))
    assert len(panels) == 4 and panels[2].title == "Write Weightings (head 1)"
    with pytest.raises(AttnvizError, match="head 5 does not exist"):
        plan_panels({k: v.shape for k, v in t.arrays.items()}, PlotOptions(head=5))


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _panel_box(renderer, trace, index):
    source = ArraySource(trace, renderer.opts)
    panels, grid = plan_panels(source.shapes, renderer.opts)
    return renderer.frame(source, panels, grid, [(0, 1)] * len(panels)).boxes[index]


def test_png_lights_the_spike_pixel_and_nothing_else():
    t = spike_trace(T=31, N=20, t=7, n=13)
    r = Renderer(PlotOptions())
    img = _png(r.render(ArraySource(t, r.opts)))
    top, bottom, left, right = _panel_box(r, t, 2)
    panel = img[top:bottom, left:right]
    red = (panel[:, :, 0] > 100) & (panel[:, :, 2] < 60)  # turbo's top end is dark red
    rows, cols = np.nonzero(red)
    assert rows.size > 0
    width, height = right - left, bottom - top
    # the hot cell spans columns [7/31, 8/31) of the width and rows of location 13 from the bottom
    assert cols.min() >= int(7 * width / 31) - 1 and cols.max() <= int(8 * width / 31) + 1
    assert height - rows.max() - 1 >= int(13 * height / 20) - 1 and height - rows.min() <= int(14 * height / 20) + 1


@pytest.mark.parametrize("figsize, dpi", [((8, 5.2), 100), ((4.33, 2.717), 100), ((6.1, 4.05), 250)])
def test_cells_fill_the_axes_exactly_inside_the_spines(figsize, dpi):
    """At any size (fractional pixels included) the painted box meets the spines on every side."""
    opts = PlotOptions(figsize=figsize, dpi=dpi)
    r = Renderer(opts)
    t = Trace(copy_like_arrays())
    r.render(ArraySource(t, opts))
    frame = next(iter(r._frames.values()))
    px = frame.pixels[:, :, 0].astype(int)
    for top, bottom, left, right in frame.boxes:
        c, r = (left + right) // 2, (top + bottom) // 2
        # just outside each edge: the spine (dark); just inside: not (no seam, no spine painted over)
        assert max(px[top - 1, c], px[bottom, c], px[r, left - 1], px[r, right]) < 100
        assert min(px[top, c], px[bottom - 1, c], px[r, left], px[r, right - 1]) > 150


def test_png_diagonal_is_diagonal():
    t = Trace(copy_like_arrays(L=15, N=16))
    r = Renderer(PlotOptions())
    img = _png(r.render(ArraySource(t, r.opts)))
    top, bottom, left, right = _panel_box(r, t, 2)
    panel = img[top:bottom, left:right]
    hot_row_per_col = [np.nonzero((panel[:, c, 0] > 100) & (panel[:, c, 2] < 60))[0].mean()
                       for c in range(0, int(0.45 * (right - left)), 5)]
    assert np.all(np.diff(hot_row_per_col) <= 0)  # rising to the right (row 0 is the top)
    assert hot_row_per_col[0] - hot_row_per_col[-1] > 0.5 * (bottom - top)


def test_png_is_byte_reproducible_across_renderers():
    t = Trace(copy_like_arrays(full=True), {"task": "copy", "step": 4})
    opts = PlotOptions(layout="paper", title=True, colorbar=True, markers=(5,))
    a = Renderer(opts).render(ArraySource(t, opts))
    b = Renderer(opts).render(ArraySource(t, opts))
    assert a == b


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_vector_formats_parse_contain_titles_and_reproduce(fmt):
    t = Trace(copy_like_arrays(full=True))
    res = plot_trace(t, layout="paper")
    data = figure_bytes(res.figure, fmt)
    assert data == figure_bytes(plot_trace(t, layout="paper").figure, fmt)
    if fmt == "svg":
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        # text is drawn as paths; matplotlib keeps each title's text in a comment / id
        text = data.decode()
        for title in ("Inputs", "Outputs", "Adds", "Reads", "Write Weightings", "Read Weightings"):
            assert title in text
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def test_unknown_colormap_suggests_names():
    with pytest.raises(AttnvizError, match="did you mean turbo"):
        Renderer(PlotOptions(cmap="turbp"))
    with pytest.raises(AttnvizError, match="did you mean viridis"):
        plot_trace(Trace(copy_like_arrays()), panel_cmaps={"reads": "viridi"})


def test_limits_and_per_panel_cmap():
    t = Trace(copy_like_arrays())
    res = plot_trace(t, panel_cmaps={"inputs": "gray"}, limits={"outputs": (-1.0, 2.0)})
    assert res.images["Inputs"].get_cmap().name == "gray"
    assert res.images["Outputs"].get_clim() == (-1.0, 2.0)


def test_window_draws_only_the_window():
    t = spike_trace(T=31, N=20, t=7, n=13)
    res = plot_trace(t, time=(5, 10), locations=(10, 15))
    arr = np.asarray(res.images["Write Weightings"].get_array())
    assert arr.shape == (5, 5) and arr[3, 2] == 1.0
    assert res.figure.axes[2].get_xlim() == (4.5, 9.5)


def test_export_writes_atomically_and_by_suffix(tmp_path):
    t = Trace(copy_like_arrays())
    written = export(t, tmp_path / "fig.svg")
    assert written == [tmp_path / "fig.svg"] and (tmp_path / "fig.svg").read_bytes().startswith(b"<?xml")
    written = export(t, tmp_path / "many", formats=["png", "pdf"])
    assert [p.name for p in written] == ["many.png", "many.pdf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg", "many.pdf", "many.png"]


@pytest.mark.parametrize("transparent", [False, True])
def test_png_encoder_is_lossless(transparent):
    from attnviz.render import encode_png

    rgba = np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_png(rgba, transparent)))
    assert img.mode == ("RGBA" if transparent else "RGB") and img.info["Software"] == "attnviz"
    np.testing.assert_array_equal(np.asarray(img), rgba if transparent else rgba[:, :, :3])
