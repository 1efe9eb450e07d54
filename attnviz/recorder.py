"""TraceRecorder: collect a trace from your own model loop, one step or one sequence at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AttnvizError, TraceError
from .trace import DATASETS, FORMAT_VERSION, ROOT, Trace, as_array, check_metadata, check_structure, check_values


class TraceRecorder:
    """Collect arrays step by step (or a whole sequence at once) and build a Trace.

    Accepts numpy arrays, PyTorch tensors (detached and moved to the CPU for you), JAX
    arrays or anything ``numpy.asarray`` takes; imports no framework::

        rec = TraceRecorder(task="copy", model="my-ntm")
        for t in range(T):
            y, state = model.step(x[t], state)
            rec.step(inputs=x[t], outputs=y,
                     write_weightings=state.write_w, read_weightings=state.read_w)
        rec.save("trace.h5")

    Every dataset of the format goes in by name, each head's addressing stages too
    (``read_gates=state.read_gate``, ``read_shifts=...``) and a DNC's datasets
    (``usage=...``, ``link_matrices=...``, ``read_modes=reorder_read_modes(...)``:
    docs/trace-format.md, which maps the names of the DNC implementations onto them).

    With ``stream_to="run.h5"`` the steps go to a chunked, compressed HDF5 file as they
    arrive (every ``chunk_steps`` steps), so a run of any length never holds its trace in
    memory; ``close()`` (or leaving a ``with`` block) finishes the file, which appears
    under its name only when complete. A storage chunk holds ``chunk_steps`` steps, or
    fewer where that would pass 1 MiB (a DNC's link matrices), as ``save`` writes them.
    """

    def __init__(self, name: str = ROOT, stream_to=None, chunk_steps: int = 1024, **metadata):
        self.name = name
        self.metadata = dict(metadata)
        self._steps: dict[str, list[np.ndarray]] = {}
        self._stream = _Stream(Path(stream_to), name, chunk_steps) if stream_to is not None else None
        self._count: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}  # each dataset's shape without its time axis
        self._path = Path(stream_to) if stream_to is not None else None  # for messages

    def step(self, **arrays) -> None:
        """Record one time step: each dataset without its time axis, e.g. inputs (input_width,)."""
        self._add(arrays, per_step=True)

    def record(self, **arrays) -> None:
        """Record a whole sequence (or a run of steps): each dataset with time on axis 0."""
        self._add(arrays, per_step=False)

    def _add(self, arrays, per_step):
        """Check every array of the step, then keep them all: a refused step leaves nothing behind."""
        unknown = set(arrays) - set(DATASETS)
        if unknown:
            raise ValueError(f"unknown dataset(s) {sorted(unknown)}; trace datasets are {', '.join(DATASETS)}")
        step = {}
        for key, value in arrays.items():
            if value is not None:
                a = as_array(value)
                step[key] = a[None] if per_step else a
        for key, a in step.items():
            self._check_shape(key, a, per_step)
        if any(key not in self._shapes for key in step):
            self._check_new(step, per_step)
        for key, a in step.items():
            self._shapes.setdefault(key, a.shape[1:])
            self._count[key] = self._count.get(key, 0) + a.shape[0]
            if self._stream is not None:
                self._stream.add(key, a)
            else:
                self._steps.setdefault(key, []).append(a)

    def _check_shape(self, key: str, a: np.ndarray, per_step: bool) -> None:
        """Every step of a dataset has one shape: a step that differs is refused when it comes, not
        when the trace is saved."""
        first = self._shapes.get(key, a.shape[1:])
        if a.shape[1:] != first:
            n = self._count.get(key, 0)
            steps = f"step {n} has" if per_step else f"steps {n} to {n + len(a) - 1} have"
            raise TraceError(f"{steps} shape {a.shape[1:]} but the earlier steps have {first}", self._path,
                             self.name, key)

    def _check_new(self, step: dict[str, np.ndarray], per_step: bool) -> None:
        """A dataset's first steps agree with the datasets recorded so far (ranks, heads, N, M, the
        addressing stages' shapes; docs/trace-format.md): refused when they come, not when the trace is
        saved. Later steps keep their first shape (``_check_shape``), so once is enough."""
        specs = {k: ((1,) + shape, np.dtype(np.float32)) for k, shape in self._shapes.items()}
        specs.update({k: (a.shape, a.dtype) for k, a in step.items()})
        problems = check_structure(specs, partial=True)
        if problems:
            key, msg = problems[0]
            if per_step:  # the step under way
                steps = f"step {max(self._count.values(), default=0)}"
            else:
                n = self._count.get(key, 0)
                steps = f"steps {n} to {n + len(step[key]) - 1}" if key in step else f"step {n}"
            raise TraceError(f"{steps}: {msg}", self._path, self.name, key)

    def __len__(self) -> int:
        """Steps recorded so far (of inputs)."""
        return self._count.get("inputs", 0)

    def trace(self) -> Trace:
        """The recording as a validated Trace (in streaming mode: read back after close)."""
        if self._stream is not None:
            from .io import load

            self.close()
            return load(self._stream.path, None if self.name == ROOT else self.name)
        arrays = {k: np.concatenate(v, axis=0) for k, v in self._steps.items()}
        return Trace(arrays, self.metadata, self.name)

    def save(self, path=None) -> Path:
        """Write the trace (the format follows the suffix); in streaming mode, finish the file."""
        if self._stream is not None:
            self.close()
            return self._stream.path
        from .io import save

        return save(self.trace(), path)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.finish(self.metadata)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self._stream is not None:
            self._stream.discard()


def reorder_read_modes(modes) -> np.ndarray:
    """DNC read modes in the order deepmind/dnc and ixaxaar/pytorch-dnc give them, ``(..., backward x W,
    forward x W, content)`` for W write heads, in the trace's order: ``(..., backward x W, content,
    forward x W)`` (docs/trace-format.md). Any array-like (a PyTorch tensor too); the leading axes (batch,
    time, read heads) are kept.

    >>> reorder_read_modes([0.2, 0.3, 0.5])  # backward, forward, content
    array([0.2, 0.5, 0.3])
    """
    m = as_array(modes)
    K = m.shape[-1] if m.ndim else 0
    if K < 3 or K % 2 == 0:
        raise ValueError(f"read modes of shape {m.shape}: the last axis holds 2 x write heads + 1 modes, an odd "
                         "number from 3")
    W = (K - 1) // 2
    return np.concatenate([m[..., :W], m[..., 2 * W :], m[..., W : 2 * W]], axis=-1)


CHUNK_BYTES = 2**20  # a streamed dataset's storage chunk holds at most this (or one step)


class _Stream:
    """Appends rows to resizable, chunked, compressed HDF5 datasets in a temporary file."""

    def __init__(self, path: Path, name: str, chunk_steps: int):
        import secrets

        if path.suffix.lower() not in (".h5", ".hdf5"):
            raise AttnvizError(f"{path}: streaming writes HDF5; use a .h5 or .hdf5 name")
        self.path, self.name, self.chunk = path, name, max(1, chunk_steps)
        self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        self.buffers: dict[str, list[np.ndarray]] = {}
        self.file = None
        self.done = False

    def group(self):
        import h5py

        if self.file is None:
            self.file = h5py.File(self.tmp, "w")
        return self.file if self.name == ROOT else self.file.require_group(self.name.strip("/"))

    def add(self, key, a):
        self.buffers.setdefault(key, []).append(a)
        if sum(len(b) for b in self.buffers[key]) >= self.chunk:
            self.flush(key)

    def flush(self, key):
        parts = self.buffers.pop(key, [])
        if not parts:
            return
        block = np.concatenate(parts, axis=0)
        group = self.group()
        if key not in group:
            rows = max(1, min(self.chunk, CHUNK_BYTES // max(1, block[:1].nbytes)))  # whole steps, <= 1 MiB
            group.create_dataset(key, shape=(0,) + block.shape[1:], maxshape=(None,) + block.shape[1:],
                                 dtype=block.dtype, chunks=(rows,) + block.shape[1:],
                                 compression="gzip", compression_opts=4, shuffle=True)
        ds = group[key]  # of the same shape per step: TraceRecorder checks each step as it comes
        problem = check_values(key, block, ds.shape[0], finite=False)  # as a Trace: NaN and inf are kept
        if problem:
            self.discard()
            raise TraceError(problem, self.path, self.name, key)
        n = ds.shape[0]
        ds.resize(n + len(block), axis=0)
        ds[n:] = block

    def finish(self, metadata):
        import os

        if self.done:
            return
        for key in list(self.buffers):
            self.flush(key)
        group = self.group()
        problems = check_structure({k: (group[k].shape, group[k].dtype) for k in group if k in DATASETS})
        if problems:
            self.discard()
            raise TraceError(problems[0][1], self.path, self.name, problems[0][0])
        try:
            meta = check_metadata(metadata)
        except ValueError as e:
            self.discard()
            raise TraceError(str(e), self.path, self.name) from None
        group.attrs.update(meta)
        group.attrs["attnviz_format"] = FORMAT_VERSION
        self.file.close()
        os.replace(self.tmp, self.path)
        self.done = True

    def discard(self):
        import contextlib

        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()
        self.done = True
