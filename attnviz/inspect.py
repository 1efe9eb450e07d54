"""What `attnviz inspect` reports: a file's traces, their datasets and value ranges."""

from __future__ import annotations

import numpy as np

from . import workers
from .errors import TraceError
from .io import open_traces
from .trace import DATASETS, check_structure, check_values

ORDER = {name: i for i, name in enumerate(DATASETS)}  # datasets are listed in the format's order


PARALLEL_TRACES = 1000  # a file with more traces than this is shared out among `jobs` processes


def summarize(path, max_bytes: int | None = None, allow_external: bool = False, jobs: int = 1) -> dict:
    """Describe every trace in a file as plain data (JSON-ready).

    Value ranges are computed block by block, so memory stays bounded for HDF5 files
    of any size. Each trace lists its ``problems`` (one line each; empty when valid). A dataset
    that would make HDF5 read another file is refused unless ``allow_external``. With ``jobs`` > 1,
    a file of more than PARALLEL_TRACES traces is read by that many processes, each a share of
    its traces, with the same result.
    """
    with open_traces(path, max_bytes, allow_external) as f:
        f.resolve(f.names[0] if f.names else None)  # "holds no traces" for an empty file
        names, fmt, listing = f.names, f.format, f.listing()
        if jobs <= 1 or len(names) <= PARALLEL_TRACES:
            return {"file": str(path), "format": fmt, "traces": _summaries(f, names)}
    size = -(-len(names) // (4 * jobs))  # shares small enough that none waits long for the last
    shares = [(path, max_bytes, allow_external, names[i : i + size]) for i in range(0, len(names), size)]
    _shared.update(path=path, listing=listing)  # forked workers inherit it
    try:
        with workers.pool(jobs) as processes:  # each opens the file itself
            traces = [t for part in processes.imap(_summarize_share, shares) for t in part]
    finally:
        _shared.clear()
    return {"file": str(path), "format": fmt, "traces": traces}


_shared: dict = {}  # the file summarize shares out, with its listing


def _summarize_share(args) -> list[dict]:
    path, max_bytes, allow_external, names = args
    with open_traces(path, max_bytes, allow_external) as f:
        if _shared.get("path") == path:
            f.use_listing(_shared["listing"])
        return _summaries(f, names)


def _summaries(f, names) -> list[dict]:
    """summarize's entries for some traces of an open file."""
    from .analysis import COPY_DATASETS, copy_diagnostics_from_file

    traces = []
    for name in names:
        info = f.info(name)
        problems = [str(f.error(msg, name, ds)) for ds, msg in check_structure(info.datasets)]
        datasets, whole = {}, {}  # whole: what the copy diagnostics read, when read in one block
        keep = COPY_DATASETS if info.metadata.get("task") == "copy" else ()
        for key in sorted(info.datasets, key=ORDER.get):
            shape, dtype = info.datasets[key]
            lo = hi = first = None
            count = 0
            if dtype.kind in "biuf" and len(shape) and all(shape):
                lo, hi, count, first, problem = _range(f, info, key, whole if key in keep else None)
                if problem:
                    problems.append(str(f.error(problem, name, key)))
            datasets[key] = {"shape": list(shape), "dtype": str(dtype), "min": lo, "max": hi, "nonfinite": count,
                             "first_nonfinite_step": first}
        entry = {"name": name, "steps": info.steps, "metadata": info.metadata,
                 "datasets": datasets, "problems": problems}
        if info.metadata.get("task") == "copy" and not problems:
            entry["copy_diagnostics"] = copy_diagnostics_from_file(f, name, whole)
        if not problems:
            _addressing(f, info, entry)
        traces.append(entry)
    return traces


def _addressing(f, info, entry: dict) -> None:
    """entry["addressing"]: how each head with recorded addressing stages addressed
    (analysis.Addressing), read block by block; nothing for a trace without them."""
    from .analysis import Addressing

    addressing = Addressing(info.datasets)
    if not addressing.kinds:
        return
    try:
        for start, blocks in f.step_blocks(info.name, addressing.datasets, info=info):
            addressing.add(start, blocks)
    except TraceError as e:
        entry["problems"].append(str(e))
        return
    entry["addressing"] = addressing.summary()


def _range(f, info, key, whole: dict | None):
    """(min, max, non-finite values, the first one's step, first problem) of a dataset, min and max
    over its finite values, block by block (a block is searched for NaN and infinities only when its
    own min or max is one); a dataset read in one block is kept in ``whole``, if given."""
    lo, hi, problem, count, first = np.inf, -np.inf, None, 0, None
    for start, block in f.blocks(info.name, key, info=info):
        if whole is not None and start == 0 and block.shape == info.datasets[key][0]:
            whole[key] = block
        if not block.size:
            continue
        b_lo, b_hi = block.min(), block.max()  # both finite: so is every value (NaN and inf propagate)
        if key == "output_mask" or not (np.isfinite(b_lo) and np.isfinite(b_hi)):
            problem = problem or check_values(key, block, start)
            if block.dtype.kind == "f" and not (np.isfinite(b_lo) and np.isfinite(b_hi)):
                finite = np.isfinite(block)
                count += int(finite.size - np.count_nonzero(finite))
                if first is None:
                    first = start + int(np.argmin(finite.reshape(len(block), -1).all(axis=1)))
                block = block[finite]
                if not block.size:
                    continue
                b_lo, b_hi = block.min(), block.max()
        lo, hi = min(lo, float(b_lo)), max(hi, float(b_hi))
    if lo > hi:
        return None, None, count, first, problem
    return lo, hi, count, first, problem
