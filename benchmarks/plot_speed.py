"""`attnviz plot` speed: batch export of 200 copy traces against a hand-written baseline,
and one plot against a script that only imports matplotlib, h5py and numpy.

Every attnviz run in the batch comparison starts with an empty frame cache (as a CI job does);
the single plot is timed both with an empty cache and with its frame already cached.

    python benchmarks/plot_speed.py [--n 200] [--dir /tmp/attnviz-plotbench] [--jobs 2]

The traces are recorded by the numpy NTM (the shipped checkpoint when present), lengths 1-20
mixed, one HDF5 file each. The baseline is what a user writes by hand: for each file,
plt.subplots(2, 2), imshow four times, tight_layout, savefig, close, at the same pixel size
as attnviz's default figure (800 x 520). Everything runs in one go on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "sample_traces" / "copy_checkpoint.npz"

BASELINE = """
import sys, time, glob
import h5py, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
files = sorted(glob.glob(sys.argv[1] + "/*.h5"))
t0 = time.perf_counter()
for path in files:
    with h5py.File(path) as f:
        data = [f[k][...] for k in ("inputs", "outputs", "write_weightings", "read_weightings")]
    fig, axes = plt.subplots(2, 2, figsize=(8, 5.2), dpi=100)
    for ax, a, title in zip(axes.flat, data, ("Inputs", "Outputs", "Write Weightings", "Read Weightings")):
        ax.imshow(a.T, aspect="auto", origin="lower", interpolation="nearest", cmap="turbo")
        ax.set_title(title); ax.set_xlabel("Time"); ax.set_ylabel("Location")
    fig.tight_layout()
    fig.savefig(sys.argv[2] + "/" + path.rsplit("/", 1)[1][:-3] + ".png")
    plt.close(fig)
print(time.perf_counter() - t0)
"""

IMPORTS_ONLY = "import matplotlib; matplotlib.use('Agg'); import h5py, numpy"


def make_traces(d: Path, n: int) -> None:
    import attnviz
    from attnviz.trainer.checkpoint import load_model
    from attnviz.trainer.ntm.model import NTM
    from attnviz.trainer.record import record
    from attnviz.trainer.tasks import get_task

    if len(list(d.glob("*.h5"))) == n:
        return
    if CHECKPOINT.exists():
        model, task, _ = load_model(CHECKPOINT)
    else:
        task = get_task("copy")
        from attnviz.trainer.ntm.config import NTMConfig

        model = NTM.create(NTMConfig(task.input_size, task.output_size))
    for i in range(n):
        length = 1 + i % 20
        arrays, meta = record(model, task, length, seed=i)
        arrays.pop("memory", None)
        attnviz.save(attnviz.Trace(arrays, meta), d / f"copy_{i:04d}.h5")


def wall(cmd, cache_dir=None) -> float:
    """Wall time of a command; attnviz's frame cache in cache_dir, or a new empty one."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as empty:
        env = dict(os.environ, ATTNVIZ_CACHE_DIR=str(cache_dir or empty))
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/attnviz-plotbench")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    d = Path(args.dir)
    traces, out_base, out_a1, out_aj = (d / s for s in ("traces", "baseline", "attnviz1", "attnvizj"))
    for p in (traces, out_base, out_a1, out_aj):
        p.mkdir(parents=True, exist_ok=True)
    make_traces(traces, args.n)
    exe = sys.executable
    # One untimed run each, so that the font cache and the page cache are warm for all.
    subprocess.run([exe, "-m", "attnviz", "plot", str(next(traces.glob("*.h5"))), "-o", str(d / "warm.png")],
                   check=True)
    base_loop = float(subprocess.run([exe, "-c", BASELINE, str(traces), str(out_base)], check=True,
                                     capture_output=True, text=True).stdout)
    base_total = wall([exe, "-c", BASELINE, str(traces), str(out_base)])
    a1 = wall([exe, "-m", "attnviz", "plot", str(traces), "--out-dir", str(out_a1), "--jobs", "1"])
    aj = wall([exe, "-m", "attnviz", "plot", str(traces), "--out-dir", str(out_aj), "--jobs", str(args.jobs)])
    from PIL import Image

    size_base = Image.open(next(out_base.glob("*.png"))).size
    size_a = Image.open(next(out_a1.glob("*.png"))).size
    sample = ROOT / "sample_traces" / "copy_len20.h5"
    if not sample.exists():
        sample = next(traces.glob("*.h5"))
    one = [exe, "-m", "attnviz", "plot", str(sample), "-o", str(d / "single.png")]
    cold = [wall(one) for _ in range(args.repeat)]  # an empty frame cache each time
    wall(one, d / "cache")  # draws the frame into the cache
    warm = [wall(one, d / "cache") for _ in range(args.repeat)]
    imports = [wall([exe, "-c", IMPORTS_ONLY]) for _ in range(args.repeat)]
    res = {
        "traces": args.n, "pixel_size_baseline": size_base, "pixel_size_attnviz": size_a,
        "baseline_seconds_total": round(base_total, 2), "baseline_seconds_loop_only": round(base_loop, 2),
        "attnviz_jobs1_seconds": round(a1, 2), f"attnviz_jobs{args.jobs}_seconds": round(aj, 2),
        "speedup_jobs1": round(base_total / a1, 1), f"speedup_jobs{args.jobs}": round(base_total / aj, 1),
        "single_plot_cached_frame_median_seconds": round(statistics.median(warm), 3),
        "single_plot_empty_cache_median_seconds": round(statistics.median(cold), 3),
        "imports_only_median_seconds": round(statistics.median(imports), 3),
        "cached_over_imports": round(statistics.median(warm) / statistics.median(imports), 2),
        "empty_cache_over_imports": round(statistics.median(cold) / statistics.median(imports), 2),
    }
    print(json.dumps(res, indent=1))
    (d / "results.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
