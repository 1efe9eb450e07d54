"""Runs compared in one figure: held-out wrong bits of every run against sequences seen and against
training time, each group's median and interquartile band; below, every run's last snapshot (its
write and read weightings) as small multiples on one colour scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..compare import THRESHOLDS
from .colors import SEQUENTIAL

GROUP_COLOURS = ["#2447c0", "#d1495b", "#2a9d5c", "#8e44ad", "#e08a00", "#17a2b8", "#6c757d", "#8c564b"]
PER_ROW = 5  # runs per row of snapshots
USED = 0.05  # a location any head gives more weight than this is in use


def last_snapshot(run_dir: Path, max_bytes=None, allow_external: bool = False):
    """(name, write weighting, read weighting) of head 0 in a run's last training snapshot, or None."""
    from ..io import open_traces
    from .run import TRACES_FILE

    path = Path(run_dir) / TRACES_FILE
    if not path.is_file() or path.is_symlink():
        return None
    with open_traces(path, max_bytes, allow_external) as f:
        steps = [n for n in f.names if n.startswith("step_")]
        if not steps:
            return None
        name = max(steps)
        w, r = f.read(name, "write_weightings"), f.read(name, "read_weightings")
    return name, _head0(w), _head0(r)


def _head0(a: np.ndarray) -> np.ndarray:
    return (a[:, 0, :] if a.ndim == 3 else a).astype(np.float64)


def _crop(write: np.ndarray, read: np.ndarray) -> np.ndarray:
    """The locations to show of a snapshot: the plot's own crop (the used band, else the whole
    memory, rolled so that the walk stays in one piece)."""
    from .plan import memory_rows

    both = np.concatenate([write, read])
    y0, y1 = memory_rows(both.max(axis=0), both.sum(axis=0), "auto")
    return np.arange(y0, y1) % write.shape[1]


