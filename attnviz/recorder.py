"""TraceRecorder: collect a trace from your own model loop, one step or one sequence at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .trace import DATASETS, ROOT, Trace, as_array


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
    """

    def __init__(self, name: str = ROOT, **metadata):
        self.name = name
        self.metadata = dict(metadata)
        self._steps: dict[str, list[np.ndarray]] = {}

    def step(self, **arrays) -> None:
        """Record one time step: each dataset without its time axis, e.g. inputs (input_width,)."""
        self._add(arrays, per_step=True)

    def record(self, **arrays) -> None:
        """Record a whole sequence (or a run of steps): each dataset with time on axis 0."""
        self._add(arrays, per_step=False)

    def _add(self, arrays, per_step):
        unknown = set(arrays) - set(DATASETS)
        if unknown:
            raise ValueError(f"unknown dataset(s) {sorted(unknown)}; trace datasets are {', '.join(DATASETS)}")
        for key, value in arrays.items():
            if value is None:
                continue
            a = as_array(value)
            self._steps.setdefault(key, []).append(a[None] if per_step else a)

    def __len__(self) -> int:
        """Steps recorded so far (of inputs)."""
        return sum(a.shape[0] for a in self._steps.get("inputs", []))

    def trace(self) -> Trace:
        """The recording as a validated Trace."""
        arrays = {k: np.concatenate(v, axis=0) for k, v in self._steps.items()}
        return Trace(arrays, self.metadata, self.name)

    def save(self, path) -> Path:
        from .io import save

        return save(self.trace(), path)
