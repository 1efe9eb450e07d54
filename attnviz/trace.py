"""The Trace type and the rules of trace format version 1 (docs/trace-format.md).

The rules are written against shapes and dtypes (``check_structure``) and against
blocks of values (``check_values``), so that the same checks serve an in-memory
``Trace`` and a file too large to load, which is checked block by block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import TraceError

FORMAT_VERSION = 1
ROOT = "/"  # the name of the trace at the root of a file (or the only trace of a plain NPZ)


@dataclass(frozen=True)
class DatasetSpec:
    required: bool
    ranks: tuple[int, ...]
    shape_doc: str


DATASETS: dict[str, DatasetSpec] = {
    "inputs": DatasetSpec(True, (2,), "(T, input_width)"),
    "outputs": DatasetSpec(True, (2,), "(T, output_width)"),
    "write_weightings": DatasetSpec(True, (2, 3), "(T, N) or (T, heads, N)"),
    "read_weightings": DatasetSpec(True, (2, 3), "(T, N) or (T, heads, N)"),
    "targets": DatasetSpec(False, (2,), "(T, output_width)"),
    "adds": DatasetSpec(False, (2, 3), "(T, M) or (T, heads, M)"),
    "erases": DatasetSpec(False, (2, 3), "(T, M) or (T, heads, M)"),
    "reads": DatasetSpec(False, (2, 3), "(T, M) or (T, heads, M)"),
    "memory": DatasetSpec(False, (3,), "(T, N, M)"),
    "output_mask": DatasetSpec(False, (1,), "(T,)"),
}
# The addressing stages of each head kind (docs/trace-format.md): optional, in the order they are computed.
STAGES = ("content_weightings", "key_strengths", "gates", "gated_weightings", "shifts", "shifted_weightings",
          "sharpenings")
_PER_LOCATION, _PER_HEAD = ((2, 3), "(T, N) or (T, heads, N)"), ((1, 2), "(T,) or (T, heads)")
_STAGE_SPECS = {"content_weightings": _PER_LOCATION, "key_strengths": _PER_HEAD, "gates": _PER_HEAD,
                "gated_weightings": _PER_LOCATION, "shifts": ((2, 3), "(T, S) or (T, heads, S)"),
                "shifted_weightings": _PER_LOCATION, "sharpenings": _PER_HEAD}


def stage_name(kind: str, stage: str) -> str:
    """The dataset of one addressing stage of one head kind: stage_name("read", "gates") -> "read_gates"."""
    return f"{kind}_{stage}"


for _kind in ("write", "read"):
    for _stage in STAGES:
        DATASETS[stage_name(_kind, _stage)] = DatasetSpec(False, *_STAGE_SPECS[_stage])
REQUIRED = tuple(k for k, s in DATASETS.items() if s.required)
WEIGHTINGS = ("write_weightings", "read_weightings")
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats

Problem = tuple  # (dataset name or None, what is wrong)


def check_structure(specs: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> list[Problem]:
    """Check the datasets' names, dtypes, ranks and mutual shapes.

    specs maps a dataset name to its (shape, dtype). Returns the problems found, each a
    (dataset or None, message) pair; an empty list means the structure is valid.
    """
    problems: list[Problem] = []
    for name in specs:
        if name not in DATASETS:
            problems.append((name, f"unknown dataset; trace datasets are {', '.join(DATASETS)}"))
    for name in REQUIRED:
        if name not in specs:
            problems.append((name, "missing required dataset (a trace needs "
                                   + ", ".join(REQUIRED) + ")"))
    good = {}
    for name, (shape, dtype) in specs.items():
        if name not in DATASETS:
            continue
        dtype = np.dtype(dtype)
        spec = DATASETS[name]
        if dtype.kind not in NUMERIC_KINDS:
            problems.append((name, f"has dtype {_dtype_name(dtype)}; expected bool, integer or float"))
        elif len(shape) not in spec.ranks:
            problems.append((name, f"has shape {tuple(shape)} (rank {len(shape)}); expected {spec.shape_doc}"))
        elif any(d == 0 for d in shape[1:]):
            problems.append((name, f"has shape {tuple(shape)} with an empty axis; expected {spec.shape_doc}"))
        else:
            good[name] = tuple(int(d) for d in shape)
    if not good:
        return problems

    ref = "inputs" if "inputs" in good else next(iter(good))
    T = good[ref][0]
    if T == 0:
        problems.append((ref, f"has shape {good[ref]}: 0 time steps; a trace needs at least one"))
    for name, shape in good.items():
        if shape[0] != T:
            problems.append((name, f"has {shape[0]} time steps but {ref} has {T}; all datasets share axis 0 (time)"))

    def agree(a, a_axis, b, b_axis, what):
        if a in good and b in good and good[a][a_axis] != good[b][b_axis]:
            problems.append((b, f"has {what} = {good[b][b_axis]} but {a} has {what} = {good[a][a_axis]}"))

    agree("write_weightings", -1, "read_weightings", -1, "N (memory locations)")
    agree("write_weightings", -1, "memory", 1, "N (memory locations)")
    agree("outputs", 1, "targets", 1, "output_width")
    for a, b in [("adds", "erases"), ("adds", "reads"), ("erases", "reads"), ("adds", "memory"),
                 ("reads", "memory")]:
        if a in good and b in good:
            agree(a, -1, b, -1, "M (word width)")
            break
    for vec, weights in [("adds", "write_weightings"), ("erases", "write_weightings"),
                         ("reads", "read_weightings")]:
        if vec in good and weights in good and _heads(good[vec]) != _heads(good[weights]):
            problems.append((vec, f"has {_heads(good[vec])} head(s) but {weights} has {_heads(good[weights])}"))
    return problems


def _heads(shape) -> int:
    return shape[1] if len(shape) == 3 else 1


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind == "c":
        return f"{dtype} (complex)"
    if dtype.kind in "OSUVa":
        return {"O": "object", "S": "bytes", "U": "string", "V": "compound/void"}.get(dtype.kind, str(dtype))
    return str(dtype)


def check_values(name: str, block: np.ndarray, start: int = 0, weighting_tol: float | None = None,
                 finite: bool = True) -> str | None:
    """Check one block of a dataset (rows start, start+1, ... of axis 0).

    Values must be finite (``finite=False`` lets NaN and infinities pass: a Trace holds what a
    model that diverged recorded, and ``validate`` reports them). With ``weighting_tol`` set, a
    weighting must also lie in [0, 1] and sum to 1 over locations, each within that tolerance.
    Returns the first problem found, naming the step (and location), or None.
    """
    if finite and block.dtype.kind == "f":
        bad = ~np.isfinite(block)
        if bad.any():
            idx = np.unravel_index(int(np.argmax(bad)), block.shape)
            value = block[idx]
            return f"contains {value} at step {start + idx[0]}{_where(name, idx)}; values must be finite"
    if name == "output_mask" and block.size:
        bad = (block != 0) & (block != 1)
        if bad.any():
            i = int(np.argmax(bad))
            return f"has value {block[i]} at step {start + i}; an output mask holds 0 or 1 (1: scored)"
    if weighting_tol is not None and name in WEIGHTINGS and block.size:
        b = block.astype(np.float64, copy=False)
        out = (b < -weighting_tol) | (b > 1 + weighting_tol)
        if out.any():
            idx = np.unravel_index(int(np.argmax(out)), b.shape)
            return f"has weight {b[idx]:.6g} at step {start + idx[0]}{_where(name, idx)}; weights must lie in [0, 1]"
        sums = b.sum(axis=-1)
        off = np.abs(sums - 1.0) > weighting_tol
        if off.any():
            idx = np.unravel_index(int(np.argmax(off)), sums.shape)
            head = f", head {idx[1]}" if len(idx) > 1 else ""
            return (f"sums to {sums[idx]:.6g} over locations at step {start + idx[0]}{head}; "
                    f"expected 1 within {weighting_tol:g}")
    return None


def _where(name: str, idx) -> str:
    label = "location" if name in WEIGHTINGS or name == "memory" else "element"
    if len(idx) == 3 and name != "memory":
        return f", head {idx[1]}, {label} {idx[2]}"
    if len(idx) == 3:
        return f", location {idx[1]}, element {idx[2]}"
    return f", {label} {idx[1]}" if len(idx) > 1 else ""


MetaValue = str | int | float | bool


def check_metadata(meta: Mapping) -> dict[str, MetaValue]:
    """Return metadata as plain Python str/int/float/bool values, or raise ValueError."""
    out: dict[str, MetaValue] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not key or "\x00" in key or "/" in key:
            raise ValueError(f"metadata key {key!r} must be a non-empty string without '/' or NUL")
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if isinstance(value, bytes | np.bytes_):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"metadata {key!r} is bytes that are not UTF-8") from None
        if isinstance(value, bool | np.bool_):
            out[key] = bool(value)
        elif isinstance(value, int | np.integer):
            out[key] = int(value)
        elif isinstance(value, float | np.floating):
            out[key] = float(value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise ValueError(f"metadata {key!r} contains a NUL character, which HDF5 cannot store")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"metadata {key!r} is not valid Unicode text") from None
            out[key] = str(value)
        else:
            raise ValueError(f"metadata {key!r} is a {type(value).__name__}; "
                             "metadata values must be str, int, float or bool (a flat mapping)")
    return out


def as_array(value) -> np.ndarray:
    """numpy view of anything array-like: numpy, PyTorch (detached, on the CPU), JAX, lists."""
    if hasattr(value, "detach"):  # a torch.Tensor that may require grad
        value = value.detach()
    if hasattr(value, "cpu") and not isinstance(value, np.ndarray):
        value = value.cpu()
    return np.asarray(value)


class Trace:
    """One recorded sequence: named arrays (time on axis 0), flat metadata and a name.

    Built from any array-likes; checked when built (structure, dtypes, metadata, output mask), so a
    Trace in hand is well formed. Its values may hold NaN or infinities (a model that diverged):
    attnviz draws them in a colour of their own, and ``validate`` reports them.

    >>> t = Trace({"inputs": x, "outputs": y, "write_weightings": ww, "read_weightings": rw},
    ...           metadata={"task": "copy"}, name="sample_0")
    """

    def __init__(self, arrays: Mapping[str, object], metadata: Mapping | None = None,
                 name: str = ROOT, *, path=None):
        self.name = normalise_name(name)
        if name_problem(self.name):
            raise TraceError(name_problem(self.name), path)
        self.arrays: dict[str, np.ndarray] = {k: as_array(v) for k, v in arrays.items() if v is not None}
        try:
            self.metadata = check_metadata(metadata or {})
        except ValueError as e:
            raise TraceError(str(e), path, self.name) from None
        problems = check_structure({k: (v.shape, v.dtype) for k, v in self.arrays.items()})
        if not problems:
            for k, v in self.arrays.items():
                msg = check_values(k, v, finite=False)  # NaN and inf are kept: drawn, and named by validate
                if msg:
                    problems.append((k, msg))
        if problems:
            dataset, msg = problems[0]
            raise TraceError(msg, path, self.name, dataset)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def get(self, key: str, default=None):
        return self.arrays.get(key, default)

    @property
    def inputs(self) -> np.ndarray:
        return self.arrays["inputs"]

    @property
    def outputs(self) -> np.ndarray:
        return self.arrays["outputs"]

    @property
    def write_weightings(self) -> np.ndarray:
        return self.arrays["write_weightings"]

    @property
    def read_weightings(self) -> np.ndarray:
        return self.arrays["read_weightings"]

    # The datasets a trace may hold: None when this one did not record them.
    targets = property(lambda self: self.arrays.get("targets"), doc="(T, output_width) or None")
    adds = property(lambda self: self.arrays.get("adds"), doc="(T, M) or (T, heads, M), or None")
    erases = property(lambda self: self.arrays.get("erases"), doc="(T, M) or (T, heads, M), or None")
    reads = property(lambda self: self.arrays.get("reads"), doc="(T, M) or (T, heads, M), or None")
    memory = property(lambda self: self.arrays.get("memory"), doc="(T, N, M) or None")
    output_mask = property(lambda self: self.arrays.get("output_mask"), doc="(T,) or None: is a step's output scored?")

    @property
    def steps(self) -> int:
        """T, the number of time steps."""
        return self.inputs.shape[0]

    @property
    def locations(self) -> int:
        """N, the number of memory locations."""
        return self.write_weightings.shape[-1]

    def heads(self, key: str) -> np.ndarray:
        """A per-head dataset as (T, heads, width), whether stored 2-D or 3-D."""
        a = self.arrays[key]
        return a[:, None, :] if a.ndim == 2 else a

    def _scene(self):
        from .plot import PlotOptions, Source, build_scene

        opts = PlotOptions().validated()
        return build_scene(Source.of_trace(self, opts), opts)

    def _repr_html_(self) -> str:
        """In a notebook: the trace's interactive view, inline (no network needed)."""
        from .plot.html import inline

        return inline(self._scene())

    def _repr_png_(self) -> bytes:
        """In a notebook that shows no HTML: the trace's figure."""
        from .plot import Renderer

        scene = self._scene()
        return Renderer(scene.opts).png(scene)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.arrays.items())
        return f"Trace(name={self.name!r}, {shapes})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (self.name == other.name and self.metadata == other.metadata
                and self.arrays.keys() == other.arrays.keys()
                and all(self.arrays[k].dtype == other.arrays[k].dtype
                        and np.array_equal(self.arrays[k], other.arrays[k]) for k in self.arrays))

    __hash__ = None  # mutable arrays inside


