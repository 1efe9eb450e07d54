"""Reading and writing trace files: HDF5 and NPZ, format detection, atomic writes.

Reading goes through a ``TraceFile``: it lists the traces in a file and their datasets'
shapes and dtypes without reading array data, and reads datasets whole or in blocks of
time steps. Whole reads are refused above a size limit (``max_bytes``) instead of
exhausting memory.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import secrets
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AttnvizError, TraceError
from .trace import (
    DATASETS,
    DNC,
    FORMAT_VERSION,
    RECOMBINE_TOL,
    ROOT,
    STAGE_TOL,
    Recombination,
    Trace,
    as_trace_list,
    check_metadata,
    check_structure,
    check_values,
    name_problem,
    normalise_name,
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_SUFFIXES = (".h5", ".hdf5")
NPZ_SUFFIXES = (".npz",)
TRACE_SUFFIXES = HDF5_SUFFIXES + NPZ_SUFFIXES
BLOCK_BYTES = 16 * 2**20  # a block read by the streaming checks
SCAN_FACTOR = 16  # a dataset read block by block may be this many times --max-bytes
CHUNK_DIVISOR = 16  # one HDF5 storage chunk (decompressed whole on every read) may be --max-bytes / this


def default_max_bytes() -> int:
    """The largest array attnviz reads whole: $ATTNVIZ_MAX_BYTES, else 4 GiB."""
    raw = os.environ.get("ATTNVIZ_MAX_BYTES")
    if raw:
        try:
            return parse_size(raw)
        except ValueError:
            raise AttnvizError(f"ATTNVIZ_MAX_BYTES={raw!r} is not a size (e.g. 500M, 4G)") from None
    return 4 * 2**30


def parse_size(text: str) -> int:
    """'4G', '500M', '123456' -> bytes (binary units)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    mult = units.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in units else t
    value = float(num)
    if not (0 <= value < 2**63 / mult):  # also refuses nan and inf
        raise ValueError(text)
    return int(value * mult)


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


@dataclass
class TraceInfo:
    """A trace as listed in a file: dataset shapes and dtypes, and metadata; no array data."""

    name: str
    datasets: dict[str, tuple[tuple[int, ...], np.dtype]]
    metadata: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        shape = self.datasets.get("inputs", ((0,), None))[0]
        return int(shape[0]) if shape else 0


