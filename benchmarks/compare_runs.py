"""`attnviz compare`: its table and figure over 10 runs, and `--json` over 100 run folders.

    python benchmarks/compare_runs.py SWEEP_DIR [--dir /tmp/attnviz-bench-compare] [--runs 3]

SWEEP_DIR is a folder of real run folders (a sweep's --run-dir, e.g. from
`attnviz train --task copy --seeds 0-9 --run-dir runs/copy`). Each measurement runs in its own
process; prints wall seconds and peak RSS (MB) per run of:
  - `attnviz compare SWEEP_DIR -o compare.png` (the table, the curves and every run's last snapshot);
  - `attnviz compare --json` over 100 run folders: the sweep's runs copied over and over (their
    config.json, metrics.csv, status.json and checkpoint placeholder; the JSON reads no trace file).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def measure(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    code = ("import resource, runpy, sys; sys.argv = ['attnviz'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('attnviz', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(f\"RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n\")")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    rss = int(out.stderr.strip().splitlines()[-1].split()[1]) / 1024
    return wall, rss


def hundred(sweep: Path, folder: Path, n: int = 100) -> Path:
    """n run folders made of the sweep's runs (metrics and configuration only)."""
    runs = sorted(p for p in sweep.iterdir() if (p / "metrics.csv").is_file())
    target = folder / f"runs{n}"
    if target.exists():
        return target
    for i in range(n):
        src, dst = runs[i % len(runs)], target / f"seed{i}"
        dst.mkdir(parents=True)
        for name in ("config.json", "metrics.csv", "status.json"):
            if (src / name).exists():
                shutil.copyfile(src / name, dst / name)
        (dst / "checkpoint.npz").write_bytes(b"")
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/attnviz-bench-compare"))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    many = hundred(a.sweep, a.dir)
    n = sum(1 for p in a.sweep.iterdir() if (p / "metrics.csv").is_file())
    rows = {f"`attnviz compare SWEEP -o compare.png` ({n} runs)": ["compare", str(a.sweep), "-o",
                                                                  str(a.dir / "compare.png")],
            "`attnviz compare RUNS --json` (100 runs)": ["compare", str(many), "--json"]}
    print(f"load average {os.getloadavg()[0]:.1f}; {a.runs} runs each\n")
    print("| what | wall (s) | peak RSS (MB) |\n|---|---:|---:|")
    for what, args in rows.items():
        results = [measure(args) for _ in range(a.runs)]
        print(f"| {what} | {', '.join(f'{w:.2f}' for w, _ in results)} | {', '.join(f'{m:.0f}' for _, m in results)} |")


if __name__ == "__main__":
    main()
