"""Watching a run learn: learning curves, animations of snapshots, progress lines."""

import io
import math

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz import Trace
from attnviz.plot.animate import snapshots
from attnviz.plot.run import draw_learning_curves, read_metrics

from conftest import copy_like_arrays, run

HEADER = "step,sequences,train_bits_per_seq,heldout_bits_per_seq,heldout_wrong_bits_per_seq,lr,rollbacks,seconds\n"


def snapshot(step, loc=3, value=0.5, extra=None, name=None):
    arrays = copy_like_arrays(L=5, N=64)
    arrays["write_weightings"][0, :] = 0
    arrays["write_weightings"][0, loc] = value
    if extra is not None:
        arrays["write_weightings"][1, :] = 0
        arrays["write_weightings"][1, extra] = 1.0
    meta = {"task": "copy", "sequence_length": 5} | ({} if step is None else {"step": step})
    return Trace(arrays, meta, name or f"step_{step:07d}")


def gif_frames(path):
    im = Image.open(path)
    out = []
    for i in range(im.n_frames):
        im.seek(i)
        out.append(np.asarray(im.convert("RGB")).astype(int))
    return out


def test_frames_follow_the_step_metadata_then_the_name(tmp_path):
    attnviz.save([snapshot(10, name="b"), snapshot(5, name="z"), snapshot(None, name="a"), snapshot(7, name="c")],
                 tmp_path / "s.h5")
    assert [s.name for s in snapshots([tmp_path / "s.h5"])] == ["z", "c", "b", "a"]
    out = attnviz.animate([tmp_path / "s.h5"], tmp_path / "s.gif", fps=5)
    im = Image.open(out)
    assert im.n_frames == 4 and im.info["loop"] == 0 and im.info["duration"] == 200


def test_every_frame_shares_one_view(tmp_path):
    """The same value gets the same colour at the same place in every frame, whatever else a frame holds."""
    attnviz.save([snapshot(1), snapshot(2, extra=40)], tmp_path / "s.h5")
    out = attnviz.animate([tmp_path / "s.h5"], tmp_path / "s.gif")
    a, b = gif_frames(out)
    assert a.shape == b.shape
    from attnviz.plot import PlotOptions, Renderer, Source, build_scene

    # where location 3 at step 0 is drawn, with the crop both frames share (it reaches location 40)
    opts = PlotOptions().validated()
    scene = build_scene(Source.of_trace(snapshot(2, extra=40), opts), opts)
    top, bottom, left, right = Renderer(opts).frame(scene).boxes[2]
    (y0, y1), N = scene.panels[2].rows, 64
    assert y0 <= 40 < y1 or y0 <= 40 + N < y1
    row = 3 if 3 >= y0 else 3 + N  # the crop may be rolled
    x = left + int(0.5 * (right - left) / 11)
    y = bottom - 1 - int((row + 0.5 - y0) / (y1 - y0) * (bottom - top))
    assert (a[y, x] == b[y, x]).all() and a[y, x].tolist() != a[bottom - 2, right - 2].tolist()


def test_gifs_are_byte_reproducible(tmp_path):
    attnviz.save([snapshot(1), snapshot(2, extra=9)], tmp_path / "s.h5")
    one = attnviz.animate([tmp_path / "s.h5"], tmp_path / "a.gif", layout="paper").read_bytes()
    assert one == attnviz.animate([tmp_path / "s.h5"], tmp_path / "b.gif", layout="paper").read_bytes()


def test_mp4_with_the_video_extra_and_a_clear_error_without(tmp_path, monkeypatch):
    import imageio_ffmpeg  # the test extras install the video extra's encoder

    attnviz.save([snapshot(1), snapshot(2, extra=9), snapshot(3)], tmp_path / "s.h5")
    out = attnviz.animate([tmp_path / "s.h5"], tmp_path / "a.mp4", fps=3)
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (800, 560) and meta["fps"] == 3 and sum(1 for _ in reader) == 3
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(attnviz.AttnvizError, match=r"MP4 needs an encoder: pip install 'attnviz\[video\]'"):
        attnviz.animate([tmp_path / "s.h5"], tmp_path / "b.mp4")
    assert not (tmp_path / "b.mp4").exists()


