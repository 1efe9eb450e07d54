"""Where a figure's numbers come from: one trace, in memory or in a file, seen through the windows.

``Source`` reads a trace through any reader with ``info``/``read``/``chunk_rows``/``error``
(an open ``TraceFile``, or ``MemoryReader`` for an in-memory ``Trace``), so every format and
every back end reads, windows and reduces the same way, block by block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io import TraceInfo
from ..trace import DNC, _where, check_structure
from .options import LOCATION_DATASETS, PlotOptions
from .reduce import BLOCK_BYTES, reduce_stream

FULL_ROWS = 8192  # panels with more rows (locations) are reduced while read, and not cropped


class MemoryReader:
    """An in-memory Trace, read like a trace file."""

    def __init__(self, trace):
        self.trace, self.path = trace, getattr(trace, "path", None)

    def info(self, name: str) -> TraceInfo:
        return TraceInfo(name, {k: (v.shape, v.dtype) for k, v in self.trace.arrays.items()}, self.trace.metadata)

    def read(self, name, dataset, rows=slice(None), cols=None) -> np.ndarray:
        a = self.trace.arrays[dataset][rows]
        return a if cols is None or a.ndim < 2 else a[..., cols]

    def chunk_rows(self, name, dataset) -> int:
        return 1

    def constant(self, name, dataset):
        return None

    def check_scan(self, *args, **kwargs) -> None:
        """In memory already: no limit."""

    def error(self, problem, trace=None, dataset=None):
        from ..errors import TraceError

        return TraceError(problem, self.path, trace, dataset)


@dataclass
class NonFinite:
    """The NaN and infinities in one panel's window: how many, of which kinds ("nan", "inf",
    "-inf"), and where the first is ("contains nan at step 12, location 3")."""

    count: int = 0
    kinds: set = field(default_factory=set)
    first: str | None = None

    def add(self, block: np.ndarray, where) -> None:
        """Count a block's non-finite values; ``where(index)`` words the place of the block's first."""
        bad = ~np.isfinite(block)
        self.count += int(bad.sum())
        for kind, test in (("nan", np.isnan), ("inf", np.isposinf), ("-inf", np.isneginf)):
            if kind not in self.kinds and test(block).any():
                self.kinds.add(kind)
        if self.first is None:
            idx = np.unravel_index(int(np.argmax(bad)), block.shape)
            self.first = f"contains {block[idx]} at {where(idx)}"


def _fmt_window(w) -> str:
    lo, hi = ("" if v is None else v for v in w)
    return f"{lo}:{hi}"


class Source:
    """One trace's panels within the time window (and an explicit location window, if any)."""

    def __init__(self, reader, name: str, opts: PlotOptions):
        self.reader, self.name = reader, name
        info = reader.info(name)
        problems = check_structure(info.datasets)
        if problems:
            raise reader.error(problems[0][1], name, problems[0][0])
        self.metadata = info.metadata
        self.dtypes = {k: np.dtype(d) for k, (_, d) in info.datasets.items()}
        full = {k: tuple(s) for k, (s, _) in info.datasets.items()}
        T, N = full["inputs"][0], full["write_weightings"][-1]
        t0, t1, _ = slice(*(opts.time or (None, None))).indices(T)
        if t1 <= t0:
            raise self.error(f"time window {_fmt_window(opts.time)} is empty for a trace of {T} steps")
        self.time, self.locations = (t0, t1), N
        # A DNC allocates wherever a location is free: its locations have no circular neighbours to keep
        # together, unlike an NTM's, which shifts from one to the next and wraps from N-1 to 0.
        self.circular = not any(k in DNC for k in full)
        self.columns = None  # an explicit location window: only those columns are read
        if isinstance(opts.locations, tuple):
            l0, l1, _ = slice(*opts.locations).indices(N)
            if l1 < l0 < N:  # wrapped: l0..N-1, then 0..l1-1, as rows l0..N+l1-1
                l1 += N
            if l1 <= l0:
                raise self.error(f"location window {_fmt_window(opts.locations)} is empty for {N} locations")
            self.columns = (l0, l1)
        self.shapes = {}
        for k, s in full.items():
            s = (t1 - t0,) + s[1:]
            if k in LOCATION_DATASETS and self.columns:
                s = s[:-1] + (self.columns[1] - self.columns[0],)
            self.shapes[k] = s
        self._cells: dict[tuple, tuple] = {}  # cells already read (a page's second order reads none again)
        self._first_writes: np.ndarray | None = None

    @classmethod
    def of_trace(cls, trace, opts: PlotOptions) -> Source:
        return cls(MemoryReader(trace), trace.name, opts)

    def error(self, problem: str, dataset: str | None = None):
        return self.reader.error(problem, self.name, dataset)

    def cells(self, key: str, head: int | None, width: int, height: int, how: str):
        """A panel's cells over time, reduced to at most ``width`` columns; every row of the window,
        or, past FULL_ROWS rows, the rows reduced to at most ``height`` as they are read.

        Returns (cells (columns, rows) float64, minimum, maximum, non-finite): the minimum and maximum
        of the finite values (0, 0 when none is), and the panel's NonFinite, None when every value is
        finite.
        """
        args = (key, head, width, height, how)
        if args not in self._cells:
            self._cells[args] = self._read_cells(*args)
        return self._cells[args]

    def block(self, key: str, a: int, b: int) -> np.ndarray:
        """Steps a..b-1 of the window of a dataset, every head, and only the location window's columns
        of a dataset with one column per location (two reads where the window wraps)."""
        t0, N = self.time[0], self.locations
        steps = slice(t0 + a, t0 + b)
        cols = slice(*self.columns) if key in LOCATION_DATASETS and self.columns else None
        if cols is not None and cols.stop > N:  # a window that wraps: two reads
            return np.concatenate([self.reader.read(self.name, key, steps, c)
                                   for c in (slice(cols.start, N), slice(0, cols.stop - N))], axis=-1)
        return self.reader.read(self.name, key, steps, cols)

    def _read_cells(self, key: str, head: int | None, width: int, height: int, how: str):
        t0, N = self.time[0], self.locations
        cols = slice(*self.columns) if key in LOCATION_DATASETS and self.columns else None
        shape = self.shapes[key]
        rows_to = height if shape[-1] > FULL_ROWS else None
        bad = NonFinite()

        def where(idx) -> str:  # a block's (step, row) as the dataset's step, head and true row
            row = int(idx[1]) if cols is None else (cols.start + int(idx[1])) % N
            return f"step {t0 + int(idx[0])}" + _where(key, (0, head, row) if len(shape) == 3 else (0, row))

        value = self.reader.constant(self.name, key)
        if value is not None:  # nothing stored: every cell holds the fill value
            v = float(value)
            cells = np.full((min(shape[0], width), min(shape[-1], rows_to or shape[-1])), v)
            if np.isfinite(v):
                return cells, v, v, None
            bad.add(np.full((shape[0], shape[-1]), v), where)
            return cells, 0.0, 0.0, bad
        self.reader.check_scan(self.name, key, shape, self.dtypes[key], "drawing")
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtypes[key].itemsize

        def read(a, b):
            block = self.block(key, a, b)
            return block[:, head, :] if head is not None and block.ndim == 3 else block

        def check(block, start):
            bad.add(block, lambda idx: where((start + idx[0], idx[1])))

        values, lo, hi = reduce_stream(read, shape[0], width, how, row_bytes, check=check,
                                       align=self.reader.chunk_rows(self.name, key), rows_to=rows_to)
        if lo > hi:  # no finite value at all
            lo = hi = 0.0
        return values, lo, hi, (bad if bad.count else None)

    def first_writes(self) -> np.ndarray:
        """For each column of the location window (every location without one), the first step of
        the time window at which a write head wrote it strongly (analysis.first_strong_writes, over
        the window's steps, read block by block; absolute step numbers), or -1."""
        if self._first_writes is None:
            self._first_writes = self._scan_first_writes()
        return self._first_writes

    def _scan_first_writes(self) -> np.ndarray:
        from ..analysis import STRONG, strong_threshold

        key = "write_weightings"
        shape, t0 = self.shapes[key], self.time[0]
        T, heads, cols = shape[0], (shape[1] if len(shape) == 3 else 1), shape[-1]
        value = self.reader.constant(self.name, key)
        if value is not None:  # every weight the fill value: all written at the first step, or none
            v = float(value)
            return np.full(cols, t0 if np.isfinite(v) and v > 0 else -1)
        self.reader.check_scan(self.name, key, shape, self.dtypes[key], "ordering")
        step = max(1, BLOCK_BYTES // max(1, int(np.prod(shape[1:], dtype=np.int64)) * self.dtypes[key].itemsize))
        chunk = self.reader.chunk_rows(self.name, key)
        step = max(chunk, step - step % chunk)  # whole chunks: none is read twice

        def scan(thresholds):  # per head: the first step at or above its threshold (T: none); and its peak
            first, peak = np.full((heads, cols), T), np.zeros(heads)
            for a in range(0, T, step):
                block = np.asarray(self.block(key, a, min(T, a + step)), np.float64)
                block = np.where(np.isfinite(block), block, 0.0).reshape(-1, heads, cols)
                peak = np.maximum(peak, block.max(axis=(0, 2)))
                hit = (block >= np.asarray(thresholds)[None, :, None]) & (block > 0)
                first = np.minimum(first, np.where(hit.any(axis=0), a + hit.argmax(axis=0), T))
            return first, peak

        first, peak = scan([STRONG] * heads)
        if np.any((peak > 0) & (peak < STRONG)):  # a diffuse head: again, at half its own peak
            relative, _ = scan([strong_threshold(p) if p > 0 else np.inf for p in peak])
            first = np.where((peak < STRONG)[:, None], relative, first)
        first = first.min(axis=0)
        return np.where(first < T, t0 + first, -1)

    def output_mask(self) -> np.ndarray | None:
        """The scored-output mask over every step (bool, (T,)), or None if not recorded."""
        if "output_mask" not in self.shapes:
            return None
        mask = np.asarray(self.reader.read(self.name, "output_mask"))
        return (mask != 0) & np.isfinite(mask) if mask.dtype.kind == "f" else mask.astype(bool)
