"""Reduce a panel to the picture's resolution while reading it, block by block.

When a panel has more time steps than pixel columns (or more locations than pixel
rows) each pixel stands for a block of cells, reduced by ``max`` (a lone spike stays
visible) or ``mean``. When it has fewer, each cell covers several pixels (nearest
neighbour, as matplotlib's imshow). Memory depends on the picture and the block size,
never on the trace's length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .trace import check_values

BLOCK_BYTES = 16 * 2**20


def pixel_bins(n: int, pixels: int) -> np.ndarray:
    """Start index, in a run of n cells, of what each of ``pixels`` pixels shows.

    n > pixels: contiguous blocks (edges floor(i * n / pixels)); n <= pixels: the cell
    under each pixel's centre (repeated starts, which reduceat reads as one cell).
    """
    i = np.arange(pixels)
    if n > pixels:
        return (i * n) // pixels
    return np.minimum(((2 * i + 1) * n) // (2 * pixels), n - 1)


def reduce_axis(a: np.ndarray, pixels: int, axis: int, how: str = "max") -> np.ndarray:
    """Reduce (or repeat) axis ``axis`` of ``a`` to ``pixels`` entries."""
    n = a.shape[axis]
    starts = pixel_bins(n, pixels)
    if n <= pixels:
        return np.take(a, starts, axis=axis)
    if how == "max":
        return np.maximum.reduceat(a, starts, axis=axis)
    sums = np.add.reduceat(a.astype(np.float64, copy=False), starts, axis=axis)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    shape = [1] * a.ndim
    shape[axis] = pixels
    return sums / counts.reshape(shape)


def reduce_stream(read: Callable[[int, int], np.ndarray], T: int, width: int, height: int,
                  how: str = "max", row_bytes: int = 4, block_bytes: int = BLOCK_BYTES,
                  check: Callable[[np.ndarray, int], str | None] | None = None):
    """Reduce a (T, rows) panel read in blocks of steps to a (width, height) pixel grid.

    ``read(start, stop)`` returns steps [start, stop) as a (stop - start, rows) array.
    ``check(block, start)`` may return a problem (e.g. a NaN) to stop with ValueError.
    Returns (pixels (width, height) float64, data minimum, data maximum).
    """
    lo, hi = np.inf, -np.inf
    if T <= width:  # few steps: read them all (T <= width rows is small) and repeat
        block = read(0, T)
        _check(check, block, 0)
        rows = reduce_axis(block.astype(np.float64, copy=False), height, 1, how)
        return reduce_axis(rows, width, 0, how), float(block.min()), float(block.max())
    edges = np.append(pixel_bins(T, width), T)  # pixel i shows steps [edges[i], edges[i+1])
    out = np.full((width, height), -np.inf if how == "max" else 0.0)
    step = max(1, block_bytes // max(1, row_bytes))
    for b0 in range(0, T, step):
        b1 = min(T, b0 + step)
        block = read(b0, b1)
        _check(check, block, b0)
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        block = reduce_axis(block.astype(np.float64, copy=False), height, 1, how)
        i0 = int(np.searchsorted(edges, b0, "right")) - 1
        i1 = int(np.searchsorted(edges, b1 - 1, "right")) - 1
        local = np.clip(edges[i0 : i1 + 1], b0, b1) - b0
        if how == "max":
            np.maximum(out[i0 : i1 + 1], np.maximum.reduceat(block, local, axis=0), out=out[i0 : i1 + 1])
        else:
            out[i0 : i1 + 1] += np.add.reduceat(block, local, axis=0)
    if how == "mean":
        out /= np.diff(edges)[:, None]
    return out, lo, hi


def _check(check, block, start):
    if check is not None:
        problem = check(block, start)
        if problem:
            raise ValueError(problem)


def finite_check(name: str):
    """A ``check`` for reduce_stream that stops at the first non-finite value."""
    return lambda block, start: check_values(name, block, start)