def test_learning_curves_draw_the_files_values(tmp_path):
    (tmp_path / "metrics.csv").write_text(HEADER + "50,1600,80.5,79.1,30.25,0.001,0,1.5\n"
                                          "100,3200,60.0,55.5,12.5,0.001,0,3.0\n"
                                          "150,4800,20.0,18.0,0.05,0.0003,0,4.5\n")
    m = read_metrics(tmp_path / "metrics.csv")
    fig = draw_learning_curves(m)
    wrong_ax, bits_ax = fig.axes
    np.testing.assert_array_equal(wrong_ax.lines[0].get_xydata(), [[1600, 30.25], [3200, 12.5], [4800, 0.05]])
    assert wrong_ax.lines[1].get_ydata()[0] == 0.1  # the convergence threshold
    np.testing.assert_array_equal(bits_ax.lines[1].get_ydata(), [79.1, 55.5, 18.0])
    assert any(line.get_xdata()[0] == 4800 for line in wrong_ax.lines[2:])  # the rate change is marked
    (tmp_path / "old.csv").write_text("step,sequences,loss,bits_per_sequence,wrong_bits,lr,seconds\n"
                                      "50,1600,69.31471805599453,79.1,30.25,0.001,1.5\n")
    old = read_metrics(tmp_path / "old.csv")  # an older run folder: loss was in nats
    assert math.isclose(old["train_bits_per_seq"][0], 100.0) and old["heldout_wrong_bits_per_seq"][0] == 30.25


def test_plot_a_run_folder_with_no_snapshot_one_or_many(tmp_path, runner):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.csv").write_text(HEADER + "50,1600,80.5,79.1,30.25,0.001,0,1.5\n")
    assert [p.name for p in attnviz.plot_run(folder)] == ["learning_curves.png"]
    attnviz.save(snapshot(50), folder / "traces.h5")
    r = run(runner, "plot", folder)
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (folder / "figures").iterdir())
    assert names == ["evolution.gif", "last_snapshot.png", "learning_curves.png"]
    assert Image.open(folder / "figures" / "evolution.gif").n_frames == 1
    attnviz.save([snapshot(50), snapshot(100, extra=9)], folder / "traces.h5")
    r = run(runner, "plot", folder, "--out-dir", tmp_path / "figs", "--layout", "paper")
    assert r.exit_code == 0 and Image.open(tmp_path / "figs" / "evolution.gif").n_frames == 2
    last = np.asarray(Image.open(io.BytesIO((tmp_path / "figs" / "last_snapshot.png").read_bytes())))
    assert last.shape[0] > 700  # the paper layout's three rows


def test_plot_a_run_folder_that_diverged_draws_the_sequence_it_stopped_on(tmp_path, runner):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.csv").write_text(HEADER + "50,1600,80.5,79.1,30.25,0.001,0,1.5\n")
    attnviz.save(snapshot(50), folder / "traces.h5")
    arrays = copy_like_arrays(L=5, N=64)
    arrays["read_weightings"][7:] = np.nan
    attnviz.save(Trace(arrays, {"task": "copy"}), folder / "diverged.h5")
    r = run(runner, "plot", folder)
    assert r.exit_code == 0, r.output
    assert (folder / "figures" / "diverged.png").is_file() and "diverged.png" in r.stdout
    from attnviz.plot.colors import NONFINITE_RGBA

    pixels = np.asarray(Image.open(folder / "figures" / "diverged.png").convert("RGB"))
    assert (pixels == NONFINITE_RGBA[:3]).all(axis=-1).sum() > 100  # the NaN steps, in their colour


