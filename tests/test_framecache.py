"""The disk frame cache: a hit gives the same bytes as a fresh drawing, without matplotlib."""

import json
import subprocess
import sys

from attnviz import Trace
from attnviz.framecache import FrameCache, default_dir
from attnviz.plot import PlotOptions, Renderer, Source, build_scene

from conftest import copy_like_arrays

OPTS = PlotOptions(layout="paper", title=True, colorbar=True, markers=(5,))


def render(cache_dir, opts=OPTS, L=5):
    t = Trace(copy_like_arrays(L=L, full=True), {"task": "copy", "step": 4})
    return Renderer(opts, cache_dir=cache_dir).png(build_scene(Source.of_trace(t, opts), opts))


def frames(d):
    return sorted(d.glob("frame-*.npz"))


def test_hit_gives_the_same_bytes_as_drawing(tmp_path):
    drawn = render(None)
    assert render(tmp_path) == drawn  # miss: drawn and stored
    stored = frames(tmp_path)
    assert stored and len(list(tmp_path.glob("lut-*.npz"))) == 2  # attnviz, and RdBu_r for adds and reads
    assert render(tmp_path) == drawn  # hit: nothing new
    assert frames(tmp_path) == stored
    render(tmp_path, L=7)  # another geometry, other frames
    assert len(frames(tmp_path)) > len(stored)


def test_options_are_part_of_the_key(tmp_path):
    a = render(tmp_path, PlotOptions(title=True))
    n = len(frames(tmp_path))
    b = render(tmp_path, PlotOptions(title=True, fontsize=14))
    assert a != b and len(frames(tmp_path)) == 2 * n


def test_damaged_or_foreign_entries_are_redrawn(tmp_path):
    drawn = render(tmp_path)
    for p in tmp_path.glob("*.npz"):
        p.write_bytes(b"not a zip file")
    assert render(tmp_path) == drawn
    # an entry whose stored key differs (a hash collision, a copied file) is not used
    cache = FrameCache(tmp_path)
    cache.save("lut", "attnviz", lut=__import__("numpy").zeros((256, 4), "uint8"))
    path = cache._path("lut", "attnviz")[0]
    other = FrameCache(tmp_path / "other")
    other.save("lut", "viridis", lut=__import__("numpy").zeros((256, 4), "uint8"))
    next((tmp_path / "other").glob("lut-*.npz")).replace(path)
    assert cache.load("lut", "attnviz") is None


def test_unwritable_cache_costs_nothing_but_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    assert render(blocker / "cache") == render(None)


def test_cache_is_pruned_to_its_limit(tmp_path):
    import numpy as np

    cache = FrameCache(tmp_path, max_entries=3)
    for i in range(5):
        cache.save("frame", str(i), pixels=np.zeros((2, 2, 4), np.uint8))
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert cache.load("frame", "4") is not None


def test_cache_folder_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path))
    assert default_dir() == tmp_path
    for off in ("", "0", "off"):
        monkeypatch.setenv("ATTNVIZ_CACHE_DIR", off)
        assert default_dir() is None
    monkeypatch.delenv("ATTNVIZ_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_dir() == tmp_path / "attnviz"


def test_second_plot_imports_no_matplotlib(tmp_path):
    """The point of the cache: a repeated single plot skips matplotlib entirely."""
    from attnviz.io import save

    trace = tmp_path / "t.h5"
    save(Trace(copy_like_arrays(L=6)), trace)
    script = (
        "import sys, json; from attnviz.batch import plot_files; "
        f"r = plot_files([{str(trace)!r}], out_dir={str(tmp_path / 'out')!r}); "
        "print(json.dumps([len(r.written), len(r.failures), 'matplotlib' in sys.modules]))"
    )
    env = {"ATTNVIZ_CACHE_DIR": str(tmp_path / "cache"), "PATH": "", "HOME": str(tmp_path),
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    outs = [json.loads(subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                                      text=True).stdout) for _ in range(2)]
    assert outs == [[1, 0, True], [1, 0, False]]
