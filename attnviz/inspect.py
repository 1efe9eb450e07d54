"""What `attnviz inspect` reports: a file's traces, their datasets and value ranges."""

from __future__ import annotations

import numpy as np

from . import workers
from .errors import TraceError
from .io import open_traces
from .trace import DATASETS, DNC, STAGES, check_structure, check_values, stage_name

ORDER = {name: i for i, name in enumerate(DATASETS)}  # datasets are listed in the format's order
_STAGE_DATASETS = {stage_name(kind, stage) for kind in ("write", "read") for stage in STAGES}
PAPER = ("adds", "reads")  # what layout paper draws besides the grid's panels
PAPER_BY_TASK = {"ngrams": ("baseline_outputs",), "priority-sort": ()}  # ... in the paper's figure of these tasks


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
    from .analysis import (
        COPY_DATASETS,
        context_locations_from_file,
        copy_diagnostics_from_file,
        priority_sort_from_file,
    )

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
                 "datasets": datasets, "problems": problems, "layouts": layouts(info.datasets)}
        if "dnc" in entry["layouts"]:
            entry["dnc"] = dnc_summary(info.datasets)
        if info.metadata.get("task") == "copy" and not problems:
            entry["copy_diagnostics"] = copy_diagnostics_from_file(f, name, whole)
        if info.metadata.get("task") == "ngrams" and not problems:
            entry["contexts"] = context_locations_from_file(f, name, info)
        if info.metadata.get("task") == "priority-sort" and not problems:
            entry["priority_sort"] = priority_sort_from_file(f, name, info)
        if not problems:
            _addressing(f, info, entry)
        traces.append(entry)
    return traces


def layouts(datasets) -> list[str]:
    """The layouts of `attnviz plot` a trace holding these datasets can fill: grid and paper always (paper
    marks Adds or Reads "not recorded" where they are not), addressing where an addressing stage is
    recorded, dnc where a DNC dataset is."""
    return (["grid", "paper"] + (["addressing"] if any(k in _STAGE_DATASETS for k in datasets) else [])
            + (["dnc"] if any(k in DNC for k in datasets) else []))


def dnc_summary(datasets) -> dict:
    """Which DNC datasets a trace records (datasets: name -> (shape, dtype), as TraceInfo holds them), in
    the format's order, its write and read heads (None where its weightings are not recorded), and the
    size of its link matrices ([N, N], None when not recorded)."""
    shapes = {k: tuple(shape) for k, (shape, _) in datasets.items()}
    heads = {kind: (shapes[f"{kind}_weightings"][1] if len(shapes[f"{kind}_weightings"]) == 3 else 1)
             if f"{kind}_weightings" in shapes else None for kind in ("write", "read")}
    link = shapes.get("link_matrices")
    return {"recorded": [k for k in DNC if k in shapes], "not_recorded": [k for k in DNC if k not in shapes],
            "write_heads": heads["write"], "read_heads": heads["read"],
            "link_matrix": list(link[-2:]) if link else None}


def describe(entry: dict) -> list[str]:
    """The lines `attnviz inspect` prints under a trace's table about what it can draw and what it shows: its
    layouts; for a DNC's trace, which of the DNC's datasets it records; for an N-gram trace, the location
    each context uses; for a priority sort, the line through its write locations and how it reads."""
    task = entry.get("metadata", {}).get("task")
    missing = [k for k in PAPER_BY_TASK.get(task, PAPER) if k not in entry["datasets"]]
    names = [f"paper ({', '.join(missing)} not recorded)" if k == "paper" and missing else k
             for k in entry.get("layouts", ())]
    lines = ["layouts: " + ", ".join(names)] if names else []
    d = entry.get("dnc")
    if d:
        heads = [f"{n} {kind} head{'s' * (n != 1)}" for kind, n in (("write", d["write_heads"]),
                                                                    ("read", d["read_heads"])) if n]
        recorded = [f"link_matrices ({d['link_matrix'][0]} x {d['link_matrix'][1]} a step"
                    + (", one per write head)" if (d["write_heads"] or 1) > 1 else ")") if k == "link_matrices" else k
                    for k in d["recorded"]]
        lines.append("dnc: " + "".join(h + ", " for h in heads[:-1]) + "".join(h + "; " for h in heads[-1:])
                     + "recorded: " + ", ".join(recorded)
                     + (f"; not recorded: {', '.join(d['not_recorded'])}" if d["not_recorded"] else ""))
    if "contexts" in entry:
        from .analysis import describe_contexts

        lines += describe_contexts(entry["contexts"])
    if "priority_sort" in entry:
        from .analysis import describe_priority_sort

        lines += describe_priority_sort(entry["priority_sort"])
    return lines


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