@pytest.mark.parametrize("args, option", [
    (["--trace", "nonexistent"], "--trace"), (["--shard", "3/4"], "--shard"), (["--jobs", "7"], "--jobs"),
    (["-o", "OUT/x.png"], "-o/--output"), (["-f", "svg"], "--format svg"), (["-f", "png", "-f", "pdf"], "--format pdf"),
])
def test_options_a_run_folder_cannot_honour_are_usage_errors(tmp_path, runner, args, option):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.csv").write_text(HEADER + "50,1600,80.5,79.1,30.25,0.001,0,1.5\n")
    attnviz.save(snapshot(50), folder / "traces.h5")
    r = run(runner, "plot", folder, *[a.replace("OUT", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [
        f"attnviz: error: {option} does not apply to a run folder ({folder}), which is drawn whole into "
        "RUN_DIR/figures or --out-dir as PNG and GIF (with -f html, its page too); to draw its snapshots as trace "
        f"files, give {folder / 'traces.h5'} (see 'attnviz plot --help')"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["metrics.csv", "run", "traces.h5"]  # nothing written


def test_a_run_folder_honours_the_figure_options_in_every_file(tmp_path, runner):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.csv").write_text(HEADER + "50,1600,80.5,79.1,30.25,0.001,0,1.5\n")
    attnviz.save(snapshot(50), folder / "traces.h5")
    sizes = {}
    for dpi in ("100", "50"):
        r = run(runner, "plot", folder, "--dpi", dpi, "--transparent", "--shard", "1/1", "--out-dir", tmp_path / dpi)
        assert r.exit_code == 0, r.output
        sizes[dpi] = {p.name: Image.open(p).size for p in (tmp_path / dpi).iterdir()}
        curves = Image.open(tmp_path / dpi / "learning_curves.png")
        assert curves.mode == "RGBA" and curves.getpixel((0, 0))[3] == 0  # transparent
    assert sizes["100"]["learning_curves.png"] == (1000, 380)
    for name, (w, h) in sizes["100"].items():
        assert abs(sizes["50"][name][0] - w / 2) <= 1 and abs(sizes["50"][name][1] - h / 2) <= 1, name


def test_progress_off_a_terminal_is_one_plain_line_per_evaluation(tmp_path, runner):
    small = ["--memory-size", "16", "--word-size", "8", "--controller-size", "16", "--processes", "1"]
    r = run(runner, "train", "--run-dir", tmp_path / "r", "--max-steps", "100", *small)
    assert r.exit_code == 0, r.output
    lines = r.stderr.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["50", "100"]
    assert all("seqs/s" in line and "held-out wrong bits/seq" in line and "left" in line for line in lines)
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert rows[0] == HEADER.strip() and len(rows) == 3
    r = run(runner, "train", "--run-dir", tmp_path / "q", "--max-steps", "100", "--quiet", *small)
    assert r.exit_code == 0 and r.stderr == "" and r.stdout.startswith("max_steps: step 100, 3,200 sequences")
    assert "curriculum" not in r.stderr  # copy has none
    r = run(runner, "train", "--task", "repeat-copy", "--run-dir", tmp_path / "c", "--max-steps", "50", "--batch-size",
            "4", "--trace-every", "0", *small)
    assert r.exit_code == 0, r.output
    assert "curriculum level 1 of 10 (level 1: " in r.stderr  # starts at 1 repeat; says what it waits for


def test_animate_command(tmp_path, runner):
    attnviz.save([snapshot(1), snapshot(2)], tmp_path / "s.h5")
    r = run(runner, "animate", tmp_path / "s.h5", "-o", tmp_path / "s.gif", "--fps", "10", "--no-title")
    assert r.exit_code == 0 and Image.open(tmp_path / "s.gif").n_frames == 2
    r = run(runner, "animate", tmp_path / "s.h5", "-o", tmp_path / "s.png")
    assert r.exit_code == 2 and "animations are written as .gif or .mp4" in r.stderr
