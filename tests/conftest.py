from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from attnviz.cli import app


def copy_like_arrays(L: int = 5, N: int = 16, M: int = 4, width: int = 8, seed: int = 0,
                     heads: int | None = None, full: bool = False) -> dict[str, np.ndarray]:
    """A synthetic copy-task trace with a perfect diagonal write and read walk."""
    rng = np.random.default_rng(seed)
    T = 2 * L + 1
    seq = rng.integers(0, 2, (L, width)).astype(np.float32)
    x = np.zeros((T, width + 1), np.float32)
    x[:L, :width] = seq
    x[L, width] = 1
    y = np.zeros((T, width), np.float32)
    y[L + 1 :] = seq
    ww = np.zeros((T, N), np.float32)
    rw = np.zeros((T, N), np.float32)
    for t in range(T):
        ww[t, min(t, L) % N] = 1
        rw[t, max(0, t - L - 1) % N] = 1
    arrays = {"inputs": x, "outputs": y, "write_weightings": ww, "read_weightings": rw}
    if full:
        arrays.update(targets=y.copy(), adds=rng.random((T, M), np.float32),
                      erases=rng.random((T, M), np.float32), reads=rng.random((T, M), np.float32),
                      memory=rng.random((T, N, M), np.float32))
    if heads:
        for k in ("write_weightings", "read_weightings"):
            arrays[k] = np.repeat(arrays[k][:, None, :], heads, axis=1)
    if full:
        for kind in ("write", "read"):
            arrays.update(walk_stages(kind, arrays[f"{kind}_weightings"]))
    return arrays


def walk_stages(kind: str, weightings: np.ndarray) -> dict[str, np.ndarray]:
    """Addressing stages that recombine exactly into a walk of one-hot weightings (moving at most one
    location a step): location-based (gate 0; a uniform content weighting, key strength 0), shifted by
    each step's move, sharpening 1. Step 0 shifts by 0 from itself."""
    w = weightings.astype(np.float32)
    N = w.shape[-1]
    loc = w.argmax(axis=-1)
    move = np.zeros_like(loc)
    move[1:] = (loc[1:] - loc[:-1] + N // 2) % N - N // 2
    shifts = np.zeros(loc.shape + (3,), np.float32)
    np.put_along_axis(shifts, (move + 1)[..., None], 1.0, axis=-1)
    gated = np.concatenate([w[:1], w[:-1]])
    return {f"{kind}_content_weightings": np.full(w.shape, 1 / N, np.float32),
            f"{kind}_key_strengths": np.zeros(loc.shape, np.float32), f"{kind}_gates": np.zeros(loc.shape, np.float32),
            f"{kind}_gated_weightings": gated, f"{kind}_shifts": shifts, f"{kind}_shifted_weightings": w.copy(),
            f"{kind}_sharpenings": np.ones(loc.shape, np.float32)}


@pytest.fixture
def runner():
    return CliRunner()


def run(runner, *args):
    """Invoke the CLI; stdout and stderr come back separately."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True, scope="session")
def frame_cache_dir(tmp_path_factory):
    """Tests never write frames into the user's ~/.cache."""
    import os

    old = os.environ.get("ATTNVIZ_CACHE_DIR")
    os.environ["ATTNVIZ_CACHE_DIR"] = str(tmp_path_factory.mktemp("frame-cache"))
    yield
    if old is None:
        os.environ.pop("ATTNVIZ_CACHE_DIR", None)
    else:
        os.environ["ATTNVIZ_CACHE_DIR"] = old


def png_cells_match_matplotlib(scene, skip=lambda p, i, j: False) -> int:
    """The fast PNG renderer against matplotlib's drawing of the same scene: at the centre of every cell
    (but beside a time marker, a spine, or where ``skip(panel, column, row)``), the two pixels within 2
    levels of each other. Returns the cells checked."""
    import io

    from PIL import Image

    from attnviz.plot import Renderer, draw_scene
    from attnviz.plot.draw import default_style

    renderer = Renderer(scene.opts)
    img = np.asarray(Image.open(io.BytesIO(renderer.png(scene))).convert("RGB")).astype(int)
    with default_style():
        fig = draw_scene(scene).figure
        fig.canvas.draw()
    mpl = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    assert mpl.shape == img.shape
    checked = 0
    for p, (top, bottom, left, right) in zip(scene.panels, renderer.frame(scene).boxes, strict=True):
        C, R = p.values.shape
        for i in range(C):
            x = int(left + (i + 0.5) * (right - left) / C)
            if any(abs(x - (left + (m - p.time[0]) * (right - left) / C)) < 2 for m in scene.markers):
                continue
            for j in range(R):
                y = int(bottom - (j + 0.5) * (bottom - top) / R)
                if top + 1 < y < bottom - 2 and not skip(p, i, j):
                    assert np.abs(img[y, x] - mpl[y, x]).max() <= 2, (p.title, i, j, img[y, x], mpl[y, x])
                    checked += 1
    return checked
