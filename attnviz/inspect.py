"""What `attnviz inspect` reports: a file's traces, their datasets and value ranges."""

from __future__ import annotations

import numpy as np

from .io import open_traces
from .trace import DATASETS, check_structure, check_values

ORDER = {name: i for i, name in enumerate(DATASETS)}  # datasets are listed in the format's order


def summarize(path, max_bytes: int | None = None, allow_external: bool = False) -> dict:
    """Describe every trace in a file as plain data (JSON-ready).

    Value ranges are computed block by block, so memory stays bounded for HDF5 files
    of any size. Each trace lists its ``problems`` (one line each; empty when valid). A dataset
    that would make HDF5 read another file is refused unless ``allow_external``.
    """
    from .analysis import COPY_DATASETS, copy_diagnostics_from_file

    with open_traces(path, max_bytes, allow_external) as f:
        f.resolve(f.names[0] if f.names else None)  # "holds no traces" for an empty file
        traces = []
        for name in f.names:
            info = f.info(name)
            problems = [str(f.error(msg, name, ds)) for ds, msg in check_structure(info.datasets)]
            datasets, whole = {}, {}  # whole: what the copy diagnostics read, when read in one block
            keep = COPY_DATASETS if info.metadata.get("task") == "copy" else ()
            for key in sorted(info.datasets, key=ORDER.get):
                shape, dtype = info.datasets[key]
                lo = hi = None
                if dtype.kind in "biuf" and len(shape) and all(shape):
                    lo, hi, problem = _range(f, info, key, whole if key in keep else None)
                    if problem:
                        problems.append(str(f.error(problem, name, key)))
                datasets[key] = {"shape": list(shape), "dtype": str(dtype), "min": lo, "max": hi}
            entry = {"name": name, "steps": info.steps, "metadata": info.metadata,
                     "datasets": datasets, "problems": problems}
            if info.metadata.get("task") == "copy" and not problems:
                entry["copy_diagnostics"] = copy_diagnostics_from_file(f, name, whole)
            traces.append(entry)
        return {"file": str(path), "format": f.format, "traces": traces}


def _range(f, info, key, whole: dict | None):
    """(min, max, first problem) of a dataset, over its finite values, block by block; a dataset
    read in one block is kept in ``whole``, if given."""
    lo, hi, problem = np.inf, -np.inf, None
    for start, block in f.blocks(info.name, key, info=info):
        if whole is not None and start == 0 and block.shape == info.datasets[key][0]:
            whole[key] = block
        if problem is None:
            problem = check_values(key, block, start)
        if block.dtype.kind == "f" and problem is not None:  # else every value checked so far is finite
            block = block[np.isfinite(block)]
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    if lo > hi:
        return None, None, problem
    return lo, hi, problem
