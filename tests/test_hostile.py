"""Hostile files: every command answers within 30 s, under 500 MB, with one line naming the file.

Each file is built here (small on disk); each command runs in its own process, whose peak memory
is read from the kernel and whose address space is capped, so that a runaway fails the test
instead of the machine.
"""

import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile

import h5py
import numpy as np
import pytest

from conftest import copy_like_arrays

SECONDS, PEAK_MB = 30, 500


def run_limited(*args, timeout=SECONDS, env=None, python=("-m", "attnviz")):
    """(exit code, stdout, stderr, seconds, peak RSS in MB) of `python -m attnviz ARGS` (``python``:
    what comes before ARGS; ``env``: variables added to the environment)."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, *python, *map(str, args)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, preexec_fn=cap, env={**os.environ, **(env or {})})
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                pytest.fail(f"attnviz {' '.join(map(str, args))} ran for more than {timeout} s")
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return (os.waitstatus_to_exitcode(status), out.read().decode(), err.read().decode(), seconds,
                usage.ru_maxrss / 1024)


def _small(f, skip=(), N=16):
    for k, v in copy_like_arrays(N=N).items():
        if k not in skip:
            f.create_dataset(k, data=v)


def declared_huge(path, written):
    """Weightings that declare 10,000,000 x 1,000,000 float32 (36 TiB); at most one chunk written."""
    T, N = 10_000_000, 1_000_000
    with h5py.File(path, "w") as f:
        f.create_dataset("inputs", shape=(T, 9), dtype="f4", chunks=(65536, 9))
        f.create_dataset("outputs", shape=(T, 8), dtype="f4", chunks=(65536, 8))
        for k in ("write_weightings", "read_weightings"):
            ds = f.create_dataset(k, shape=(T, N), dtype="f4", chunks=(4, 65536))
            if written:
                ds[0, :8] = 1.0


def build_chunk_of_1gib(path):
    with h5py.File(path, "w") as f:
        _small(f, skip=("write_weightings",), N=16)
        ds = f.create_dataset("write_weightings", shape=(11, 16), maxshape=(None, None), dtype="f4",
                              chunks=(16384, 16384), compression="gzip")
        ds[...] = copy_like_arrays(N=16)["write_weightings"]


def build_inflating_npz(path, T=262_144, N=1024):
    """Two weightings that inflate to 1 GiB each, from a file of a few MB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, shape in (("inputs", (T, 9)), ("outputs", (T, 8)), ("write_weightings", (T, N)),
                           ("read_weightings", (T, N))):
            with z.open(f"{key}.npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array_header_1_0(fp, {"descr": "<f4", "fortran_order": False, "shape": shape})
                zeros = bytes(4 * shape[1] * 4096)
                for start in range(0, T, 4096):
                    fp.write(zeros[: 4 * shape[1] * min(4096, T - start)])


def build_nested(path, depth=1000):
    with h5py.File(path, "w") as f:
        _small(f.create_group("/".join(["g"] * depth)))


def build_soft_loop(path):
    with h5py.File(path, "w") as f:
        f["a"] = h5py.SoftLink("/b")
        f["b"] = h5py.SoftLink("/a")
        g = f.create_group("t")
        _small(g, skip=("inputs", "outputs"))
        g["inputs"] = h5py.SoftLink("/t/outputs")
        g["outputs"] = h5py.SoftLink("/t/inputs")


def build_many(path, n=10_000):
    arrays = {k: v for k, v in copy_like_arrays(L=2, N=8).items()}
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"trace_{i:05d}")
            for k, v in arrays.items():
                g.create_dataset(k, data=v)
            g.attrs["task"] = "copy"


def build_dotdot(path):
    np.savez(path, **{f"../evil/{k}": v for k, v in copy_like_arrays().items()})


