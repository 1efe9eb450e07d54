"""A training run's folder as figures: learning curves, the weightings evolving, the last snapshot."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import AttnvizError, OptionError
from .options import PlotOptions

METRICS_FILE, TRACES_FILE, DIVERGED_FILE = "metrics.csv", "traces.h5", "diverged.h5"
CONVERGED_BELOW = 0.1  # the trainer's default threshold, held-out wrong bits per sequence
# Run folders written before metrics.csv named its units: old name -> (name, factor)
OLD_COLUMNS = {"loss": ("train_bits_per_seq", 1 / math.log(2)), "bits_per_sequence": ("heldout_bits_per_seq", 1.0),
               "wrong_bits": ("heldout_wrong_bits_per_seq", 1.0)}


def is_run_dir(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / METRICS_FILE).is_file()


def read_metrics(path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats (an older run folder's columns renamed, loss in bits)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise AttnvizError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not rows or "step" not in rows[0]:
        raise AttnvizError(f"{path}: not a metrics file (no header with 'step')")
    header = rows[0]
    try:
        values = np.array([[float(v) for v in r] for r in rows[1:] if r], np.float64).reshape(-1, len(header))
    except ValueError as e:
        raise AttnvizError(f"{path}: a row is not numbers of {len(header)} columns ({e})") from None
    out = {}
    for i, name in enumerate(header):
        new, factor = OLD_COLUMNS.get(name, (name, 1.0))
        out[new] = values[:, i] * factor
    return out


def draw_learning_curves(metrics: dict[str, np.ndarray], threshold: float = CONVERGED_BELOW, fontsize: float = 10,
                         dpi: float = 100, judge: str = "wrong_bits"):
    """Held-out wrong bits and cross-entropy (bits per sequence) against sequences seen, with the
    convergence threshold on the curve the run is judged by (``judge``, Task.judge: wrong bits; the
    cross-entropy; or its distance from the optimal predictor's, whose cost is drawn too), rate changes
    and rollbacks marked. Returns a matplotlib Figure, 10 x 3.8 inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), dpi=dpi)
    FigureCanvasAgg(fig)
    wrong_ax, bits_ax = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.86, wspace=0.22)
    x = metrics.get("sequences", metrics["step"])
    wrong = metrics.get("heldout_wrong_bits_per_seq")
    if wrong is not None and len(x):
        wrong_ax.plot(x, wrong, color="#df3a6a", lw=1.5, label="held-out")
        if judge == "wrong_bits":
            wrong_ax.axhline(threshold, color="0.3", ls="--", lw=1, label=f"converged below {threshold:g}")
        wrong_ax.set_yscale("symlog", linthresh=threshold if judge == "wrong_bits" else 0.1, linscale=0.5)
        wrong_ax.set_ylim(bottom=0)
    for name, label, style in (("train_bits_per_seq", "last training batch", {"color": "0.6", "lw": 0.8}),
                               ("heldout_bits_per_seq", "held-out", {"color": "#2447c0", "lw": 1.5})):
        if name in metrics and len(x):
            bits_ax.plot(x, np.maximum(metrics[name], 1e-3), label=label, **style)
    optimal = metrics.get("heldout_optimal_bits_per_seq")
    if optimal is not None and len(x):
        bits_ax.plot(x, optimal, color="0.2", lw=1, label="the optimal predictor, held-out")
        if judge == "excess_bits":
            bits_ax.plot(x, optimal + threshold, color="0.3", ls="--", lw=1,
                         label=f"converged within {threshold:g} of it")
    elif judge == "bits" and len(x):
        bits_ax.axhline(threshold, color="0.3", ls="--", lw=1, label=f"converged below {threshold:g}")
    bits_ax.set_yscale("log")
    for ax, title, ylabel in ((wrong_ax, "Wrong bits", "wrong bits per sequence"),
                              (bits_ax, "Cross-entropy", "bits per sequence")):
        ax.set_title(title, fontsize=fontsize)
        ax.set_xlabel("sequences seen", fontsize=fontsize)
        ax.set_ylabel(ylabel, fontsize=fontsize)
        ax.tick_params(labelsize=fontsize * 0.8)
        ax.grid(True, which="major", color="0.9", lw=0.6)
    for at, what, colour in _events(metrics):
        for ax in (wrong_ax, bits_ax):
            ax.axvline(at, color=colour, lw=0.8, ls=":", label=what)
    for ax in (wrong_ax, bits_ax):
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        if unique:
            ax.legend(unique.values(), unique.keys(), fontsize=fontsize * 0.75, frameon=False)
    return fig


def _judging(run_dir: Path) -> dict:
    """How the run's task judges it (compare.judging), from its config.json; a copy's when it cannot be read."""
    from ..compare import judging, run_config

    try:
        task = run_config(run_dir)["task"]  # never through a link: a run folder reads only what is its own
    except (OSError, ValueError, AttnvizError):
        task = None
    return judging(task if isinstance(task, str) else None)


