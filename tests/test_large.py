"""Large traces: reduction to the picture's resolution, windows, streaming, bounded checks."""

import h5py
import numpy as np
import pytest

import attnviz
from attnviz import Trace, TraceError, TraceRecorder
from attnviz.io import open_traces
from attnviz.plot import PlotOptions, Renderer, Source, build_scene
from attnviz.plot.reduce import nearest, pixel_bins, reduce_axis, reduce_stream

from conftest import copy_like_arrays, run


def test_a_lone_spike_survives_max_and_mean_gives_the_block_average():
    T, N = 100_000, 8
    a = np.full((T, N), 1 / N, np.float32)
    a[54_321, 5] = 1.0
    pix, lo, hi = reduce_stream(lambda s, e: a[s:e], T, 100, "max", row_bytes=N * 4, block_bytes=4096)
    assert pix.shape == (100, 8)
    assert pix[54, 5] == 1.0 and np.count_nonzero(pix == 1.0) == 1
    assert (lo, hi) == (0.125, 1.0)
    mean, _, _ = reduce_stream(lambda s, e: a[s:e], T, 100, "mean", row_bytes=N * 4, block_bytes=4096)
    np.testing.assert_allclose(mean[54, 5], (999 * 0.125 + 1.0) / 1000)
    np.testing.assert_allclose(mean[0, 0], 0.125)


def test_streamed_reduction_equals_reduction_in_one_go():
    rng = np.random.default_rng(0)
    a = rng.random((9_973, 37))
    whole = reduce_axis(reduce_axis(a, 123, 0, "max"), 11, 1, "max")
    streamed, _, _ = reduce_stream(lambda s, e: a[s:e], 9_973, 123, "max", row_bytes=37 * 8, block_bytes=5000)
    np.testing.assert_array_equal(whole, reduce_axis(streamed, 11, 1, "max"))


