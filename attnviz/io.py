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
    FORMAT_VERSION,
    ROOT,
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


def open_traces(path, max_bytes: int | None = None) -> TraceFile:
    """Open a trace file for reading (use as a context manager)."""
    fmt = detect_format(path)
    cls = HDF5File if fmt == "hdf5" else NPZFile
    return cls(Path(path), default_max_bytes() if max_bytes is None else max_bytes)


class TraceFile:
    """The traces in one file. Subclasses know one format."""

    format = ""
    size_advice = " (raise it with --max-bytes or ATTNVIZ_MAX_BYTES)"

    def __init__(self, path: Path, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes

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
        nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        if nbytes > self.max_bytes:
            raise self.error(f"{what} {format_size(nbytes)}, above the {format_size(self.max_bytes)} "
                             f"limit for reading an array whole{self.size_advice}", name, dataset)

    def check_scan(self, name, dataset, shape, dtype, what="reading") -> None:
        """Refuse to read more than SCAN_FACTOR x max_bytes of one dataset block by block: a
        declared size can be far beyond any real recording (and its reading beyond any patience)."""
        nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
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
                row = int(np.prod(shape[1:], dtype=np.float64)) * np.dtype(dtype).itemsize
                one = (1,) + tuple(shape[1:]) if row <= block_bytes else (1,) * len(shape)
                yield 0, np.full(one, value, dtype)
            return
        self.check_scan(name, dataset, shape, dtype, "checking all")
        row = max(1, int(np.prod(shape[1:], dtype=np.float64)) * np.dtype(dtype).itemsize)
        step = max(1, block_bytes // row)
        for start in range(0, T, step):
            yield start, self.read(name, dataset, slice(start, min(T, start + step)))

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

    def __init__(self, path, max_bytes):
        super().__init__(path, max_bytes)
        import h5py

        self._h5py = h5py
        try:
            self._f = h5py.File(path, "r")
        except OSError as e:
            raise self.error(f"is not a readable HDF5 file ({_first_line(e)}); is it truncated?") from None
        self._names = None
        self._infos: dict[str, TraceInfo] = {}
        self._open_trace: tuple[str | None, dict] = (None, {})

    def close(self):
        with contextlib.suppress(Exception):
            self._f.close()

    @property
    def names(self) -> list[str]:
        if self._names is None:
            found, seen = [], set()

            stack = [(self._f, "/")]  # depth first, without recursion: nesting has no limit
            while stack:
                group, path = stack.pop()
                try:
                    links = {key: group.get(key, getlink=True) for key in group.keys()}
                except Exception as e:
                    raise self.error(f"group {path!r} cannot be listed ({_first_line(e)})") from None
                if any(k in DATASETS for k in links):
                    found.append(normalise_name(path))
                for key, link in links.items():
                    if isinstance(link, self._h5py.HardLink) and key not in DATASETS:
                        try:
                            obj = group.get(key)
                        except Exception:  # damaged: reported when the trace is read, if it is one
                            continue
                        if isinstance(obj, self._h5py.Group) and obj.id not in seen:
                            seen.add(obj.id)
                            stack.append((obj, f"{path.rstrip('/')}/{key}"))

            self._names = sorted(found, key=lambda n: (n != ROOT, n))
        return self._names

    def _group(self, name):
        return self._f if name == ROOT else self._f[name]

    def _dataset(self, name, key):
        """The h5py Dataset of one trace's dataset (those of the last trace asked for are kept)."""
        if self._open_trace[0] != name:
            self._open_trace = (name, {})
        cache = self._open_trace[1]
        if key not in cache:
            cache[key] = self._open_dataset(name, key)
        return cache[key]

    def _open_dataset(self, name, key):
        group = self._group(name)
        link = group.get(key, getlink=True)
        try:
            obj = group[key]
        except (KeyError, OSError, ValueError, RuntimeError) as e:
            if isinstance(link, self._h5py.SoftLink):
                raise self.error(f"is a soft link to {link.path} that cannot be resolved (a missing target, or "
                                 "links that point at each other)", name, key) from None
            if isinstance(link, self._h5py.ExternalLink):
                raise self.error(f"is an external link to {link.filename}:{link.path} that cannot "
                                 "be resolved", name, key) from None
            raise self.error(f"cannot be opened ({_first_line(e)})", name, key) from None
        if not isinstance(obj, self._h5py.Dataset):
            raise self.error("is a group; expected a dataset", name, key)
        return obj

    def info(self, name: str) -> TraceInfo:
        name = self.resolve(name)
        if name not in self._infos:
            self._infos[name] = self._info(name)
        return self._infos[name]

    def _info(self, name: str) -> TraceInfo:
        self.check_name(name)
        group = self._group(name)
        datasets = {}
        for key in group.keys():
            if key in DATASETS:
                ds = self._dataset(name, key)
                datasets[key] = (tuple(ds.shape or ()), ds.dtype)
        try:
            raw = {k: group.attrs[k] for k in group.attrs.keys()}
            meta = check_metadata(raw)
        except (ValueError, OSError, TypeError) as e:
            raise self.error(f"metadata: {_first_line(e)}", name) from None
        meta = _strip_format_version(meta, lambda m: self.error(m, name))
        return TraceInfo(name, datasets, meta)

    def chunk_rows(self, name, dataset):
        chunks = self._dataset(name, dataset).chunks
        return int(chunks[0]) if chunks else 1

    def constant(self, name, dataset):
        ds = self._dataset(name, dataset)
        try:
            unwritten = ds.id.get_storage_size() == 0 and ds.external is None and not ds.is_virtual
        except Exception:
            return None
        return ds.fillvalue if unwritten else None

    def _check_chunks(self, name, dataset, ds) -> None:
        """Every read decompresses whole chunks: refuse chunks that alone are too big to hold."""
        if ds.chunks:
            nbytes = int(np.prod(ds.chunks, dtype=np.float64)) * ds.dtype.itemsize
            limit = self.max_bytes // CHUNK_DIVISOR
            if nbytes > limit:
                raise self.error(f"is stored in chunks of {format_size(nbytes)}, each read whole to read any part, "
                                 f"above the {format_size(limit)} limit (--max-bytes / {CHUNK_DIVISOR}); raise "
                                 "--max-bytes, or rewrite the file with smaller chunks", name, dataset)

    def read(self, name, dataset, rows=slice(None), cols=None):
        ds = self._dataset(name, dataset)
        self._check_chunks(name, dataset, ds)
        shape = ds.shape or ()
        if shape:
            start, stop, _ = rows.indices(shape[0])
            shape = (max(0, stop - start),) + tuple(shape[1:])
            if cols is not None and len(shape) > 1:
                c0, c1, _ = cols.indices(shape[-1])
                shape = shape[:-1] + (max(0, c1 - c0),)
        self.check_size(name, dataset, shape, ds.dtype)
        try:
            if not ds.shape:
                return ds[()]
            return ds[rows] if cols is None or len(ds.shape) < 2 else ds[(rows, Ellipsis, cols)]
        except (OSError, ValueError, TypeError) as e:
            raise self.error(f"cannot be read ({_first_line(e)})", name, dataset) from None


# ---------------------------------------------------------------------------- NPZ


class NPZFile(TraceFile):
    """An NPZ file. Members cannot be seeked, but C-order arrays are read as a stream, in order:
    a scan of steps from first to last decompresses each member once, in bounded memory."""

    format = "npz"
    size_advice = ("; convert the file to chunked HDF5 with `attnviz convert` (with a larger --max-bytes) "
                   "to read it in parts")
    WHOLE_BYTES = 64 * 2**20  # smaller arrays are read whole (and the last one kept)

    def __init__(self, path, max_bytes):
        super().__init__(path, max_bytes)
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
        self._stream = None  # (member, open member, next row) of the member being read in order

    def close(self):
        with contextlib.suppress(Exception):
            if self._stream:
                self._stream[1].close()
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
        """Rows [start, stop) of a C-order member, from the open stream when it is not past them."""
        shape, dtype = self._header(name, key)
        member = self._keys[name][key]
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.check_size(name, key, (stop - start,) + shape[1:], dtype, what="a block of")
        try:
            if not self._stream or self._stream[0] != member or self._stream[2] > start:
                if self._stream:
                    self._stream[1].close()
                self._stream = (member, self._open(member)[0], 0)
            _, fp, at = self._stream
            skip = (start - at) * row
            while skip > 0:  # decompress and drop what lies before the block
                skip -= len(fp.read(min(skip, BLOCK_BYTES))) or skip
            data = fp.read((stop - start) * row)
            if len(data) != (stop - start) * row:
                raise EOFError(f"member ends after {len(data)} of {(stop - start) * row} bytes")
            self._stream = (member, fp, stop)
        except Exception as e:
            self._stream = None
            raise self.error(f"is damaged or truncated ({_first_line(e)})", name, key) from None
        return np.frombuffer(data, dtype).reshape((stop - start,) + shape[1:])

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


def load(path, name: str | None = None, max_bytes: int | None = None) -> Trace:
    """Read one trace. With ``name=None`` the file must hold exactly one."""
    with open_traces(path, max_bytes) as f:
        return f.load(name)


def list_traces(path, max_bytes: int | None = None) -> list[TraceInfo]:
    """The traces in a file with their datasets' shapes and dtypes; reads no array data
    (except NPZ metadata)."""
    with open_traces(path, max_bytes) as f:
        return [f.info(n) for n in f.names]


def iter_traces(path, max_bytes: int | None = None) -> Iterator[Trace]:
    """Every trace in a file, read one at a time."""
    with open_traces(path, max_bytes) as f:
        yield from f


def validate_file(path, weighting_tol: float | None = None, max_bytes: int | None = None
                  ) -> list[str]:
    """Check every trace in a file; return one line per problem (empty when valid).

    Values are checked block by block, so memory stays bounded for any file size.
    """
    try:
        with open_traces(path, max_bytes) as f:
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
                for ds in info.datasets:
                    try:
                        for start, block in f.blocks(name, ds, info=info):
                            msg = check_values(ds, block, start, weighting_tol)
                            if msg:
                                lines.append(str(f.error(msg, name, ds)))
                                break
                    except TraceError as e:
                        lines.append(str(e))
            return lines
    except TraceError as e:
        return [str(e)]


def trace_files(paths, recursive: bool = True) -> list[Path]:
    """Expand files and folders into trace files (a folder: every .h5/.hdf5/.npz below it,
    except the trainer's checkpoints, which share the .npz suffix but hold no traces)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            out += sorted(q for q in p.glob(pattern)
                          if q.suffix.lower() in TRACE_SUFFIXES and q.is_file() and not is_checkpoint(q))
        else:
            out.append(p)
    return out


def is_checkpoint(path: Path) -> bool:
    """An attnviz.ntm checkpoint: an NPZ of meta.npy, param/*.npy and (for resuming) opt/*.npy
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


def convert(src, dst, max_bytes: int | None = None) -> Path:
    """Copy every trace of ``src`` into ``dst`` (HDF5 <-> NPZ): arrays, dtypes, metadata, names."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise AttnvizError(f"{dst}: the output is the input file")
    with open_traces(src, max_bytes) as f:
        f.resolve(f.names[0] if f.names else None)
        return save(list(f), dst)
