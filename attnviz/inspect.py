"""What `attnviz inspect` reports: a file's traces, their datasets and value ranges."""

from __future__ import annotations

import numpy as np

from .io import open_traces
from .trace import DATASETS, check_structure, check_values


def summarize(path, max_bytes: int | None = None, allow_external: bool = False) -> dict:
    """Describe every trace in a file as plain data (JSON-ready).

    Value ranges are computed block by block, so memory stays bounded for HDF5 files
    of any size. Each trace lists its ``problems`` (one line each; empty when valid). A dataset
    that would make HDF5 read another file is refused unless ``allow_external``.
    """
    from .analysis import copy_diagnostics_from_file

    with open_traces(path, max_bytes, allow_external) as f:
        f.resolve(f.names[0] if f.names else None)  # "holds no traces" for an empty file
        traces = []
        for name in f.names:
            info = f.info(name)
            problems = [str(f.error(msg, name, ds)) for ds, msg in check_structure(info.datasets)]
            datasets = {}
            ordered = sorted(info.datasets.items(), key=lambda kv: list(DATASETS).index(kv[0]))
            for key, (shape, dtype) in ordered:
                lo = hi = None
                if dtype.kind in "biuf" and len(shape) and all(shape):
                    lo, hi, problem = _range(f, name, key)
                    if problem:
                        problems.append(str(f.error(problem, name, key)))
                datasets[key] = {"shape": list(shape), "dtype": str(dtype), "min": lo, "max": hi}
            entry = {"name": name, "steps": info.steps, "metadata": info.metadata,
                     "datasets": datasets, "problems": problems}
            if info.metadata.get("task") == "copy" and not problems:
                entry["copy_diagnostics"] = copy_diagnostics_from_file(f, name)
            traces.append(entry)
        return {"file": str(path), "format": f.format, "traces": traces}


def _range(f, name, key):
    """(min, max, first problem) of a dataset, over its finite values, block by block."""
    lo, hi, problem = np.inf, -np.inf, None
    for start, block in f.blocks(name, key):
        if problem is None:
            problem = check_values(key, block, start)
        if block.dtype.kind == "f":
            block = block[np.isfinite(block)]
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    if lo > hi:
        return None, None, problem
    return lo, hi, problem