_NAME_PART = re.compile(r"[^\x00-\x1f\x7f/\\]+")



def _optional(key: str, doc: str) -> property:
    return property(lambda self: self.arrays.get(key), doc=doc)


for _kind in ("write", "read"):  # the addressing stages as attributes too: trace.read_gates
    for _stage in STAGES:
        setattr(Trace, stage_name(_kind, _stage), _optional(stage_name(_kind, _stage),
                                                            f"{_STAGE_SPECS[_stage][1]} of the {_kind} heads, or None"))

def name_problem(name: str) -> str | None:
    """Why a (normalised) trace name is not allowed, or None: a name is parts separated by '/',
    none of them '.' or '..', with no backslash or control character (docs/trace-format.md), so
    that no name can reach outside its file's own tree when it is unpacked or written."""
    if name == ROOT:
        return None
    if any(part in (".", "..") or not _NAME_PART.fullmatch(part) for part in name.split("/")):
        return (f"trace name {name!r} is not allowed: a name is parts separated by '/', none of them "
                "'.' or '..', without backslashes or control characters")
    return None


def normalise_name(name: str) -> str:
    """Trace names are group paths without leading or trailing slashes; the root is '/'."""
    if not isinstance(name, str):
        raise TypeError(f"a trace name must be a string, not {type(name).__name__}")
    parts = [p for p in name.split("/") if p]
    return "/".join(parts) if parts else ROOT


def as_trace_list(traces) -> list[Trace]:
    """Accept one Trace, an iterable of them, or a mapping name -> Trace."""
    if isinstance(traces, Trace):
        return [traces]
    if isinstance(traces, Mapping):
        out = []
        for name, t in traces.items():
            if normalise_name(name) != t.name:
                t = Trace(t.arrays, t.metadata, name)
            out.append(t)
        return out
    if isinstance(traces, Iterable):
        return list(traces)
    raise TypeError(f"expected a Trace or traces, not {type(traces).__name__}")