def _events(metrics) -> list[tuple[float, str, str]]:
    """(sequences, label, colour) where the rate changed or the collapse guard rolled back."""
    x = metrics.get("sequences", metrics["step"])
    events = []
    if "rollbacks" in metrics and len(x) > 1:
        for i in np.flatnonzero(np.diff(metrics["rollbacks"]) > 0) + 1:
            events.append((float(x[i]), "rollback to the best state", "#d62728"))
    if "lr" in metrics and len(x) > 1:
        rolled = {e[0] for e in events}
        for i in np.flatnonzero(np.diff(metrics["lr"]) != 0) + 1:
            if float(x[i]) not in rolled:
                events.append((float(x[i]), "learning rate changed", "0.45"))
    return events


def plot_run(run_dir, out_dir=None, options: PlotOptions | None = None, fps: float = 4.0,
             max_bytes: int | None = None, html: bool = False, allow_external: bool = False,
             on_write: Callable[[Path], None] | None = None) -> list[Path]:
    """Draw a training run's folder into ``out_dir`` (default RUN_DIR/figures): learning_curves.png,
    evolution.gif (one frame per snapshot, on one shared view), last_snapshot.png, and diverged.png
    when the run diverged (its diverged.h5: the sequence it stopped on); with ``html``
    also run.html, the interactive page (its curve, and a slider over the snapshots). Returns the
    paths written, and hands each to ``on_write`` as soon as it is written (so that files written
    before an error are known); a run with no snapshot yet gets its curves only. Its metrics.csv
    and traces.h5 are refused if they are symbolic links, and its traces if they lead to other
    files, unless ``allow_external``."""
    from ..io import atomic_path, folder_link_error, open_traces
    from .animate import animate, snapshots
    from .draw import default_style, figure_bytes
    from .export import export

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise AttnvizError(f"{run_dir}: not a run folder (no {METRICS_FILE})")
    if options is not None and options.layout == "addressing":
        raise OptionError(f"{run_dir}: a run folder is drawn in the grid or paper layout; for one head's addressing, "
                          f"draw a snapshot of {run_dir / TRACES_FILE} (--trace NAME --layout addressing)")
    if options is not None and (options.layout == "dnc" or options.order != "index"):
        what = "--layout dnc" if options.layout == "dnc" else f"--order {options.order}"
        raise OptionError(f"{run_dir}: a run folder is drawn in the grid or paper layout, its locations by number; for "
                          f"{what}, draw a snapshot of {run_dir / TRACES_FILE} (--trace NAME {what})")
    for name in (METRICS_FILE, TRACES_FILE):
        if (run_dir / name).is_symlink() and not allow_external:
            raise folder_link_error(run_dir / name)
    out = Path(out_dir) if out_dir is not None else run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    opts = (options or PlotOptions()).validated()
    written = []

    def wrote(paths: list[Path]) -> None:
        for path in paths:
            written.append(path)
            if on_write is not None:
                on_write(path)

    metrics = read_metrics(run_dir / METRICS_FILE)
    judged = _judging(run_dir)
    with default_style():
        data = figure_bytes(draw_learning_curves(metrics, judged["thresholds"][-1], opts.fontsize, opts.dpi,
                                                 judged["judge"]), "png", opts.transparent)
    with atomic_path(out / "learning_curves.png") as tmp:
        tmp.write_bytes(data)
    wrote([out / "learning_curves.png"])
    traces = run_dir / TRACES_FILE
    items = snapshots([traces], max_bytes, allow_external) if traces.is_file() else []
    if items:
        wrote([animate([traces], out / "evolution.gif", opts, fps=fps, max_bytes=max_bytes,
                       allow_external=allow_external)])
        with open_traces(traces, max_bytes, allow_external) as f:
            wrote(export(f.load(items[-1].name), out / "last_snapshot.png", opts))
    diverged = run_dir / DIVERGED_FILE
    if diverged.is_file() and (allow_external or not diverged.is_symlink()):  # the sequence a diverged run stopped on
        with open_traces(diverged, max_bytes, allow_external) as f:
            wrote(export(f.load(), out / "diverged.png", opts))
    if html:
        wrote([run_page(run_dir, out / "run.html", metrics, items, opts, fps, max_bytes, allow_external)])
    return written


def run_page(run_dir: Path, path: Path, metrics, items, opts: PlotOptions, fps: float, max_bytes,
             allow_external: bool = False) -> Path:
    """The run's interactive page: the held-out curve with a marker at the snapshot shown."""
    from ..io import atomic_path
    from .animate import shared_scenes
    from .html import page

    scenes = list(shared_scenes(items, opts, max_bytes, allow_external))
    x = metrics.get("sequences", metrics["step"])
    curves = {"sequences": x.tolist(), "wrong": metrics.get("heldout_wrong_bits_per_seq", np.zeros_like(x)).tolist(),
              "threshold": CONVERGED_BELOW}
    text = page(scenes, [i.name for i in items], curves=curves, fps=fps, title=f"attnviz: {run_dir.name}")
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
