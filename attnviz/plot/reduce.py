"""Reduce a panel to the picture's resolution while reading it, block by block.

When a panel has more time steps than pixel columns (or more locations than pixel
rows) each pixel stands for a block of cells, reduced by ``max`` (a lone spike stays
visible) or ``mean``. When it has fewer, cells are kept as they are and the back ends
let each cover several pixels (nearest neighbour, as matplotlib's imshow). Memory
depends on the picture and the block size, never on the trace's length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..trace import check_values

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


def nearest(n: int, pixels: int) -> np.ndarray:
    """Which of n cells each of ``pixels`` pixels shows: the cell under the pixel's centre."""
    return np.minimum(((2 * np.arange(pixels) + 1) * n) // (2 * pixels), n - 1)


def reduce_axis(a: np.ndarray, pixels: int, axis: int, how: str = "max") -> np.ndarray:
    """Reduce axis ``axis`` of ``a`` to ``pixels`` entries if it has more (float64 out)."""
    n = a.shape[axis]
    if n <= pixels:
        return a.astype(np.float64, copy=False)
    starts = pixel_bins(n, pixels)
    if how == "max":
        return np.maximum.reduceat(a, starts, axis=axis).astype(np.float64, copy=False)
    sums = np.add.reduceat(a, starts, axis=axis, dtype=np.float64)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    shape = [1] * a.ndim
    shape[axis] = pixels
    return sums / counts.reshape(shape)


def spread(a: np.ndarray, axis: int) -> np.ndarray:
    """Each entry becomes the maximum of itself and its two neighbours along ``axis``: after a
    max reduction, a lone spike covers three pixels instead of one that nobody sees."""
    out = a.copy()
    n = a.shape[axis]
    if n > 1:
        lo, hi = [slice(None)] * a.ndim, [slice(None)] * a.ndim
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        lo, hi = tuple(lo), tuple(hi)
        np.maximum(out[hi], a[lo], out=out[hi])
        np.maximum(out[lo], a[hi], out=out[lo])
    return out


def reduce_stream(read: Callable[[int, int], np.ndarray], T: int, width: int,
                  how: str = "max", row_bytes: int = 4, block_bytes: int = BLOCK_BYTES,
                  check: Callable[[np.ndarray, int], str | None] | None = None, align: int = 1,
                  rows_to: int | None = None):
    """Reduce a (T, rows) panel read in blocks of steps to at most ``width`` columns.

    ``read(start, stop)`` returns steps [start, stop) as a (stop - start, rows) array;
    blocks hold about ``block_bytes`` and start at multiples of ``align`` steps (the
    HDF5 chunk height, so that no chunk is read twice). ``check(block, start)`` names
    the first bad value of a block that holds a non-finite one (then ValueError). With
    ``rows_to``, each block's rows are reduced to that many as it is read (memory then grows
    with the picture, not with the rows).
    Returns (cells (min(T, width), rows) float64, data minimum, data maximum).
    """
    def rows(block):
        return block if rows_to is None else reduce_axis(block, rows_to, 1, how)

    step = max(1, block_bytes // max(1, row_bytes))
    if align <= step:  # whole chunks per block, unless a chunk alone is bigger than a block
        step = step // align * align
    lo, hi = np.inf, -np.inf
    if T <= width:  # few steps: every one is a column
        parts = []
        for b0 in range(0, T, step):
            block = read(b0, min(T, b0 + step))
            blo, bhi = _range_checked(block, b0, check)
            lo, hi = min(lo, blo), max(hi, bhi)
            parts.append(rows(block).astype(np.float64))
        return np.concatenate(parts), lo, hi
    edges = np.append(pixel_bins(T, width), T)  # pixel column i shows steps [edges[i], edges[i+1])
    cols = None  # (width, rows) reduced over time
    for b0 in range(0, T, step):
        b1 = min(T, b0 + step)
        block = read(b0, b1)
        blo, bhi = _range_checked(block, b0, check)
        block = rows(block)
        lo, hi = min(lo, blo), max(hi, bhi)
        i0 = int(np.searchsorted(edges, b0, "right")) - 1
        i1 = int(np.searchsorted(edges, b1 - 1, "right")) - 1
        local = np.clip(edges[i0 : i1 + 1], b0, b1) - b0
        if cols is None:
            cols = np.full((width,) + block.shape[1:], -np.inf if how == "max" else 0.0)
        ends = np.append(local[1:], b1 - b0)
        for i, s, e in zip(range(i0, i1 + 1), local, ends, strict=True):
            # A slab's reduction along time runs vectorised across locations (reduceat on
            # axis 0 does not, and was 3x slower on a 200,000 x 2,048 trace).
            if how == "max":
                np.maximum(cols[i], block[s:e].max(axis=0), out=cols[i])
            else:
                cols[i] += block[s:e].sum(axis=0, dtype=np.float64)
    if how == "mean":
        cols /= np.diff(edges)[:, None]
    return cols, lo, hi


def _range_checked(block, start, check):
    """min and max of a block; a NaN or infinity is handed to ``check`` for its message."""
    lo, hi = float(block.min()), float(block.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        problem = check(block, start) if check else None
        raise ValueError(problem or f"non-finite values in steps {start}..{start + len(block) - 1}")
    return lo, hi


def finite_check(name: str):
    """A ``check`` for reduce_stream that stops at the first non-finite value."""
    return lambda block, start: check_values(name, block, start)
