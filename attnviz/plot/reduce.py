"""Reduce a panel to the picture's resolution while reading it, block by block.

When a panel has more time steps than pixel columns (or more locations than pixel
rows) each pixel stands for a block of cells, reduced by ``max`` (a lone spike stays
visible) or ``mean``. When it has fewer, cells are kept as they are and the back ends
let each cover several pixels (nearest neighbour, as matplotlib's imshow). Memory
depends on the picture and the block size, never on the trace's length.

A block holding a NaN or an infinity reduces to a non-finite value in either mode, so that
the back ends draw it in the non-finite colour: a lone NaN stays as visible as a lone spike.
With ``max``, NaN wins over +inf, +inf over -inf and -inf over every finite value; a mean
of a block with a NaN (or with both infinities) is NaN, with one infinity that infinity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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


def reduce_axis(a: np.ndarray, pixels: int, axis: int, how: str = "max", finite: bool = False) -> np.ndarray:
    """Reduce axis ``axis`` of ``a`` to ``pixels`` entries if it has more (float64 out). ``finite``:
    the caller knows every value of ``a`` is finite (no look for -inf)."""
    n = a.shape[axis]
    if n <= pixels:
        return a.astype(np.float64, copy=False)
    starts = pixel_bins(n, pixels)
    if how == "max":
        out = np.maximum.reduceat(a, starts, axis=axis).astype(np.float64, copy=False)
        lows = np.isneginf(a) if a.dtype.kind == "f" and not finite else None
        if lows is not None and lows.any():  # -inf loses every maximum: it wins over finite values here
            _keep_lows(out, np.logical_or.reduceat(lows, starts, axis=axis))
        return out
    sums = np.add.reduceat(a, starts, axis=axis, dtype=np.float64)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    shape = [1] * a.ndim
    shape[axis] = pixels
    return sums / counts.reshape(shape)


def _keep_lows(out: np.ndarray, lows: np.ndarray) -> None:
    """Where a reduced block held -inf (``lows``) and its maximum is finite, make it -inf: a block
    holding a non-finite value is drawn non-finite (NaN and +inf win a maximum by themselves)."""
    out[lows & np.isfinite(out)] = -np.inf


def spread(a: np.ndarray, axis: int, finite: bool = False) -> np.ndarray:
    """Each entry becomes the maximum of itself and its two neighbours along ``axis``: after a
    max reduction, a lone spike covers three pixels instead of one that nobody sees, and so does
    a lone non-finite value (NaN and +inf spread as maxima, -inf over finite neighbours).
    ``finite``: the caller knows every value is finite (no look for -inf)."""
    out = a.copy()
    n = a.shape[axis]
    if n > 1:
        lo, hi = [slice(None)] * a.ndim, [slice(None)] * a.ndim
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        lo, hi = tuple(lo), tuple(hi)
        np.maximum(out[hi], a[lo], out=out[hi])
        np.maximum(out[lo], a[hi], out=out[lo])
        lows = None if finite else np.isneginf(a)
        if lows is not None and lows.any():
            near = lows.copy()
            near[hi] |= lows[lo]
            near[lo] |= lows[hi]
            _keep_lows(out, near)
    return out


def reduce_stream(read: Callable[[int, int], np.ndarray], T: int, width: int,
                  how: str = "max", row_bytes: int = 4, block_bytes: int = BLOCK_BYTES,
                  check: Callable[[np.ndarray, int], None] | None = None, align: int = 1,
                  rows_to: int | None = None):
    """Reduce a (T, rows) panel read in blocks of steps to at most ``width`` columns.

    ``read(start, stop)`` returns steps [start, stop) as a (stop - start, rows) array;
    blocks hold about ``block_bytes`` and start at multiples of ``align`` steps (the
    HDF5 chunk height, so that no chunk is read twice). ``check(block, start)`` is shown
    every block that holds a NaN or an infinity (only those: finding one costs nothing more
    than the block's minimum and maximum). With ``rows_to``, each block's rows are reduced to
    that many as it is read (memory then grows with the picture, not with the rows).
    Returns (cells (min(T, width), rows) float64, minimum, maximum): the minimum and maximum of
    the finite values (inf and -inf when there is none).
    """
    def rows(block, finite):
        return block if rows_to is None else reduce_axis(block, rows_to, 1, how, finite)

    step = max(1, block_bytes // max(1, row_bytes))
    if align <= step:  # whole chunks per block, unless a chunk alone is bigger than a block
        step = step // align * align
    lo, hi = np.inf, -np.inf
    if T <= width:  # few steps: every one is a column
        parts = []
        for b0 in range(0, T, step):
            block = read(b0, min(T, b0 + step))
            blo, bhi, finite = _finite_range(block, b0, check)
            lo, hi = min(lo, blo), max(hi, bhi)
            parts.append(rows(block, finite).astype(np.float64))
        return np.concatenate(parts), lo, hi
    edges = np.append(pixel_bins(T, width), T)  # pixel column i shows steps [edges[i], edges[i+1])
    cols = lows = None  # (width, rows) reduced over time; lows: where a max's block held -inf
    for b0 in range(0, T, step):
        b1 = min(T, b0 + step)
        block = read(b0, b1)
        blo, bhi, finite = _finite_range(block, b0, check)
        block = rows(block, finite)
        lo, hi = min(lo, blo), max(hi, bhi)
        i0 = int(np.searchsorted(edges, b0, "right")) - 1
        i1 = int(np.searchsorted(edges, b1 - 1, "right")) - 1
        local = np.clip(edges[i0 : i1 + 1], b0, b1) - b0
        if cols is None:
            cols = np.full((width,) + block.shape[1:], -np.inf if how == "max" else 0.0)
        neg = None if finite or how != "max" else np.isneginf(block)
        if neg is not None and neg.any() and lows is None:
            lows = np.zeros(cols.shape, bool)
        ends = np.append(local[1:], b1 - b0)
        for i, s, e in zip(range(i0, i1 + 1), local, ends, strict=True):
            # A slab's reduction along time runs vectorised across locations (reduceat on
            # axis 0 does not, and was 3x slower on a 200,000 x 2,048 trace).
            if how == "max":
                np.maximum(cols[i], block[s:e].max(axis=0), out=cols[i])
                if neg is not None and lows is not None:
                    lows[i] |= neg[s:e].any(axis=0)
            else:
                cols[i] += block[s:e].sum(axis=0, dtype=np.float64)
    if how == "mean":
        cols /= np.diff(edges)[:, None]
    elif lows is not None:
        _keep_lows(cols, lows)
    return cols, lo, hi


def _finite_range(block, start, check):
    """(minimum, maximum, all finite) of a block: over its finite values, (inf, -inf) when it has
    none. A block holding a NaN or an infinity is shown to ``check``."""
    lo, hi = float(block.min()), float(block.max())  # both finite: so is every value (NaN and inf propagate)
    if np.isfinite(lo) and np.isfinite(hi):
        return lo, hi, True
    if check:
        check(block, start)
    finite = block[np.isfinite(block)]
    if not finite.size:
        return np.inf, -np.inf, False
    return float(finite.min()), float(finite.max()), False
