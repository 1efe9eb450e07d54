"""Every command, on every bad input: one line naming the file, a non-zero exit, no traceback."""

import json

import h5py
import numpy as np
import pytest

from attnviz import Trace, save

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
        f.create_dataset("memory", shape=(11, 16, 10**10), dtype="f8", chunks=(1, 16, 10**4))


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
    args = [command, path] + ([tmp_path / "out.npz"] if command == "convert" else [])
    result = run(runner, *args, "--max-bytes", "1G")
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