def detect_format(path) -> str:
    """'hdf5' or 'npz', from the file's first bytes; TraceError for anything else."""
    path = Path(path)
    if not path.exists():
        raise TraceError("no such file", path)
    if path.is_dir():
        raise TraceError("is a directory, not a trace file", path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would block or never end
            raise TraceError("is not a regular file (a FIFO, device or socket); attnviz reads trace files", path)
    except OSError as e:
        raise TraceError(f"cannot be read: {e.strerror or e}", path) from None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if not head:
                raise TraceError("is empty (0 bytes); expected an HDF5 or NPZ trace file", path)
            if head == HDF5_SIGNATURE:
                return "hdf5"
            if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                return "npz"
            # HDF5 allows a user block of 512, 1024, 2048, ... bytes before the signature.
            size, offset = path.stat().st_size, 512
            while offset + 8 <= size:
                f.seek(offset)
                if f.read(8) == HDF5_SIGNATURE:
                    return "hdf5"
                offset *= 2
    except OSError as e:
        raise TraceError(f"cannot be read: {e.strerror or e}", path) from None
    raise TraceError(f"is neither HDF5 nor NPZ (it starts with bytes {head[:8]!r})", path)


def open_traces(path, max_bytes: int | None = None, allow_external: bool = False) -> TraceFile:
    """Open a trace file for reading (use as a context manager). Unless ``allow_external``, a
    dataset that would make HDF5 open another file (docs/trace-format.md) is refused."""
    fmt = detect_format(path)
    cls = HDF5File if fmt == "hdf5" else NPZFile
    return cls(Path(path), default_max_bytes() if max_bytes is None else max_bytes, allow_external)


class TraceFile:
    """The traces in one file. Subclasses know one format."""

    format = ""
    size_advice = " (raise it with --max-bytes or ATTNVIZ_MAX_BYTES)"

    def __init__(self, path: Path, max_bytes: int, allow_external: bool = False):
        self.path, self.max_bytes, self.allow_external = path, max_bytes, allow_external

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        pass

    # Implemented by each format.
    @property
    def names(self) -> list[str]:
        raise NotImplementedError

    def info(self, name: str) -> TraceInfo:
        raise NotImplementedError

    def read(self, name: str, dataset: str, rows: slice = slice(None), cols: slice | None = None
             ) -> np.ndarray:
        """Steps ``rows`` of a dataset (and ``cols`` of its last axis); only those are read
        where the format allows (HDF5)."""
        raise NotImplementedError

    def listing(self):
        """What the names were found from, for ``use_listing`` of the same file opened again (in
        a worker process: listing a file of 10,000 traces again would cost each worker 0.3 s)."""
        return None

    def use_listing(self, listing) -> None:
        """Take the names from another TraceFile's ``listing()`` of this same file."""

    # Shared.
    def error(self, problem: str, trace=None, dataset=None) -> TraceError:
        return TraceError(problem, self.path, trace, dataset)

    def resolve(self, name: str | None) -> str:
        """The full name of a trace; with None, the file's only trace."""
        names = self.names
        if not names:
            raise self.error("holds no traces (no group or key set with inputs, outputs, "
                             "write_weightings and read_weightings)")
        if name is None:
            if len(names) > 1:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise self.error(f"holds {len(names)} traces ({shown}); choose one by name")
            return names[0]
        norm = normalise_name(name)
        if norm not in self._name_lookup:
            raise self.error(f"has no trace {norm!r}; it has {', '.join(names[:10])}")
        return norm

    @functools.cached_property
    def _name_lookup(self) -> set[str]:
        """The names as a set: a file of 10,000 traces is resolved 10,000 times."""
        return set(self.names)

    def chunk_rows(self, name: str, dataset: str) -> int:
        """Steps per storage chunk (1 where the format has no chunks)."""
        return 1

    def check_name(self, name: str) -> None:
        problem = name_problem(name)
        if problem:
            raise self.error(problem, name)

    def check_size(self, name, dataset, shape, dtype, what="is"):
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if nbytes > self.max_bytes:
            raise self.error(f"{what} {format_size(nbytes)}, above the {format_size(self.max_bytes)} "
                             f"limit for reading an array whole{self.size_advice}", name, dataset)

    def check_scan(self, name, dataset, shape, dtype, what="reading") -> None:
        """Refuse to read more than SCAN_FACTOR x max_bytes of one dataset block by block: a
        declared size can be far beyond any real recording (and its reading beyond any patience)."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        limit = SCAN_FACTOR * self.max_bytes
        if nbytes > limit:
            dims = " x ".join(f"{d:,}" for d in shape)
            raise self.error(f"{what} {dims} {np.dtype(dtype)} values ({format_size(nbytes)}) is above the "
                             f"{format_size(limit)} limit for reading a dataset block by block ({SCAN_FACTOR} x "
                             "--max-bytes); draw a window with --time (and --locations), or raise --max-bytes",
                             name, dataset)

    def constant(self, name: str, dataset: str):
        """The value every element holds, when the file says so without reading them (HDF5 storage
        never written: all fill value); else None."""
        return None

    def blocks(self, name: str, dataset: str, block_bytes: int = BLOCK_BYTES, info: TraceInfo | None = None
               ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first step, block) over a dataset, a few MiB at a time (one row standing for all
        when the dataset is constant)."""
        shape, dtype = (info or self.info(name)).datasets[dataset]
        T = shape[0] if shape else 0
        value = self.constant(name, dataset)
        if value is not None:
            if T:
                row = math.prod(shape[1:]) * np.dtype(dtype).itemsize
                one = (1,) + tuple(shape[1:]) if row <= block_bytes else (1,) * len(shape)
                yield 0, np.full(one, value, dtype)
            return
        self.check_scan(name, dataset, shape, dtype, "checking all")
        row = max(1, math.prod(shape[1:]) * np.dtype(dtype).itemsize)
        step = max(1, block_bytes // row)
        for start in range(0, T, step):
            yield start, self.read(name, dataset, slice(start, min(T, start + step)))

    def step_blocks(self, name: str, datasets, block_bytes: int = BLOCK_BYTES, info: TraceInfo | None = None
                    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield (first step, {dataset: block}) over several datasets of a trace at once, the same steps
        of each, blocks in order and a few MiB in all (counted as float64, what checks compute in)."""
        info = info or self.info(name)
        shapes = {ds: info.datasets[ds] for ds in datasets}
        for ds, (shape, dtype) in shapes.items():
            self.check_scan(name, ds, shape, dtype, "checking all")
        T = min((shape[0] for shape, _ in shapes.values()), default=0)
        row = sum(8 * max(1, math.prod(shape[1:])) for shape, _ in shapes.values())
        step = max(1, block_bytes // max(1, row))
        for start in range(0, T, step):
            stop = min(T, start + step)
            yield start, {ds: self._rows(name, ds, start, stop) for ds in shapes}

    def _rows(self, name: str, dataset: str, start: int, stop: int) -> np.ndarray:
        """Steps [start, stop) of a dataset, read as part of a scan from first step to last."""
        return self.read(name, dataset, slice(start, stop))

    def load(self, name: str | None = None) -> Trace:
        name = self.resolve(name)
        info = self.info(name)
        problems = check_structure(info.datasets)
        if problems:
            raise self.error(problems[0][1], name, problems[0][0])
        arrays = {ds: self.read(name, ds) for ds in info.datasets}
        return Trace(arrays, info.metadata, name, path=self.path)

    def __iter__(self) -> Iterator[Trace]:
        for name in self.names:
            yield self.load(name)


def _strip_format_version(meta: dict, err) -> dict:
    version = meta.pop("attnviz_format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise err(f"is trace format version {version!r}; this attnviz reads version {FORMAT_VERSION}")
    return meta


# --------------------------------------------------------------------------- HDF5


class HDF5File(TraceFile):
    format = "hdf5"
    SOFT_LINKS = 16  # soft links followed to reach one dataset: HDF5's own default limit

    def __init__(self, path, max_bytes, allow_external=False):
        super().__init__(path, max_bytes, allow_external)
        import h5py

        self._h5py = h5py
        try:
            self._f = h5py.File(path, "r")
        except OSError as e:
            raise self.error(f"is not a readable HDF5 file ({_first_line(e)}); is it truncated?") from None
        self._names = None
        self._keys: dict[str, dict[str, int]] = {}  # trace -> its datasets' names and link classes
        self._infos: dict[str, TraceInfo] = {}
        self._open_trace: tuple = (None, None, {})  # the last trace asked for: name, group id, datasets opened

    def close(self):
        with contextlib.suppress(Exception):
            self._open_trace = (None, None, {})
            self._f.close()

    @property
    def names(self) -> list[str]:
        """Every group holding a dataset name of the format, reached through hard links: HDF5 visits
        each group once however many links lead to it, follows no soft or external link and opens
        no object on the way."""
        if self._names is None:
            keys: dict[str, dict[str, int]] = {}

            def visit(link: bytes, info):
                *groups, key = link.decode("utf-8", "replace").split("/")
                if key in DATASETS and not any(g in DATASETS for g in groups):  # not below a dataset's name
                    keys.setdefault(normalise_name("/".join(groups)), {})[key] = info.type

            try:
                self._f.id.links.visit(visit, info=True)
            except Exception as e:
                raise self.error(f"its groups cannot be listed ({_first_line(e)})") from None
            self._keys = keys
            self._names = sorted(keys, key=lambda n: (n != ROOT, n))
        return self._names

    def listing(self):
        return self.names, self._keys

    def use_listing(self, listing) -> None:
        if listing is not None:
            self._names, self._keys = listing

    def _group(self, name):
        """(name, group id, datasets opened) of a trace: those of the last trace asked for are kept open."""
        if self._open_trace[0] != name:
            try:
                group = self._h5py.h5o.open(self._f.id, b"/" if name == ROOT else name.encode())
            except Exception as e:
                raise self.error(f"cannot be opened ({_first_line(e)})", name) from None
            self._open_trace = (name, group, {})
        return self._open_trace

    def _dataset(self, name, key) -> _Stored:
        """One dataset of a trace, opened."""
        _, group, opened = self._open_trace if self._open_trace[0] == name else self._group(name)
        if key not in opened:
            opened[key] = self._open_dataset(name, group, key)
        return opened[key]

    def _open_dataset(self, name, group, key) -> _Stored:
        """The dataset at ``key`` in a trace's group. Unless allow_external, a dataset whose reading
        would make HDF5 open another file is refused before that file is opened: nothing on the way
        is followed by HDF5 itself, and the dataset's storage is checked before its shape is asked
        for (HDF5 opens a virtual dataset's sources to find its shape)."""
        h5py = self._h5py
        try:
            if self.allow_external or self._keys[name].get(key) == h5py.h5l.TYPE_HARD:
                obj = h5py.h5o.open(group, key.encode())  # HDF5 follows every link, when allowed
            else:
                obj = self._follow(group, key)
            stored = _Stored(h5py, obj) if isinstance(obj, h5py.h5d.DatasetID) else None
            problem = None if self.allow_external or stored is None else stored.outside()
        except _Refused as e:
            kind, target = _link(group, key)
            problem = f"is a soft link to {target!r}, which leads to {e}" if kind == h5py.h5l.TYPE_SOFT else f"is {e}"
        except Exception as e:  # a missing target, links in a loop, a damaged file
            kind, target = _link(group, key)
            if kind == h5py.h5l.TYPE_SOFT:
                raise self.error(f"is a soft link to {target!r} that cannot be resolved (a missing target, or "
                                 "links that point at each other)", name, key) from None
            if kind == h5py.h5l.TYPE_EXTERNAL:
                raise self.error(f"is an external link to {target!r} that cannot be resolved", name, key) from None
            raise self.error(f"cannot be opened ({_first_line(e)})", name, key) from None
        if problem:
            raise self.error(problem + OUTSIDE, name, key)
        if stored is None:
            what = "group" if isinstance(obj, h5py.h5g.GroupID) else "named datatype"
            raise self.error(f"is a {what}; expected a dataset", name, key)
        try:
            stored.shape, stored.dtype = tuple(obj.shape or ()), obj.dtype
        except Exception as e:
            raise self.error(f"cannot be opened ({_first_line(e)})", name, key) from None
        return stored

    def _follow(self, group, path: str, hops: list | None = None):
        """The object at ``path`` from a group (low-level ids), found as HDF5 finds it (a soft link's
        path is taken from the group holding the link; at most SOFT_LINKS soft links in all) without
        letting HDF5 follow a link itself: an external or user-defined link anywhere on the way
        raises _Refused."""
        h5py = self._h5py
        hops = [0] if hops is None else hops  # soft links followed so far, across every path on the way
        obj = h5py.h5o.open(self._f.id, b"/") if path.startswith("/") else group
        for part in (p for p in path.split("/") if p not in ("", ".")):
            if not isinstance(obj, h5py.h5g.GroupID):
                raise KeyError(f"{part!r} is inside a dataset")
            kind, target = _link(obj, part)
            if kind == h5py.h5l.TYPE_HARD:
                obj = h5py.h5o.open(obj, part.encode())
            elif kind == h5py.h5l.TYPE_SOFT:
                hops[0] += 1
                if hops[0] > self.SOFT_LINKS:
                    raise KeyError(f"more than {self.SOFT_LINKS} soft links")
                obj = self._follow(obj, target, hops)
            elif kind == h5py.h5l.TYPE_EXTERNAL:
                raise _Refused(f"an external link to {target!r}, in another file")
            elif kind is None:
                raise KeyError(f"no link {part!r}")
            else:
                raise _Refused(f"a user-defined HDF5 link (class {kind}), which may lead to another file")
        return obj

    def info(self, name: str) -> TraceInfo:
        name = self.resolve(name)
        if name not in self._infos:
            self._infos[name] = self._info(name)
        return self._infos[name]

    def _info(self, name: str) -> TraceInfo:
        self.check_name(name)
        datasets = {}
        for key in self._keys[name]:
            ds = self._dataset(name, key)
            datasets[key] = (ds.shape, ds.dtype)
        try:
            attrs = self._h5py.Group(self._group(name)[1]).attrs
            meta = check_metadata({k: attrs[k] for k in attrs.keys()})
        except (ValueError, OSError, TypeError) as e:
            raise self.error(f"metadata: {_first_line(e)}", name) from None
        meta = _strip_format_version(meta, lambda m: self.error(m, name))
        return TraceInfo(name, datasets, meta)

    def chunk_rows(self, name, dataset):
        chunks = self._dataset(name, dataset).chunks
        return int(chunks[0]) if chunks else 1

    def constant(self, name, dataset):
        return self._dataset(name, dataset).constant()

    def _check_chunks(self, name, dataset, ds) -> None:
        """Every read decompresses whole chunks: refuse chunks that alone are too big to hold."""
        if ds.chunks:
            nbytes = math.prod(ds.chunks) * ds.dtype.itemsize
            limit = self.max_bytes // CHUNK_DIVISOR
            if nbytes > limit:
                raise self.error(f"is stored in chunks of {format_size(nbytes)}, each read whole to read any part, "
                                 f"above the {format_size(limit)} limit (--max-bytes / {CHUNK_DIVISOR}); raise "
                                 "--max-bytes, or rewrite the file with smaller chunks", name, dataset)

    def read(self, name, dataset, rows=slice(None), cols=None):
        ds = self._dataset(name, dataset)
        self._check_chunks(name, dataset, ds)
        full = shape = ds.shape
        if shape:
            start, stop, _ = rows.indices(shape[0])
            shape = (max(0, stop - start),) + shape[1:]
            if cols is not None and len(shape) > 1:
                c0, c1, _ = cols.indices(shape[-1])
                shape = shape[:-1] + (max(0, c1 - c0),)
        self.check_size(name, dataset, shape, ds.dtype)
        try:
            return ds.read(rows, cols, whole=shape == full and cols is None and rows.step in (None, 1))
        except (OSError, ValueError, TypeError) as e:
            raise self.error(f"cannot be read ({_first_line(e)})", name, dataset) from None


class _Stored:
    """An HDF5 dataset opened: its low-level id, creation properties, shape and dtype."""

    def __init__(self, h5py, did):
        self.h5py, self.id, self.dcpl = h5py, did, did.get_create_plist()
        self.layout = self.dcpl.get_layout()
        self.chunks = self.dcpl.get_chunk() if self.layout == h5py.h5d.CHUNKED else None
        self.shape: tuple = ()
        self.dtype = np.dtype(float)
        self._dataset = None

    def outside(self) -> str | None:
        """Why reading this dataset would make HDF5 open another file, or None."""
        dcpl = self.dcpl
        if dcpl.get_external_count():
            names = [dcpl.get_external(i)[0].decode("utf-8", "replace") for i in range(dcpl.get_external_count())]
            return f"keeps its values in {len(names)} other file(s) ({', '.join(map(repr, names[:3]))})"
        if self.layout == self.h5py.h5d.VIRTUAL:  # even a source in this file is found by HDF5, through any link
            n = dcpl.get_virtual_count()
            first = f"{dcpl.get_virtual_filename(0)}:{dcpl.get_virtual_dsetname(0)}" if n else ""
            return (f"is a virtual dataset: its values are read from {n} other dataset(s) ({first!r} first), "
                    "which HDF5 finds by name")
        for i in range(dcpl.get_nfilters()):
            code = dcpl.get_filter(i)[0]
            try:
                self.h5py.h5z.get_filter_info(code)  # a filter HDF5 has: asking never loads a plugin
            except Exception:
                return (f"is compressed with HDF5 filter {code}, which this HDF5 does not have: reading it would "
                        "load plugin libraries from HDF5_PLUGIN_PATH")
        return None

    def constant(self):
        """The fill value, when no storage was ever written; else None."""
        try:
            if self.id.get_storage_size() or self.dcpl.get_external_count() or self.layout == self.h5py.h5d.VIRTUAL:
                return None
            fill = np.zeros((1,), self.dtype)
            self.dcpl.get_fill_value(fill)
            return fill[0]
        except Exception:
            return None

    def read(self, rows: slice, cols: slice | None, whole: bool) -> np.ndarray:
        """Steps ``rows`` (and ``cols`` of the last axis); a whole numeric dataset in one plain read."""
        if whole and self.dtype.kind in "biuf" and all(self.shape):
            out = np.empty(self.shape, self.dtype)
            self.id.read(self.h5py.h5s.ALL, self.h5py.h5s.ALL, out)
            return out
        if self._dataset is None:
            self._dataset = self.h5py.Dataset(self.id, readonly=True)
        ds = self._dataset
        if not self.shape:
            return ds[()]
        return ds[rows] if cols is None or len(self.shape) < 2 else ds[(rows, Ellipsis, cols)]


OUTSIDE = "; attnviz opens no other file unless told to (--allow-external)"


class _Refused(Exception):
    """A link that would lead HDF5 into another file; its text says where."""


def _link(group, key: str) -> tuple[int | None, str | None]:
    """(HDF5 link class, what it points to as this file stores it) of one link of a group (a
    low-level id), opening nothing; (None, None) when there is no such link."""
    from h5py import h5l

    name = key.encode()
    try:
        kind = group.links.get_info(name).type
        if kind == h5l.TYPE_SOFT:
            return kind, group.links.get_val(name).decode("utf-8", "replace")
        if kind == h5l.TYPE_EXTERNAL:
            return kind, ":".join(v.decode("utf-8", "replace") for v in group.links.get_val(name))
        return kind, None
    except (KeyError, OSError, ValueError, RuntimeError):
        return None, None


# ---------------------------------------------------------------------------- NPZ


class NPZFile(TraceFile):
    """An NPZ file. Members cannot be seeked, but C-order arrays are read as a stream, in order:
    a scan of steps from first to last decompresses each member once, in bounded memory."""

    format = "npz"
    size_advice = ("; convert the file to chunked HDF5 with `attnviz convert` (with a larger --max-bytes) "
                   "to read it in parts")
    WHOLE_BYTES = 64 * 2**20  # smaller arrays are read whole (and the last one kept)

    def __init__(self, path, max_bytes, allow_external=False):
        super().__init__(path, max_bytes, allow_external)
        try:
            self._zip = zipfile.ZipFile(path)
            members = self._zip.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise self.error(f"is not a readable NPZ file ({_first_line(e)}); is it truncated?") from None
        # key "inputs" -> root trace; key "a/b/inputs" -> trace "a/b"
        self._keys: dict[str, dict[str, str]] = {}
        for member in members:
            if not member.endswith(".npy"):
                continue
            key = member[:-4]
            trace, _, ds = key.rpartition("/")
            self._keys.setdefault(normalise_name(trace), {})[ds] = member
        self._headers: dict[str, tuple] = {}
        self._names: list[str] | None = None
        self._last: tuple[str, np.ndarray] | None = None  # the last small member read whole
        self._streams: dict[str, tuple] = {}  # member -> (open member, next row), of the members read in order

    def close(self):
        with contextlib.suppress(Exception):
            for fp, _ in self._streams.values():
                fp.close()
            self._zip.close()

    @property
    def names(self):
        if self._names is None:
            names = [n for n, ks in self._keys.items() if any(k in DATASETS for k in ks)]
            self._names = sorted(names, key=lambda n: (n != ROOT, n))
        return self._names

    def _open(self, member):
        """The member opened, positioned at its first value; and its (shape, dtype, fortran order)."""
        fp = self._zip.open(member)
        fmt = np.lib.format
        version = fmt.read_magic(fp)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(fp)
        return fp, (tuple(shape), dtype, fortran)

    def _header(self, name, key):
        member = self._keys[name][key]
        if member not in self._headers:
            try:
                fp, header = self._open(member)
                fp.close()
            except Exception as e:  # zip, zlib and npy header errors alike
                raise self.error(f"is damaged or truncated ({_first_line(e)})", name, key) from None
            self._headers[member] = header
        return self._headers[member][:2]

    def _read_member(self, name, key):
        shape, dtype = self._header(name, key)
        if dtype.hasobject:
            raise self.error("is an object array (pickled Python objects); attnviz never "
                             "unpickles", name, key)
        member = self._keys[name][key]
        if self._last and self._last[0] == member:
            return self._last[1]
        self.check_size(name, key, shape, dtype, what="is an NPZ array of")
        try:
            with self._zip.open(member) as fp:
                whole = np.lib.format.read_array(fp, allow_pickle=False)
        except Exception as e:
            raise self.error(f"is damaged or truncated ({_first_line(e)})", name, key) from None
        if whole.nbytes <= self.WHOLE_BYTES:
            self._last = (member, whole)
        return whole

    def _read_rows(self, name, key, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a C-order member, from its open stream when that is not past them."""
        shape, dtype = self._header(name, key)
        member = self._keys[name][key]
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.check_size(name, key, (stop - start,) + shape[1:], dtype, what="a block of")
        try:
            if member not in self._streams or self._streams[member][1] > start:
                if member in self._streams:
                    self._streams.pop(member)[0].close()
                while len(self._streams) >= len(DATASETS):  # one per dataset of a trace read block by block
                    self._streams.pop(next(iter(self._streams)))[0].close()
                self._streams[member] = (self._open(member)[0], 0)
            fp, at = self._streams[member]
            skip = (start - at) * row
            while skip > 0:  # decompress and drop what lies before the block
                skip -= len(fp.read(min(skip, BLOCK_BYTES))) or skip
            data = fp.read((stop - start) * row)
            if len(data) != (stop - start) * row:
                raise EOFError(f"member ends after {len(data)} of {(stop - start) * row} bytes")
            self._streams[member] = (fp, stop)
        except Exception as e:
            self._streams.pop(member, None)
            raise self.error(f"is damaged or truncated ({_first_line(e)})", name, key) from None
        return np.frombuffer(data, dtype).reshape((stop - start,) + shape[1:])

    def _rows(self, name, dataset, start, stop):
        """A scan reads each C-order member as a stream, whatever its size: several members read a block
        at a time in turn are each decompressed once."""
        shape, dtype = self._header(name, dataset)
        if not shape or dtype.hasobject or self._headers[self._keys[name][dataset]][2]:
            return self.read(name, dataset, slice(start, stop))
        return self._read_rows(name, dataset, start, stop)

    def info(self, name):
        name = self.resolve(name)
        self.check_name(name)
        keys = self._keys[name]
        datasets = {k: self._header(name, k) for k in keys if k in DATASETS}
        meta = {}
        if "attrs" in keys:
            meta = _parse_attrs(self._read_member(name, "attrs"), lambda m: self.error(m, name, "attrs"))
        meta = _strip_format_version(meta, lambda m: self.error(m, name))
        return TraceInfo(name, datasets, meta)

    def read(self, name, dataset, rows=slice(None), cols=None):
        shape, dtype = self._header(name, dataset)
        fortran = self._headers[self._keys[name][dataset]][2]
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if shape and not fortran and not dtype.hasobject and nbytes > self.WHOLE_BYTES and rows.step in (None, 1):
            start, stop, _ = rows.indices(shape[0])
            part = self._read_rows(name, dataset, start, max(start, stop))
        else:
            part = self._read_member(name, dataset)[rows]
        return part if cols is None or part.ndim < 2 else part[..., cols]


def _parse_attrs(arr: np.ndarray, err) -> dict:
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise err(f"metadata must be a 0-d unicode string holding a JSON object, not a "
                  f"{arr.dtype} array of shape {arr.shape}")
    try:
        meta = json.loads(str(arr[()]))
    except json.JSONDecodeError as e:
        raise err(f"metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise err(f"metadata must be a JSON object, not a {type(meta).__name__}")
    for k, v in meta.items():
        if isinstance(v, dict | list) or v is None:
            raise err(f"metadata is not flat: {k!r} holds a {type(v).__name__}; values must be "
                      "str, int, float or bool")
    try:
        return check_metadata(meta)
    except ValueError as e:
        raise err(str(e)) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


# --------------------------------------------------------------------- public API


def load(path, name: str | None = None, max_bytes: int | None = None, allow_external: bool = False) -> Trace:
    """Read one trace. With ``name=None`` the file must hold exactly one. A dataset that would
    make HDF5 read another file is refused unless ``allow_external`` (docs/trace-format.md)."""
    with open_traces(path, max_bytes, allow_external) as f:
        return f.load(name)


def list_traces(path, max_bytes: int | None = None, allow_external: bool = False) -> list[TraceInfo]:
    """The traces in a file with their datasets' shapes and dtypes; reads no array data
    (except NPZ metadata)."""
    with open_traces(path, max_bytes, allow_external) as f:
        return [f.info(n) for n in f.names]


def iter_traces(path, max_bytes: int | None = None, allow_external: bool = False) -> Iterator[Trace]:
    """Every trace in a file, read one at a time."""
    with open_traces(path, max_bytes, allow_external) as f:
        yield from f


def validate_file(path, weighting_tol: float | None = None, max_bytes: int | None = None,
                  allow_external: bool = False, stage_tol: float = STAGE_TOL) -> list[str]:
    """Check every trace in a file; return one line per problem (empty when valid). A dataset that
    would make HDF5 read another file is a problem unless ``allow_external``.

    The addressing stages, where recorded, are checked to lie in their ranges (within ``stage_tol``)
    and to recombine into the weightings (within trace.RECOMBINE_TOL, ``Recombination``); so are the
    DNC datasets' ranges (``weighting_tol`` checks their read modes' sums too, and lets the weightings
    of a trace holding them sum to at most 1). Values are checked block by block, so memory stays
    bounded for any file size.
    """
    try:
        with open_traces(path, max_bytes, allow_external) as f:
            names = f.names
            if not names:
                f.resolve(None)  # raises "holds no traces"
            lines = []
            for name in names:
                try:
                    info = f.info(name)
                except TraceError as e:
                    lines.append(str(e))
                    continue
                problems = check_structure(info.datasets)
                lines += [str(f.error(msg, name, ds)) for ds, msg in problems]
                if problems:
                    continue
                bad = set()
                dnc = any(ds in DNC for ds in info.datasets)  # its weightings sum to at most 1
                for ds in info.datasets:
                    try:
                        for start, block in f.blocks(name, ds, info=info):
                            msg = check_values(ds, block, start, weighting_tol, stage_tol=stage_tol, dnc=dnc)
                            if msg:
                                lines.append(str(f.error(msg, name, ds)))
                                bad.add(ds)
                                break
                    except TraceError as e:
                        lines.append(str(e))
                        bad.add(ds)
                lines += recombination_problems(f, name, info, bad)
            return lines
    except TraceError as e:
        return [str(e)]


def recombination_problems(f: TraceFile, name: str, info: TraceInfo, bad=(), tol: float = RECOMBINE_TOL,
                           block_bytes: int = BLOCK_BYTES) -> list[str]:
    """One line per head and relation whose recorded addressing stages do not recombine into the
    recorded weighting (trace.Recombination), checked block by block; the relations of a dataset in
    ``bad`` (one already reported) are left out."""
    shapes = {ds: shape for ds, (shape, _) in info.datasets.items() if ds not in bad}
    check = Recombination(shapes, tol)
    if not check.checks:
        return []
    try:
        for start, blocks in f.step_blocks(name, check.datasets, block_bytes, info):
            check.add(start, blocks)
    except TraceError as e:
        return [str(e)]
    return [str(f.error(msg, name, ds)) for ds, msg in check.problems()]


def trace_files(paths, recursive: bool = True, allow_external: bool = False,
                refused: list[TraceError] | None = None) -> list[Path]:
    """Expand files and folders into trace files. A folder gives every .h5/.hdf5/.npz below it,
    sorted (except the trainer's checkpoints, which share the .npz suffix but hold no traces).

    Of a folder only what lies in it is read: a symbolic link in it (to a file or a folder) is not
    followed unless ``allow_external``, and becomes a TraceError saying so, appended to ``refused``
    (or raised, when ``refused`` is None). A FIFO or device with a trace file's suffix is listed:
    opening it refuses it without reading it. A path given in ``paths`` is taken as given, a
    symbolic link too.
    """
    out = []
    for top in map(Path, paths):
        if not top.is_dir():
            out.append(top)
            continue
        found, problems, seen, todo = [], [], set(), [top]
        while todo:
            folder = todo.pop()
            try:
                st = folder.stat()
                if (st.st_dev, st.st_ino) in seen:  # a folder met again through links (allow_external)
                    continue
                seen.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as e:
                problems.append(TraceError(f"folder cannot be read ({e.strerror or e})", folder))
                continue
            for entry in entries:
                path = Path(entry.path)
                is_trace = path.suffix.lower() in TRACE_SUFFIXES
                if entry.is_symlink() and not allow_external:
                    if is_trace or entry.is_dir():  # a stat of the target: nothing of it is read
                        problems.append(folder_link_error(path))
                elif entry.is_dir():
                    if recursive:
                        todo.append(path)
                elif is_trace and not (entry.is_file() and is_checkpoint(path)):
                    found.append(path)
        out += sorted(found)
        problems.sort(key=lambda e: e.path)
        if problems and refused is None:
            raise problems[0]
        if refused is not None:
            refused += problems
    return out


def trace_entries(paths, allow_external: bool = False) -> list[tuple[Path, TraceError | None]]:
    """Every trace file named in ``paths`` or found in a folder named there, each with the TraceError
    that refuses it or None, sorted by path within each of ``paths``, in their order. Refused: a
    folder's symbolic link (unless ``allow_external``), a folder that cannot be read, and a folder
    named that holds no trace file, each under its own path."""
    out = []
    for path in map(Path, paths):
        refused: list[TraceError] = []
        found = [(f, None) for f in trace_files([path], allow_external=allow_external, refused=refused)]
        if not found and not refused and path.is_dir():
            refused.append(TraceError("holds no trace files (.h5, .hdf5, .npz)", path))
        out += sorted(found + [(e.path, e) for e in refused], key=lambda fe: fe[0])
    return out


def folder_link_error(path: Path) -> TraceError:
    """The refusal of a symbolic link met in a folder (one named by the user is followed)."""
    try:
        target = repr(os.readlink(path))
    except OSError:
        target = "somewhere that cannot be read"
    return TraceError(f"is a symbolic link (to {target}); in a folder attnviz reads the files that lie in it, "
                      "and follows links only with --allow-external", path)


def is_checkpoint(path: Path) -> bool:
    """An attnviz.trainer checkpoint: an NPZ of meta.npy, param/*.npy and (for resuming) opt/*.npy
    and best/*.npy (the best state, for the trainer's rollback)."""
    if path.suffix.lower() != ".npz":
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False  # let the reader report what is wrong with it
    return "meta.npy" in names and all(n == "meta.npy" or n.startswith(("param/", "opt/", "best/")) for n in names)


# ------------------------------------------------------------------------ writing


def save(traces, path, compression: bool | None = None) -> Path:
    """Write one or more traces to ``path``; the format follows the suffix (.h5/.hdf5/.npz).

    The file is written under a temporary name in the same folder and renamed when
    complete, so an interrupted write never leaves a partial file at ``path``.
    """
    path = Path(path)
    traces = as_trace_list(traces)
    names = [t.name for t in traces]
    if len(set(names)) != len(names):
        raise AttnvizError(f"{path}: two traces share a name ({names})")
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        writer = _write_hdf5
    elif suffix in NPZ_SUFFIXES:
        writer = _write_npz
    else:
        raise AttnvizError(f"{path}: unknown suffix {path.suffix!r}; use .h5, .hdf5 or .npz")
    with atomic_path(path) as tmp:
        writer(traces, tmp, compression)
    return path


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    An existing file keeps its permissions. A destination that cannot be written (a folder, a
    read-only folder, a full disk) raises AttnvizError naming the destination, and leaves
    nothing behind.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise AttnvizError(f"{path}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise AttnvizError(f"{path}: is a folder, not a file that can be written")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise AttnvizError(f"{path}: cannot be written ({e.strerror or e})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _write_hdf5(traces, tmp, compression):
    import h5py

    with h5py.File(tmp, "w") as f:
        for t in traces:
            write_group(f, t, compression)


def write_group(f, trace: Trace, compression: bool | None = None) -> None:
    """Write one trace into an open h5py File as a group named after it (replacing one
    of that name). Arrays over 64 KiB are chunked along time and gzip-compressed unless
    ``compression`` says otherwise."""
    if trace.name != ROOT and trace.name in f:
        del f[trace.name]
    group = f if trace.name == ROOT else f.require_group(trace.name)
    for key, arr in trace.arrays.items():
        compress = arr.nbytes > 2**16 if compression is None else compression
        kwargs = {}
        if compress:
            kwargs = {"compression": "gzip", "compression_opts": 4, "shuffle": True, "chunks": time_chunks(arr)}
        group.create_dataset(key, data=arr, **kwargs)
    for k, v in trace.metadata.items():
        group.attrs[k] = v
    group.attrs["attnviz_format"] = FORMAT_VERSION


def time_chunks(arr, target_bytes: int = 2**20) -> tuple[int, ...]:
    """Chunks of whole steps, about 1 MiB each: reading a window of steps reads little else."""
    row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize)
    return (max(1, min(arr.shape[0], target_bytes // row)),) + tuple(arr.shape[1:])


def _write_npz(traces, tmp, compression):
    arrays = {}
    for t in traces:
        prefix = "" if t.name == ROOT else t.name + "/"
        for key, arr in t.arrays.items():
            arrays[prefix + key] = arr
        meta = dict(t.metadata, attnviz_format=FORMAT_VERSION)
        arrays[prefix + "attrs"] = np.array(json.dumps(meta, sort_keys=True))
    save_fn = np.savez if compression is False else np.savez_compressed
    with open(tmp, "wb") as fp:
        save_fn(fp, **arrays)


def convert(src, dst, max_bytes: int | None = None, allow_external: bool = False) -> Path:
    """Copy every trace of ``src`` into ``dst`` (HDF5 <-> NPZ): arrays, dtypes, metadata, names."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise AttnvizError(f"{dst}: the output is the input file")
    with open_traces(src, max_bytes, allow_external) as f:
        f.resolve(f.names[0] if f.names else None)
        return save(list(f), dst)
