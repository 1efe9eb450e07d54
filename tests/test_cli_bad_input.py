"""Every command, on every bad input: one line naming the file, a non-zero exit, no traceback."""

import json

import h5py
import numpy as np
import pytest

from attnviz import Trace, save
from attnviz.cli import app

from conftest import copy_like_arrays, run


def _npz(path, arrays, **extra):
    np.savez(path, **arrays, **extra)


def _h5(path, arrays, **attrs):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        f.attrs.update(attrs)


def _with(**changes):
    arrays = copy_like_arrays()
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v(arrays[k]) if callable(v) else v
    return arrays


def _truncated(path, suffix):
    whole = path.with_name("whole" + suffix)
    save(Trace(copy_like_arrays(L=40, N=64, full=True)), whole, compression=True)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _external(path, _):
    with h5py.File(path, "w") as f:
        for k, v in copy_like_arrays().items():
            if k != "read_weightings":
                f.create_dataset(k, data=v)
        f["read_weightings"] = h5py.ExternalLink("missing_file.h5", "/read_weightings")


def _huge(path, _):
    with h5py.File(path, "w") as f:
        for k, v in copy_like_arrays(N=16).items():
            f.create_dataset(k, data=v)
        ds = f.create_dataset("memory", shape=(11, 16, 10**10), dtype="f8", chunks=(1, 16, 10**4))
        ds[0, 0, :10] = 1.0  # one chunk written: the rest is not known to be fill without reading it


BAD = {
    # name: (suffix, builder(path, suffix), words expected in the message)
    "missing": (".h5", None, "no such file"),
    "directory": ("", lambda p, s: p.mkdir(), "is a directory"),
    "empty": (".h5", lambda p, s: p.write_bytes(b""), "is empty"),
    "random-bytes": (".h5", lambda p, s: p.write_bytes(np.random.default_rng(0).bytes(4096)),
                     "neither HDF5 nor NPZ"),
    "neither": (".npz", lambda p, s: p.write_text("time,location\n1,2\n"), "neither HDF5 nor NPZ"),
    "truncated-h5": (".h5", _truncated, "truncated"),
    "truncated-npz": (".npz", _truncated, "truncated"),
    "missing-dataset": (".h5", lambda p, s: _h5(p, _with(outputs=None)), "missing required dataset"),
    "wrong-rank": (".npz", lambda p, s: _npz(p, _with(inputs=lambda a: a[:, :, None])), "rank 3"),
    "time-lengths": (".h5", lambda p, s: _h5(p, _with(outputs=lambda a: a[:-2])), "time steps"),
    "n-differs": (".npz", lambda p, s: _npz(p, _with(read_weightings=lambda a: a[:, :-1])), "N (memory"),
    "zero-steps": (".h5", lambda p, s: _h5(p, {k: v[:0] for k, v in copy_like_arrays().items()}),
                   "0 time steps"),
    "string-dtype": (".npz", lambda p, s: _npz(p, _with(inputs=lambda a: a.astype("U3"))), "string"),
    "bytes-dtype-h5": (".h5", lambda p, s: _h5(p, _with(inputs=lambda a: a.astype("S3"))), "bytes"),
    "complex-dtype": (".h5", lambda p, s: _h5(p, _with(outputs=lambda a: a.astype(np.complex64))),
                      "complex"),
    "nan": (".h5", lambda p, s: _h5(p, _with(write_weightings=lambda a: np.where(a > 0, np.nan, a))),
            "nan at step 0"),
    "inf": (".npz", lambda p, s: _npz(p, _with(outputs=lambda a: a - np.inf)), "-inf at step 0"),
    "attrs-not-json": (".npz", lambda p, s: _npz(p, copy_like_arrays(), attrs=np.array("{task: copy")),
                       "not valid JSON"),
    "attrs-not-flat": (".npz", lambda p, s: _npz(p, copy_like_arrays(),
                                                 attrs=np.array(json.dumps({"a": {"b": 1}}))), "not flat"),
    "h5-attr-array": (".h5", lambda p, s: _h5(p, copy_like_arrays(), task=np.arange(3)), "metadata"),
    "pickled-object": (".npz", lambda p, s: np.savez(p, **_with(inputs=np.array([{"x": 1}] * 11, object))),
                       "pickled"),
    "external-link": (".h5", _external, "external link"),
    "huge-dataset": (".h5", _huge, "above the"),
}


