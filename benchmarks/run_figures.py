"""Watching a run: `attnviz animate` on 100 snapshots and `attnviz plot RUN_DIR` on a copy run.

    python benchmarks/run_figures.py --run runs/copy-seed0 [--dir /tmp/attnviz-runbench] [--frames 100]

The 100 snapshots are recorded by the shipped checkpoint (probe sequences of length 20 with seeds
0-99, step metadata 50, 100, ...) into one HDF5 file. Each command runs in its own process with an
empty frame cache, as a CI job would; wall time and peak RSS (the kernel's rusage) are printed,
with the number of frames and the size of the GIF, and the run folder's traces.h5 size and
snapshot count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(cmd: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, ATTNVIZ_CACHE_DIR=cache)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "exit": os.waitstatus_to_exitcode(status), "stderr": proc.stderr.read().decode()[-300:]}


def make_snapshots(path: Path, n: int) -> None:
    import attnviz
    from attnviz.trainer.checkpoint import load_model
    from attnviz.trainer.record import record

    if path.exists():
        return
    model, task, _ = load_model(ROOT / "sample_traces" / "copy_checkpoint.npz")
    traces = []
    for i in range(n):
        arrays, meta = record(model, task, 20, seed=i)
        arrays.pop("memory", None)
        traces.append(attnviz.Trace(arrays, dict(meta, step=50 * (i + 1), sequences=1600 * (i + 1)),
                                    f"step_{50 * (i + 1):07d}"))
    attnviz.save(traces, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder of `attnviz train --task copy`")
    ap.add_argument("--dir", default="/tmp/attnviz-runbench")
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    snaps = d / f"snapshots_{args.frames}.h5"
    make_snapshots(snaps, args.frames)
    exe = [sys.executable, "-m", "attnviz"]
    measure(exe + ["--version"])  # warm the page cache and the byte-code
    animate = measure(exe + ["animate", str(snaps), "-o", str(d / "evolution.gif")])
    from PIL import Image

    frames = Image.open(d / "evolution.gif").n_frames
    run = Path(args.run)
    plot_run = measure(exe + ["plot", str(run), "--out-dir", str(d / "figures")])
    import attnviz

    snapshots = len(attnviz.list_traces(run / "traces.h5"))
    res = {"animate": animate, "frames": frames, "gif_kib": round((d / "evolution.gif").stat().st_size / 1024),
           "plot_run": plot_run, "run_traces_h5_kib": round((run / "traces.h5").stat().st_size / 1024),
           "run_snapshots": snapshots}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