def test_small_panels_are_drawn_cell_for_cell():
    assert list(nearest(3, 9)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    a = np.arange(6.0).reshape(3, 2)
    pix, _, _ = reduce_stream(lambda s, e: a[s:e], 3, 6, "max")
    np.testing.assert_array_equal(pix, a)  # kept as cells; the back ends repeat them
    assert list(pixel_bins(10, 4)) == [0, 2, 5, 7]


def _big_file(path, T=60_000, N=256, spike=(41_234, 200)):
    """A mid-size chunked file (~60 MB per weighting) with one spike in the write weighting."""
    with h5py.File(path, "w") as f:
        arrays = copy_like_arrays(L=2, N=N)
        f.create_dataset("inputs", data=np.zeros((T, 9), np.float32))
        f.create_dataset("outputs", data=np.zeros((T, 8), np.float32))
        for key in ("write_weightings", "read_weightings"):
            ds = f.create_dataset(key, shape=(T, N), dtype="f4", chunks=(1024, N))
            for s in range(0, T, 8192):
                ds[s : s + 8192] = 1.0 / N
        f["write_weightings"][spike] = 1.0
        del arrays
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return _big_file(tmp_path_factory.mktemp("big") / "big.h5")


def _hot_pixels(path, opts, panel_index, rgb=None):
    """Pixels of the top colour (or of ``rgb``) in one panel of the PNG, and the panel's size."""
    import io

    from PIL import Image

    from attnviz.plot.colors import lut

    with open_traces(path) as f:
        scene = build_scene(Source(f, "/", opts), opts)
    r = Renderer(opts)
    img = np.asarray(Image.open(io.BytesIO(r.png(scene))).convert("RGB")).astype(int)
    top, bottom, left, right = r.frame(scene).boxes[panel_index]
    panel = img[top:bottom, left:right]
    colour = lut("attnviz")[255, :3] if rgb is None else np.array(rgb[:3])
    rows, cols = np.nonzero(np.abs(panel - colour).max(axis=-1) <= 3)
    return rows, cols, right - left, bottom - top


def test_spike_is_a_hot_block_in_the_png_of_a_large_file(big):
    opts = PlotOptions().validated()
    rows, cols, width, height = _hot_pixels(big, opts, 2)
    assert rows.size >= 9  # at least 3 x 3
    assert abs(cols.mean() - 41_234 / 60_000 * width) <= 2
    # the crop keeps the spike's location in the panel: it is the only location in use
    with open_traces(big) as f:
        assert build_scene(Source(f, "/", opts), opts).panels[2].rows[0] <= 200
    rows, _, _, _ = _hot_pixels(big, opts, 3)  # the read weighting has no spike: nothing hot there
    assert rows.size == 0


def test_a_window_reads_only_the_window(big, monkeypatch):
    from attnviz.io import HDF5File

    rows_read = []
    original = HDF5File.read

    def counting(self, name, dataset, rows=slice(None), cols=None):
        block = original(self, name, dataset, rows, cols)
        rows_read.append((dataset, block.shape))
        return block

    monkeypatch.setattr(HDF5File, "read", counting)
    opts = PlotOptions(time=(41_000, 41_500), locations=(190, 210))
    with open_traces(big) as f:
        png = Renderer(opts).png(build_scene(Source(f, "/", opts), opts))
    assert png.startswith(b"\x89PNG")
    weights = [shape for ds, shape in rows_read if ds.endswith("weightings")]
    assert sum(s[0] for s in weights) == 2 * 500  # 500 steps of each weighting, nothing more
    assert all(s[1] == 20 for s in weights)  # and only the 20 locations of the window
    assert all(shape[0] == 500 for _, shape in rows_read)


def test_cli_zoom_and_reduce_options(big, runner, tmp_path):
    out = tmp_path / "zoom.png"
    result = run(runner, "plot", big, "-o", out, "--time", "41000:41500", "--locations", "150:", "--reduce",
                 "mean")
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    result = run(runner, "plot", big, "-o", out, "--time", "70000:80000")
    assert result.exit_code == 1 and "time window 70000:80000 is empty" in result.stderr


def test_validate_streams_and_names_the_first_bad_step_and_plot_draws_it(tmp_path, runner):
    from attnviz.plot.colors import NONFINITE_RGBA

    path = _big_file(tmp_path / "nan.h5", T=20_000, N=64, spike=(100, 3))
    with h5py.File(path, "a") as f:
        f["read_weightings"][12_345, 17] = np.nan
    result = run(runner, "validate", path)
    assert result.exit_code == 1
    assert "dataset 'read_weightings': contains nan at step 12345, location 17" in result.stderr
    result = run(runner, "plot", path, "-o", tmp_path / "x.png")
    assert result.exit_code == 0 and (tmp_path / "x.png").exists()
    assert result.stderr.strip().splitlines() == [
        f"attnviz: warning: {path}: trace '/': dataset 'read_weightings': contains nan at step 12345, location 17; "
        "1 value NaN or infinite in all, drawn in bright green"]
    # one NaN among 20,000 steps is spread, as a spike is, to 3 pixel columns of its location's row, where it is
    opts = PlotOptions(locations=(0, 64)).validated()  # every location, not rolled
    rows, cols, width, height = _hot_pixels(path, opts, 3, NONFINITE_RGBA)
    assert np.ptp(cols) == 2 and rows.size == 3 * np.unique(rows).size and np.ptp(rows) <= height / 64 + 1
    assert abs(cols.mean() - 12_345 / 20_000 * width) <= 2 and abs(height - 1 - rows.mean() - 17.5 / 64 * height) <= 2
    assert _hot_pixels(path, opts, 2, NONFINITE_RGBA)[0].size == 0


def test_a_dataset_never_written_whose_fill_value_is_nan_is_drawn_all_non_finite(tmp_path, runner):
    path = tmp_path / "fill.h5"
    with h5py.File(path, "w") as f:
        for k, v in copy_like_arrays(N=16).items():
            if k != "read_weightings":
                f.create_dataset(k, data=v)
        f.create_dataset("read_weightings", shape=(11, 16), dtype="f4", chunks=(4, 16), fillvalue=np.nan)
    with open_traces(path) as f:
        opts = PlotOptions().validated()
        panel = build_scene(Source(f, "/", opts), opts).panels[3]
    assert panel.nonfinite == "NaN" and not np.isfinite(panel.values).any() and (panel.vmin, panel.vmax) == (0, 1)
    result = run(runner, "plot", path, "-o", tmp_path / "fill.png")
    assert result.exit_code == 0 and "dataset 'read_weightings': contains nan at step 0, location 0; 176 values" \
        in result.stderr


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_lone_non_finite_value_wins_its_block_and_the_range_is_of_the_finite_values(bad):
    from attnviz.plot.reduce import spread

    T, N = 10_000, 8
    a = np.full((T, N), 0.5, np.float32)
    a[:, 2] = 0.9
    a[4_321, 2] = bad
    seen = []
    for how in ("max", "mean"):
        pix, lo, hi = reduce_stream(lambda s, e: a[s:e], T, 100, how, row_bytes=N * 4, block_bytes=4096,
                                    check=lambda block, start: seen.append(start))
        assert (lo, hi) == (0.5, float(np.float32(0.9)))
        assert np.array_equal(np.argwhere(~np.isfinite(pix)), [[43, 2]])
        if how == "max" or not np.isinf(bad):  # a mean of one infinity among finite values is that infinity
            assert np.array_equal(pix[43, 2], bad, equal_nan=True)
    assert len(seen) == 2  # only the block that holds it is shown to check, once per reduction
    pix, _, _ = reduce_stream(lambda s, e: a[s:e], T, 100, "max", row_bytes=N * 4, block_bytes=4096)
    wide = spread(spread(pix, 0), 1)
    assert np.array_equal(np.argwhere(~np.isfinite(wide)), [[t, r] for t in (42, 43, 44) for r in (1, 2, 3)])
    rows = reduce_axis(a[4_321:4_322], 4, 1, "max")  # across rows too
    assert not np.isfinite(rows[0, 1]) and np.isfinite(rows[0, [0, 2, 3]]).all()


def test_large_npz_above_the_limit_suggests_convert(tmp_path, runner):
    path = tmp_path / "big.npz"
    np.savez(path, **copy_like_arrays(L=200, N=512))
    result = run(runner, "plot", path, "--max-bytes", "100K", "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "convert the file to chunked HDF5" in result.stderr and "attnviz convert" in result.stderr


def test_streaming_recorder_equals_in_memory_recording(tmp_path):
    arrays = copy_like_arrays(L=700, N=32, full=True)
    memory_rec = TraceRecorder(task="copy")
    with TraceRecorder(stream_to=tmp_path / "s.h5", chunk_steps=64, task="copy") as rec:
        for t in range(arrays["inputs"].shape[0]):
            step = {k: v[t] for k, v in arrays.items()}
            rec.step(**step)
            memory_rec.step(**step)
        assert not (tmp_path / "s.h5").exists()  # appears only when complete
    assert attnviz.load(tmp_path / "s.h5") == memory_rec.trace()
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["write_weightings"].chunks == (64, 32) and f["write_weightings"].compression == "gzip"


def test_streaming_recorder_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError), TraceRecorder(stream_to=tmp_path / "s.h5", chunk_steps=4) as rec:
        for t in range(10):
            rec.step(**{k: v[t] for k, v in copy_like_arrays().items()})
        raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []
    rec = TraceRecorder(stream_to=tmp_path / "s.h5", chunk_steps=2)
    arrays = copy_like_arrays()
    arrays["output_mask"] = np.ones(len(arrays["inputs"]))
    arrays["output_mask"][3] = 0.5
    with pytest.raises(TraceError, match="has value 0.5 at step 3; an output mask holds 0 or 1"):
        for t in range(11):
            rec.step(**{k: v[t] for k, v in arrays.items()})
    assert list(tmp_path.iterdir()) == []


def test_a_streaming_recorder_keeps_non_finite_values_as_a_trace_in_memory_does(tmp_path):
    arrays = copy_like_arrays()
    arrays["write_weightings"][3, 2] = np.inf
    arrays["outputs"][5, 1] = np.nan
    memory_rec = TraceRecorder()
    with TraceRecorder(stream_to=tmp_path / "s.h5", chunk_steps=2) as rec:
        for t in range(len(arrays["inputs"])):
            rec.step(**{k: v[t] for k, v in arrays.items()})
            memory_rec.step(**{k: v[t] for k, v in arrays.items()})
    streamed, kept = attnviz.load(tmp_path / "s.h5"), memory_rec.trace()
    for key in arrays:
        assert np.array_equal(streamed[key], kept[key], equal_nan=True)
        assert np.array_equal(streamed[key], arrays[key], equal_nan=True)


def test_saved_traces_are_chunked_along_time(tmp_path):
    t = Trace(copy_like_arrays(L=2000, N=128))
    attnviz.save(t, tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5") as f:
        chunks = f["write_weightings"].chunks
        assert chunks[1:] == (128,) and 1 < chunks[0] < 4001
