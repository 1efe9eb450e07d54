"""Large traces: `attnviz plot` (PNG, SVG, PDF) and `attnviz validate` on T = 200,000 steps x N = 2,048.

    python benchmarks/large_traces.py [--dir /tmp/attnviz-bench] [--steps 200000] [--locations 2048]

Generates (once) a chunked float32 HDF5 trace whose two weightings are 1.6 GB each, with one
spike of weight 1.0 at one step and location in each. Then, each in its own process, measures
wall time and peak RSS of: reading both weightings once with h5py (the I/O floor), `attnviz
plot` to PNG, SVG and PDF, `attnviz validate`, and a plain script (h5py read whole + imshow +
savefig). Reports whether each spike is a block of at least 3 x 3 pixels of the top colour at the
right place in attnviz's PNG. Prints a Markdown table and writes results.json next to the data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

SPIKES = {"write_weightings": (123_457, 1_500), "read_weightings": (160_001, 300)}


def generate(path: Path, T: int, N: int) -> None:
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("inputs", data=np.zeros((T, 9), np.float32), chunks=(min(T, 65536), 9))
        f.create_dataset("outputs", data=np.zeros((T, 8), np.float32), chunks=(min(T, 65536), 8))
        block = np.full((4096, N), 1.0 / N, np.float32)
        for key, (t, n) in SPIKES.items():
            t, n = min(t, T - 1), min(n, N - 1)
            ds = f.create_dataset(key, shape=(T, N), dtype="f4", chunks=(256, N))
            for s in range(0, T, 4096):
                ds[s : s + 4096] = block[: min(4096, T - s)]
            ds[t, n] = 1.0
        f.attrs["task"] = "benchmark"
    os.replace(tmp, path)


def measure(cmd: list[str], memory_limit: int | None = None) -> dict:
    """Wall time and peak RSS of a child process (from the kernel's rusage). ``memory_limit``
    caps its address space, so that a runaway baseline fails instead of exhausting the machine."""
    import resource

    def limit():
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.kill()
        raise
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": proc.returncode,
            "stderr": proc.stderr.read().decode()[-300:]}


FLOOR = """
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    for k in ("write_weightings", "read_weightings"):
        a = f[k][...]
        del a
"""

PLAIN = """
import sys, h5py, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
with h5py.File(sys.argv[1]) as f:
    data = {k: f[k][...] for k in ("inputs", "outputs", "write_weightings", "read_weightings")}
fig, axes = plt.subplots(2, 2)
for ax, (k, a) in zip(axes.flat, data.items()):
    ax.imshow(a.T, aspect="auto", origin="lower", interpolation="nearest", cmap="turbo")
    ax.set_title(k)
fig.tight_layout()
fig.savefig(sys.argv[2])
plt.close(fig)
"""


def spike_check(png: Path, path: Path) -> dict:
    """Where the pixels of the top colour are in each weighting panel, against where the spike is."""
    import io

    from PIL import Image

    from attnviz.io import open_traces
    from attnviz.plot import PlotOptions, Renderer, Source, build_scene
    from attnviz.plot.colors import lut

    opts = PlotOptions().validated()
    img = np.asarray(Image.open(io.BytesIO(png.read_bytes())).convert("RGB")).astype(int)
    with open_traces(path) as f:
        scene = build_scene(Source(f, "/", opts), opts)
    boxes = Renderer(opts).frame(scene).boxes
    out = {}
    for idx, key in ((2, "write_weightings"), (3, "read_weightings")):
        top, bottom, left, right = boxes[idx]
        panel = img[top:bottom, left:right]
        hot = np.abs(panel - lut("attnviz")[255, :3]).max(axis=-1) <= 3
        rows, cols = np.nonzero(hot)
        p = scene.panels[idx]
        (t0, t1), (y0, y1), N = p.time, p.rows, p.modulo
        t, n = SPIKES[key]
        y = n if n >= y0 else n + N  # the crop may be rolled past N
        want = (round((t - t0) / (t1 - t0) * (right - left), 1), round((y - y0 + 0.5) / (y1 - y0) * (bottom - top), 1))
        got = (float(cols.mean()), float((bottom - top) - rows.mean())) if rows.size else None
        block = hot[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] if rows.size else np.zeros((0, 0))
        out[key] = {"hot_pixels": int(rows.size), "block": list(block.shape), "solid": bool(block.all()),
                    "expected_x_y": want, "found_x_y": got, "rows_drawn": [y0, y1],
                    "visible_at_right_place": bool(got and abs(got[0] - want[0]) <= 2 and abs(got[1] - want[1]) <= 2
                                                   and min(block.shape) >= 3 and block.all())}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/attnviz-bench")
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--locations", type=int, default=2048)
    ap.add_argument("--skip-plain", action="store_true", help="skip the plain h5py + imshow script")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"big_{args.steps}x{args.locations}.h5"
    t0 = time.perf_counter()
    generate(path, args.steps, args.locations)
    print(f"data: {path} ({path.stat().st_size / 2**30:.2f} GiB, ready in {time.perf_counter() - t0:.0f} s)")
    exe = sys.executable
    attnviz = [exe, "-m", "attnviz"]
    measure([exe, "-c", FLOOR, str(path)])  # warm the page cache, as for every run after
    results = {
        "h5py read both weightings (floor)": measure([exe, "-c", FLOOR, str(path)]),
        "attnviz plot (PNG)": measure(attnviz + ["plot", str(path), "-o", str(d / "attnviz.png")]),
        "attnviz plot (SVG)": measure(attnviz + ["plot", str(path), "-o", str(d / "attnviz.svg")]),
        "attnviz plot (PDF)": measure(attnviz + ["plot", str(path), "-o", str(d / "attnviz.pdf")]),
        "attnviz plot (HTML)": measure(attnviz + ["plot", str(path), "-o", str(d / "attnviz.html")]),
        "attnviz validate": measure(attnviz + ["validate", str(path)]),
    }
    if not args.skip_plain:
        results["plain: h5py read whole + imshow"] = measure([exe, "-c", PLAIN, str(path), str(d / "plain.png")],
                                                             memory_limit=16 * 2**30)
    floor = results["h5py read both weightings (floor)"]["seconds"]
    print("\n| what | wall time (s) | x floor | peak RSS (MB) | exit |\n|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']} | {r['seconds'] / floor:.2f} | {r['peak_rss_mb']} | {r['exit']} |")
    print(f"interactive page: {(d / 'attnviz.html').stat().st_size / 2**20:.2f} MiB")
    spikes = spike_check(d / "attnviz.png", path)
    for key, s in spikes.items():
        print(f"{key}: spike {'visible at the right place' if s['visible_at_right_place'] else 'NOT found'} "
              f"(a {s['block'][0]} x {s['block'][1]} block{'' if s['solid'] else ' with gaps'} of the top colour, "
              f"{s['hot_pixels']} pixels, centred at x, y = {s['found_x_y']}, expected {s['expected_x_y']}; "
              f"rows drawn {s['rows_drawn']})")
    (d / "results.json").write_text(json.dumps({"steps": args.steps, "locations": args.locations,
                                                "results": results, "spikes": spikes}, indent=1))


if __name__ == "__main__":
    main()
