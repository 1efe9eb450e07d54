"""`attnviz inspect --json` on a file of 10,000 small traces, against h5py's own floor.

    python benchmarks/many_traces.py [--dir /tmp/attnviz-bench] [--traces 10000] [--runs 3]

Generates (once) the file of tests/test_hostile.py's many.h5: each trace a group of four float32
datasets (a copy of length 2 over 8 locations) and a `task` attribute. Then, each in its own
process, measures wall and user CPU time of `attnviz inspect FILE --json` (output to /dev/null), in
one process and with its default of one process per core, and of the floor: a bare h5py loop doing
what inspect cannot do without, for every trace (open its group and datasets, their creation
properties, shapes and dtypes, read every dataset and attribute), with nothing else. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

FLOOR = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    for name in f:
        g = h5py.h5o.open(f.id, name.encode())
        for key in ("inputs", "outputs", "read_weightings", "write_weightings"):
            d = h5py.h5o.open(g, key.encode())
            d.get_create_plist()
            a = np.empty(d.shape, d.dtype)
            d.read(h5py.h5s.ALL, h5py.h5s.ALL, a)
        attrs = h5py.Group(g).attrs
        {k: attrs[k] for k in attrs}
"""


def generate(path: Path, n: int) -> None:
    if path.exists():
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_hostile import build_many

    build_many(path.with_suffix(".tmp"), n)
    path.with_suffix(".tmp").rename(path)


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and user CPU seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    t0 = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/attnviz-bench"))
    ap.add_argument("--traces", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    path = a.dir / f"many_{a.traces}.h5"
    generate(path, a.traces)
    rows = {"h5py floor (open, creation properties, shape, dtype, read; attributes)":
            [sys.executable, "-c", FLOOR, str(path)],
            f"`attnviz inspect {path.name} --json --jobs 1`": [sys.executable, "-m", "attnviz", "inspect", str(path),
                                                               "--json", "--jobs", "1"],
            f"`attnviz inspect {path.name} --json` (one process per core)": [sys.executable, "-m", "attnviz",
                                                                            "inspect", str(path), "--json"]}
    print(f"load average {os.getloadavg()[0]:.1f}; {a.runs} runs each, wall / user CPU seconds\n")
    print("| what | wall (s) | user CPU (s) |\n|---|---:|---:|")
    for what, args in rows.items():
        runs = [timed(args) for _ in range(a.runs)]
        print(f"| {what} | {', '.join(f'{w:.2f}' for w, _ in runs)} | {', '.join(f'{u:.2f}' for _, u in runs)} |")


if __name__ == "__main__":
    main()