def build_huge_values(path):
    arrays = copy_like_arrays(L=5, N=16)
    arrays["write_weightings"] *= np.float32(1e30)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    declared_huge(d / "declared_huge.h5", written=False)
    declared_huge(d / "declared_huge_one_chunk.h5", written=True)
    build_chunk_of_1gib(d / "chunk_1gib.h5")
    build_inflating_npz(d / "inflating.npz")
    build_nested(d / "nested.h5")
    build_soft_loop(d / "soft_loop.h5")
    build_many(d / "many.h5")
    build_dotdot(d / "dotdot.npz")
    build_huge_values(d / "huge_values.h5")
    os.mkfifo(d / "fifo.h5")
    return d


COMMANDS = {
    "validate": ["validate", "F"],
    "inspect": ["inspect", "F"],
    "inspect --json": ["inspect", "F", "--json"],
    "plot": ["plot", "F", "--out-dir", "OUT"],
}
# file: (exit code of each command, words every error line holds)
EXPECT = {
    "declared_huge.h5": ({"validate": 0, "inspect": 0, "inspect --json": 0, "plot": 0}, ""),
    "declared_huge_one_chunk.h5": ({"validate": 1, "inspect": 1, "inspect --json": 1, "plot": 1},
                                   "10,000,000 x 1,000,000 float32 values (36.4 TiB)"),
    "chunk_1gib.h5": ({"validate": 1, "inspect": 1, "inspect --json": 1, "plot": 1}, "stored in chunks of 1.0 GiB"),
    "inflating.npz": ({"validate": 0, "inspect": 0, "inspect --json": 0, "plot": 0}, ""),
    "nested.h5": ({"validate": 0, "inspect": 0, "inspect --json": 0, "plot": 0}, ""),
    "soft_loop.h5": ({"validate": 1, "inspect": 1, "inspect --json": 1, "plot": 1}, "soft link"),
    "many.h5": ({"validate": 0, "inspect": 0, "inspect --json": 0}, ""),
    "dotdot.npz": ({"validate": 1, "inspect": 1, "inspect --json": 1, "plot": 1}, "is not allowed"),
    "huge_values.h5": ({"validate": 0, "inspect": 0, "inspect --json": 0, "plot": 0}, ""),
    "fifo.h5": ({"validate": 1, "inspect": 1, "inspect --json": 1, "plot": 1}, "is not a regular file"),
}
CASES = [(f, c) for f, (codes, _) in EXPECT.items() for c in codes]


@pytest.mark.parametrize("name, command", CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_hostile_file(files, tmp_path, name, command):
    codes, words = EXPECT[name]
    path = files / name
    args = [str(path) if a == "F" else str(tmp_path / "out") if a == "OUT" else a for a in COMMANDS[command]]
    code, out, err, seconds, peak = run_limited(*args)
    assert code == codes[command], (code, err[-2000:])
    assert seconds < SECONDS and peak < PEAK_MB, (seconds, peak)
    assert "Traceback" not in err and "Warning" not in err, err[-2000:]
    for line in err.strip().splitlines():
        assert line.startswith("attnviz: error: ") and str(path) in line and words in line, line


def test_a_huge_trace_is_drawn_by_window(files, tmp_path):
    path = files / "declared_huge_one_chunk.h5"
    code, _, err, seconds, peak = run_limited("plot", path, "-o", tmp_path / "w.png", "--time", "0:200")
    assert code == 0, err
    assert seconds < SECONDS and peak < PEAK_MB, (seconds, peak)


def test_huge_values_are_drawn_in_the_top_colour(files, tmp_path):
    from attnviz import load
    from attnviz.plot import PlotOptions, Renderer, Source, build_scene
    from attnviz.plot.colors import lut

    opts = PlotOptions().validated()
    scene = build_scene(Source.of_trace(load(files / "huge_values.h5"), opts), opts)
    r = Renderer(opts)
    import io

    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(r.png(scene))).convert("RGB")).astype(int)
    top, bottom, left, right = r.frame(scene).boxes[2]
    hot = np.abs(img[top:bottom, left:right] - lut("attnviz")[255, :3]).max(axis=-1) <= 3
    assert hot.mean() > 0.02  # the diagonal is drawn, at full strength