@pytest.fixture(params=sorted(BAD))
def bad_file(request, tmp_path):
    suffix, build, words = BAD[request.param]
    path = tmp_path / f"bad_{request.param}{suffix}"
    if build:
        build(path, suffix)
    return path, words


@pytest.mark.parametrize("command", ["inspect", "validate", "convert"])
def test_bad_input_gives_one_line_and_nonzero_exit(runner, tmp_path, bad_file, command):
    path, words = bad_file
    if path.is_dir() and command != "convert":  # validate and inspect take folders: this one is empty
        words = "holds no trace files"
    args = [command, path] + ([tmp_path / "out.npz"] if command == "convert" else [])
    result = run(runner, *args, "--max-bytes", "1G")
    if command == "convert" and path.stem in ("bad_nan", "bad_inf"):  # what a model that diverged recorded:
        import attnviz  # valid but for its values, and converted as it is

        assert result.exit_code == 0, result.output
        a, b = attnviz.load(path), attnviz.load(tmp_path / "out.npz")
        assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.arrays) and a.arrays.keys() == b.arrays.keys()
        return
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert words.lower() in lines[0].lower()
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.npz").exists()  # never a half-written output


def test_markup_in_file_names_prints_as_itself(runner, tmp_path):
    path = tmp_path / "[red]x[/red].h5"
    result = run(runner, "inspect", path)
    assert "[red]x[/red].h5" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["plot", "T", "--max-bytes", "abc"], "--max-bytes 'abc' is not a size"),
    (["plot", "T", "--max-bytes", "inf"], "--max-bytes 'inf' is not a size"),
    (["plot", "T", "--time", "abc"], "--time window 'abc' is not START:STOP"),
    (["plot", "T", "--shard", "x"], "--shard 'x' is not K/N"),
    (["plot", "T", "--shard", "5/4"], "K must be between 1 and N"),
    (["plot", "T", "--limits", "outputs=a:b"], "limits 'a:b' are not LOW:HIGH"),
    (["plot", "T", "--figsize", "3"], "--figsize '3' is not AxB"),
    (["plot", "T", "--grid", "2x"], "--grid '2x' is not AxB"),
    (["plot", "T", "--grid", "0x0"], "grid 0x0 needs at least one row"),
    (["plot", "T", "--panels", "inputs,outputs,write_weightings", "--grid", "1x2"],
     "grid 1x2 has 2 cells for 3 panels (inputs, outputs, write_weightings); give a larger --grid or fewer"),
    (["plot", "T", "--grid", "1x2"], "grid 1x2 has 2 cells for 4 panels"),  # the layout's four
    (["plot", "T", "--head", "3"], "dataset 'write_weightings': head 3 does not exist; it has 1 head, head 0"),
    (["plot", "T", "--head", "-1"], "head -1 does not exist; heads are numbered from 0"),
    (["plot", "T", "--panels", "write_weighting"],
     "unknown panel 'write_weighting'; did you mean write_weightings, read_weightings, precedence_weightings?"),
    (["plot", "T", "--panel-cmap", "foo"], "--panel-cmap 'foo' is not PANEL=VALUE"),
    (["plot", "T", "--panel-cmap", "inputs=foo"], "unknown colormap 'foo'"),
    (["plot", "T", "--grid", "100x100"], "over the limit of 50,000,000"),
    (["plot", "T", "--dpi", "1e6"], "over the limit of 50,000,000"),
    (["plot", "T", "--figsize", "200x200"], "over the limit of 50,000,000"),
    (["plot", "T", "--layout", "nope"], "'nope' is not one of 'grid', 'paper'"),
    (["plot", "T", "--reduce", "median"], "'median' is not one of 'max', 'mean'"),
    (["plot", "T", "--format", "gif"], "'gif' is not one of 'png', 'svg', 'pdf'"),
    (["plot", "T", "-o", "out.jpg"], "unknown output format 'jpg'"),
    (["plot", "T", "-o", "DIR"], "is a folder; --output names a file"),
    (["plot", "T", "--nope"], "No such option: --nope"),
    (["validate", "T", "--weightings", "--tol", "nan"], "--tol nan must be a finite number"),
    (["train", "--optimizer", "sgd"], "'sgd' is not one of 'adam', 'rmsprop'"),
    (["train", "--task", "sort"], "'sort' is not one of 'copy', 'repeat-copy', 'associative-recall'"),
    (["train", "--controller", "gru"], "'gru' is not one of 'lstm', 'feedforward'"),
])
def test_usage_errors_are_one_line_and_exit_2(runner, tmp_path, args, words):
    save(Trace(copy_like_arrays()), tmp_path / "t.h5")
    args = [str(tmp_path / "t.h5") if a == "T" else str(tmp_path) if a == "DIR" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnviz: error: ") and words in lines[0], lines
    assert "please report" not in result.stderr and not list(tmp_path.glob("*.png"))


def test_cli_choices_are_the_librarys():
    from attnviz.cli import Controller, Layout, Optimizer, Reduction, TaskName
    from attnviz.plot.options import LAYOUTS, REDUCTIONS
    from attnviz.trainer.optim import OPTIMIZERS
    from attnviz.trainer.tasks import TASKS

    assert [e.value for e in Layout] == list(LAYOUTS) and [e.value for e in Reduction] == list(REDUCTIONS)
    assert [e.value for e in TaskName] == list(TASKS) and [e.value for e in Optimizer] == list(OPTIMIZERS)
    assert [e.value for e in Controller] == ["lstm", "feedforward"]


def test_an_internal_error_keeps_its_own_code(runner, monkeypatch, tmp_path):
    import attnviz.batch

    def broken(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(attnviz.batch, "plot_files", broken)
    result = runner.invoke(app, ["plot", str(tmp_path / "t.h5")])
    assert result.exit_code == 3
    assert "unexpected ZeroDivisionError" in result.stderr and "please report" in result.stderr


def test_an_unwritable_output_fails_its_trace_only(runner, tmp_path):
    for name in ("a", "b", "c"):
        save(Trace(copy_like_arrays()), tmp_path / f"{name}.h5")
    out = tmp_path / "out"
    (out / "b.png").mkdir(parents=True)  # a folder where b's figure should go
    result = runner.invoke(app, ["plot", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), str(tmp_path / "c.h5"),
                                 "--out-dir", str(out)])
    assert result.exit_code == 1
    assert f"{out / 'b.png'}: is a folder" in result.stderr and ".tmp" not in result.stderr
    assert "1 trace(s) or file(s) failed, 3 file(s) written" in result.stderr  # a, c and index.html
    assert (out / "a.png").is_file() and (out / "c.png").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "index.html"]  # no temporary left