def _step_curve(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """y at each grid point: the last evaluation at or before it (NaN before the first); a run
    that stopped keeps its last value."""
    i = np.searchsorted(x, grid, side="right") - 1
    return np.where(i >= 0, y[np.clip(i, 0, None)], np.nan)


TITLE_IN, CURVES_IN, BELOW_CURVES_IN, CAPTION_IN, ROW_IN = 0.55, 3.1, 0.75, 0.3, 1.75  # heights, inches


def log_floor(judge: str, curves: list[dict], below: float) -> float | None:
    """The foot of a log axis for the curves, or None for a symlog one. A cost in bits per sequence
    (judge "bits": priority sort, chance about 128, judged below 20) stays well above 0, so its axis is
    logarithmic, from a little below the threshold or the lowest finite positive value, whichever is
    lower; wrong bits and bits above the optimal predictor reach 0, so theirs is linear below the
    threshold and logarithmic above (symlog), with 0 at its foot."""
    if judge != "bits":
        return None
    lowest = [float(v[ok].min()) for v in (np.asarray(c["values"], np.float64) for c in curves)
              if (ok := np.isfinite(v) & (v > 0)).any()]
    return min([below, *lowest]) / 1.5


def draw_compare(result: dict, snapshots: dict | None = None, fontsize: float = 10, dpi: float = 100):
    """The figure of attnviz.compare_runs' ``result``; ``snapshots``: run -> last_snapshot() (None
    leaves the snapshot rows out). Returns a matplotlib Figure, 12 inches wide."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    from .draw import draw_panel

    curves = result["curves"]
    runs = [r for r in result["runs"] if r["state"] not in ("empty", "damaged")]
    judge, below = result.get("judge", "wrong_bits"), result.get("thresholds", THRESHOLDS)[-1]
    floor = log_floor(judge, curves, below)
    ylabel = {"excess_bits": "held-out bits per sequence above optimal",
              "bits": "held-out cross-entropy, bits per sequence"}.get(judge, "held-out wrong bits per sequence")
    n_rows = -(-len(runs) // PER_ROW) if snapshots is not None and runs else 0
    H = TITLE_IN + CURVES_IN + BELOW_CURVES_IN + (CAPTION_IN + ROW_IN * n_rows if n_rows else 0)
    fig = Figure(figsize=(12, H), dpi=dpi)
    FigureCanvasAgg(fig)

    def rect(left, top_in, width, height_in):  # fractions across, inches down from the top
        return (left, 1 - (top_in + height_in) / H, width, height_in / H)

    seq_ax = fig.add_axes(rect(0.065, TITLE_IN, 0.41, CURVES_IN))
    sec_ax = fig.add_axes(rect(0.565, TITLE_IN, 0.41, CURVES_IN))
    groups = list(dict.fromkeys(c["group"] for c in curves))
    colour = {g: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, g in enumerate(groups)}
    for ax, key, xlabel in ((seq_ax, "sequences", "sequences seen"), (sec_ax, "seconds", "training time (s)")):
        for c in curves:
            ax.plot(c[key], c["values"], color=colour[c["group"]], lw=0.7, alpha=0.4)
        for g in groups:
            members = [c for c in curves if c["group"] == g and len(c[key])]
            n = sum(1 for r in runs if r["group"] == g)
            k = sum(1 for r in runs if r["group"] == g and r["converged"])
            label = f"{g}: {k} of {n} converged"
            if len(members) < 2:
                ax.plot([], [], color=colour[g], lw=2.0, label=label)
                continue
            end = max(float(c[key][-1]) for c in members)
            grid = (np.unique(np.concatenate([c[key] for c in members])) if key == "sequences"
                    else np.linspace(0, end, 400))
            ys = np.array([_step_curve(np.asarray(c[key]), np.asarray(c["values"]), grid) for c in members])
            enough = np.isfinite(ys).sum(axis=0) * 2 >= len(members)  # where half the runs have a value
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # columns with no value: NaN, not drawn
                q1, med, q3 = np.nanpercentile(np.where(enough, ys, np.nan), [25, 50, 75], axis=0)
            ax.fill_between(grid, q1, q3, color=colour[g], alpha=0.18, lw=0, step="post")
            ax.step(grid, med, where="post", color=colour[g], lw=2.0, label=label + " (median, quartiles)")
        ax.axhline(below, color="0.25", ls="--", lw=1, label=f"converged below {below:g}")
        if judge == "excess_bits":  # 0 is the optimal predictor's cost: the baseline
            ax.axhline(0, color="0.25", lw=1, label="the optimal predictor")
        if floor:  # a cost that stays well above 0: log
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(bottom=floor)
        else:  # wrong bits and bits above optimal reach 0: linear below the threshold, log above
            ax.set_yscale("symlog", linthresh=below, linscale=0.5)
            ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.set_xlabel(xlabel, fontsize=fontsize)
        ax.set_ylabel(ylabel, fontsize=fontsize)
        ax.tick_params(labelsize=fontsize * 0.8)
        ax.grid(True, which="major", color="0.9", lw=0.6)
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    seq_ax.set_title("Against sequences seen", fontsize=fontsize)
    sec_ax.set_title("Against training time", fontsize=fontsize)
    sec_ax.legend(fontsize=fontsize * 0.75, frameon=True, framealpha=0.9, edgecolor="none", loc="upper right")
    converged = sum(r["converged"] for r in runs)
    fig.text(0.5, 1 - 0.2 / H, f"{result['task']}: {len(runs)} run(s), {converged} converged", ha="center",
             va="center", fontsize=fontsize * 1.2)
    if n_rows:
        top = TITLE_IN + CURVES_IN + BELOW_CURVES_IN
        fig.text(0.05, 1 - (top + 0.12) / H, "Last snapshot of each run: write and read weightings of head 0 "
                 "(Time across, Location up, cropped to the locations in use)", fontsize=fontsize * 0.8, va="center")
        _snapshot_rows(fig, runs, snapshots, colour, top + CAPTION_IN, rect, fontsize, draw_panel)
    return fig


def _snapshot_rows(fig, runs, snapshots, colour, top, rect, fontsize, draw_panel) -> None:
    """Each run's last write and read weightings, side by side, PER_ROW runs a row, on [0, 1]."""
    cell = 0.88 / PER_ROW
    names = display_names([r["run"] for r in runs])
    image = None
    for i, r in enumerate(runs):
        x0, y_in = 0.05 + (i % PER_ROW) * cell, top + (i // PER_ROW) * ROW_IN + 0.25
        snap = snapshots.get(r["run"])
        mark = "converged" if r["converged"] else r["state"]
        axes = [fig.add_axes(rect(x0 + j * cell * 0.47, y_in, cell * 0.42, ROW_IN - 0.55)) for j in range(2)]
        for ax, what in zip(axes, ("write", "read"), strict=True):
            if snap is not None:
                name, w, rd = snap
                image, _ = draw_panel(ax, (w if what == "write" else rd)[:, _crop(w, rd)], cmap=SEQUENTIAL,
                                      vmin=0, vmax=1, xlabel="", ylabel="")
            else:
                ax.set_facecolor("0.93")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(what, fontsize=fontsize * 0.7, labelpad=1)
        axes[0].set_title(f"{names[i]}: {mark}" + ("" if snap else " (no snapshot)"), fontsize=fontsize * 0.75,
                          loc="left", color=colour.get(r["group"], "0.2"), pad=3)
    if image is not None:
        rows = -(-len(runs) // PER_ROW)
        cax = fig.add_axes(rect(0.945, top + 0.25, 0.008, rows * ROW_IN - 0.55))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label("weight", fontsize=fontsize * 0.75)
        bar.ax.tick_params(labelsize=fontsize * 0.7)


def display_names(runs: list[str]) -> list[str]:
    """Run folders named as briefly as tells them apart: seed0, or sweep-a/seed0 beside sweep-b/seed0."""
    parts = [Path(r).parts for r in runs]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(runs)


def write_compare(result: dict, output, formats=None, max_bytes=None, allow_external: bool = False,
                  fontsize: float = 10, dpi: float = 100) -> list[Path]:
    """Draw the comparison to ``output`` (PNG, SVG or PDF by suffix, or each of ``formats``; HTML: the
    report page, with each run's own page beside it). Returns the paths written."""
    from .draw import default_style, figure_bytes
    from .export import output_paths, write_outputs

    snapshots = {r["run"]: last_snapshot(Path(r["run"]), max_bytes, allow_external) for r in result["runs"]
                 if r["state"] not in ("empty", "damaged")}
    written = []
    for path, fmt in output_paths(output, formats):
        if fmt == "html":
            from .report import write_report

            written += write_report(result, path, snapshots, max_bytes, allow_external)
            formats = [f for f in (formats or []) if f != "html"]
            if not formats:
                return written
            output = path

    def make(fmt):
        with default_style():
            return figure_bytes(draw_compare(result, snapshots, fontsize, dpi), fmt)

    return written + write_outputs(output, formats, make)