def test_an_overwritten_output_keeps_its_mode(runner, tmp_path):
    import os

    save(Trace(copy_like_arrays()), tmp_path / "t.h5")
    assert runner.invoke(app, ["plot", str(tmp_path / "t.h5")]).exit_code == 0
    os.chmod(tmp_path / "t.png", 0o640)
    assert runner.invoke(app, ["plot", str(tmp_path / "t.h5"), "--layout", "paper"]).exit_code == 0
    assert (tmp_path / "t.png").stat().st_mode & 0o777 == 0o640


def test_convert_and_record_name_the_destination(runner, tmp_path):
    from pathlib import Path

    save(Trace(copy_like_arrays()), tmp_path / "t.h5")
    (tmp_path / "d.npz").mkdir()
    result = runner.invoke(app, ["convert", str(tmp_path / "t.h5"), str(tmp_path / "d.npz")])
    assert result.exit_code == 1 and f"{tmp_path / 'd.npz'}: is a folder" in result.stderr
    ckpt = Path(__file__).resolve().parent.parent / "sample_traces" / "copy_checkpoint.npz"
    copy = tmp_path / "ckpt.npz"
    copy.write_bytes(ckpt.read_bytes())
    result = runner.invoke(app, ["record", str(copy), "-o", str(copy)])
    assert result.exit_code == 1 and "the output is the checkpoint" in result.stderr
    assert copy.read_bytes() == ckpt.read_bytes()
    result = runner.invoke(app, ["record", str(copy), "-o", str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and "unknown suffix '.txt'" in result.stderr
