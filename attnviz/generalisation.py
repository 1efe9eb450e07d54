"""The Python API behind `attnviz generalise`: a trained model on sequences of sizes within and
beyond those it was trained on (copy's length, repeat-copy's length and repeat count,
associative-recall's number of items), as rows of numbers, a figure, and the trace of one sequence
at the largest size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .errors import AttnvizError, OptionError

FIGURE_FORMATS = ("png", "svg", "pdf")
SEQUENCES_PER_PASS = 500  # sequences run through the model at once (each holds its own memory)
EVAL_BYTES = 2**30  # what one size's sequences (inputs, targets, outputs) may hold in memory
DEFAULT_FIGURE = "generalise.png"  # in a run folder; beside a checkpoint file: NAME_generalise.png


def generalise(checkpoint, lengths=None, sequences: int = 100, repeats=None, output=None,
               figure: bool = True, memory_size: int | None = None) -> dict:
    """Run a trained model (a checkpoint .npz, or a run folder: its best.npz, else its
    checkpoint.npz) on ``sequences`` fresh sequences of each size and count its wrong bits.

    ``lengths``: the sizes, the task's own: copy's and repeat-copy's sequence length,
    associative-recall's number of items [default: the task's, from within its training range
    to beyond it: copy trained on lengths 1-20 gets 10, 20, 30, 50, 120]. ``repeats``: repeat-copy's
    repeat counts, each with every length [default: 5, 10, 15, 20 for counts 1-10 in training].
    ``memory_size`` runs the model with that many memory locations instead of those it was trained
    with (no parameter of either model depends on it). Each size has its own fixed probe seed: 1000 +
    the length (or the number of items), and for repeat-copy 1000 x the length + the repeat count, so
    that a rerun gives the same numbers.

    A sequence *fails outright* when it has more wrong bits than output steps (more than one wrong
    bit per step of output, on average). With ``figure``, draws wrong bits per sequence and the
    share failed outright against size, the training range shaded, into ``output`` (.png, .svg or
    .pdf) [default: generalise.png in a run folder, NAME_generalise.png beside a checkpoint file],
    and records one sequence of the largest size (the most steps) beside it, as
    ``STEM_len120.h5`` (``STEM_len20_repeats20.h5``, ``STEM_items18.h5``), for `attnviz plot`.

    Returns {"checkpoint", "task", "memory_size", "step", "sequences_per_size", "training_range", "rows",
    "figure", "trace", "trace_size"}: one row per size, its keys named with their units; "figure"
    and "trace" are the paths written and "trace_size" the trace's size (None without ``figure``).
    """
    from threadpoolctl import threadpool_limits

    from .trainer.checkpoint import CheckpointError, load_model
    from .trainer.record import recordable_steps

    source = _checkpoint_file(checkpoint)
    if isinstance(sequences, bool) or not isinstance(sequences, int | np.integer) or sequences < 1:
        raise OptionError(f"--sequences {sequences!r}: give 1 or more sequences per size")
    sequences = int(sequences)
    path = _figure_path(checkpoint, output) if figure else None
    try:
        model, task, meta = load_model(source)
    except CheckpointError as e:
        raise AttnvizError(str(e)) from None
    if memory_size is not None:
        if isinstance(memory_size, bool) or not isinstance(memory_size, int | np.integer) or memory_size < 1:
            raise OptionError(f"--memory-size {memory_size!r}: give 1 or more locations")
        if "memory0" in model.params and memory_size != model.cfg.memory_size:
            raise OptionError(f"--memory-size {memory_size}: {source} learned its initial memory, one row for each "
                              f"of its {model.cfg.memory_size} locations, so its memory cannot be resized")
        model.cfg = dataclasses.replace(model.cfg, memory_size=int(memory_size))
    cases = _cases(task, lengths, repeats)
    for case in cases:
        need = _steps(task, case) * sequences * (task.input_size + 2 * task.output_size + 1) * 4
        if need > EVAL_BYTES:
            raise OptionError(f"{_describe(case)}: {sequences:,} sequences of {_steps(task, case):,} steps take "
                              f"{need / 2**20:,.0f} MiB, more than {EVAL_BYTES // 2**20:,} MiB; give fewer "
                              "--sequences or smaller sizes")
    largest = max(cases, key=lambda c: _steps(task, c))
    if path is not None and _steps(task, largest) > recordable_steps(model):
        raise OptionError(f"{_describe(largest)}: {_steps(task, largest):,} steps, too long to record its trace "
                          f"(this model records at most {recordable_steps(model):,}); --no-figure "
                          "measures it without a figure or trace")
    with threadpool_limits(limits=1, user_api="blas"):  # as in training: small products, 4 times faster here
        rows = [_score(model, task, case, sequences) for case in cases]
    result = {"checkpoint": str(source), "task": task.name, "memory_size": model.cfg.memory_size,
              "step": int(meta.get("progress", {}).get("step", 0)),
              "sequences_per_size": sequences, "training_range": _training_range(task), "rows": rows,
              "figure": None, "trace": None, "trace_size": None}
    if path is not None:
        result["figure"], result["trace"] = _write(result, path, model, task, meta, checkpoint, largest)
        result["trace_size"] = largest
    return result


# ------------------------------------------------------------- sizes per task


def _kind(task) -> str:
    """'repeat-copy', 'associative-recall' and 'multi-copy' (its size: the copies in an episode) have their
    own sizes; any other task is sized as copy."""
    from .trainer.tasks import AssociativeRecall, MultiCopy, RepeatCopy

    kinds = {RepeatCopy: "repeat-copy", AssociativeRecall: "associative-recall", MultiCopy: "multi-copy"}
    return next((kind for cls, kind in kinds.items() if isinstance(task, cls)), "copy")


def _size_key(task) -> str:
    """What ``length`` counts in this task's make (and in `attnviz record --length`)."""
    return "items" if _kind(task) == "associative-recall" else "length"


def _training_range(task) -> dict[str, list[int]]:
    ranges = {_size_key(task): [task.min_length, task.max_length]}
    if _kind(task) == "repeat-copy":
        ranges["repeats"] = [task.min_repeats, task.max_repeats]
    return ranges


def _beyond(task, top: int, factors) -> list[int]:
    return sorted({max(_smallest(task), round(top * f)) for f in factors})


def _smallest(task) -> int:
    """The smallest size a task can make: associative-recall's query needs an item after it."""
    return 2 if _kind(task) == "associative-recall" else 1


def _cases(task, lengths, repeats) -> list[dict[str, int]]:
    kind, key = _kind(task), _size_key(task)
    if repeats is not None and kind != "repeat-copy":
        raise OptionError(f"--repeats applies to repeat-copy; this checkpoint's task is {task.name}")
    if lengths is None:
        lengths = _beyond(task, task.max_length, (1, 2) if kind == "repeat-copy" else
                          (0.5, 1, 1.5, 2, 3) if kind == "associative-recall" else (0.5, 1, 1.5, 2.5, 6))
    why = "associative-recall needs 2 items or more" if kind == "associative-recall" else "sizes are 1 or more"
    lengths = _sizes(lengths, "--lengths", _smallest(task), why)
    if kind != "repeat-copy":
        return [{key: n} for n in lengths]
    if repeats is None:
        repeats = _beyond(task, task.max_repeats, (0.5, 1, 1.5, 2))
    repeats = _sizes(repeats, "--repeats", 1, "sizes are 1 or more")
    return [{"length": n, "repeats": r} for n in lengths for r in repeats]


def _sizes(values, option: str, smallest: int, why: str) -> list[int]:
    values = [values] if isinstance(values, int | np.integer) else list(values)
    if not values:
        raise OptionError(f"{option}: give at least one size")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise OptionError(f"{option} {v!r}: sizes are whole numbers")
        if v < smallest:
            raise OptionError(f"{option} {v}: {why}")
    return sorted({int(v) for v in values})


def _steps(task, case) -> int:
    """A sequence's time steps, as the task's make lays it out (known before making any; multi-copy's
    copies draw their lengths: at most this many)."""
    kind = _kind(task)
    if kind == "repeat-copy":
        return case["length"] * (case["repeats"] + 1) + 2
    if kind == "associative-recall":
        S = task.item_steps
        return case["items"] * (S + 1) + 2 * S + 2
    if kind == "multi-copy":
        return case["length"] * (2 * task.max_item + 1)
    return 2 * case["length"] + 1


def _probe_seed(task, case) -> int:
    if _kind(task) == "repeat-copy":
        return 1000 * case["length"] + case["repeats"]
    return 1000 + case[_size_key(task)]


def _make(task, rng, n: int, case):
    if _kind(task) == "repeat-copy":
        return task.make(rng, n, case["length"], case["repeats"])
    return task.make(rng, n, case[_size_key(task)])


def _in_training(task, case) -> bool:
    return all(lo <= case[k] <= hi for k, (lo, hi) in _training_range(task).items())


def _describe(case) -> str:
    return ", ".join(f"{k} {v}" for k, v in case.items())


# ------------------------------------------------------------------- scoring


def _score(model, task, case, n: int) -> dict:
    """One row: ``n`` sequences of one size, from the size's probe seed, scored as the held-out
    evaluation scores (outputs thresholded at 0.5, scored steps only)."""
    from .trainer.loss import bce_loss, wrong_bits
    from .trainer.train import LN2

    seed = _probe_seed(task, case)
    b = _make(task, np.random.default_rng(seed), n, case)
    wrong = np.empty(n)
    end_right = np.empty(n, bool)
    bits = 0.0
    for start in range(0, n, SEQUENCES_PER_PASS):
        part = slice(start, start + SEQUENCES_PER_PASS)
        logits, _ = model.forward(b.x[:, part], cache=False)
        y, mask = b.y[:, part], b.mask[:, part]
        bits += bce_loss(logits, y, mask)[0] * logits.shape[1] / LN2
        wrong[part] = wrong_bits(logits, y, mask)
        if _kind(task) == "repeat-copy":  # the end marker on at its step, and never before it
            end = case["length"] * (case["repeats"] + 1) + 1
            marker = logits[:, :, task.width] > 0
            end_right[part] = marker[end] & ~(marker[:end] & (mask[:end] > 0)).any(axis=0)
    steps = int(b.mask[:, 0].sum())  # output steps scored, the same in every sequence of one size
    row = {**case, "in_training_range": _in_training(task, case), "probe_seed": seed, "sequences": n,
           "output_steps_per_sequence": steps, "scored_bits_per_sequence": steps * task.output_size,
           "wrong_bits_per_sequence": float(wrong.sum()) / n,
           "failed_outright_fraction": float((wrong > steps).mean()),
           "no_wrong_bit_fraction": float((wrong == 0).mean()),
           "cross_entropy_bits_per_sequence": bits / n}
    if _kind(task) == "repeat-copy":
        row["end_marker_right_fraction"] = float(end_right.mean())
    return row


# ------------------------------------------------------------------- outputs


def _checkpoint_file(checkpoint) -> Path:
    """The checkpoint file to read: a file as given, a run folder's best.npz or checkpoint.npz."""
    from .training import _checkpoint_path

    path = Path(checkpoint)
    source = _checkpoint_path(path)
    if path.is_dir() and not source.is_file():
        raise AttnvizError(f"{path}: not a run folder (no best.npz or checkpoint.npz in it); give a run folder "
                           "or a checkpoint .npz")
    return source


def default_figure(checkpoint) -> Path:
    """generalise.png in a run folder; beside a checkpoint file, NAME_generalise.png."""
    path = Path(checkpoint)
    return path / DEFAULT_FIGURE if path.is_dir() else path.with_name(f"{path.stem}_{DEFAULT_FIGURE}")


def _figure_path(checkpoint, output) -> Path:
    path = default_figure(checkpoint) if output is None else Path(output)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise OptionError(f"{path}: unknown figure format {path.suffix or '(no suffix)'!r}; name a .png, .svg "
                          "or .pdf file")
    if path.is_dir():
        raise OptionError(f"{path} is a folder; --output names the figure's file")
    return path


def trace_name(figure: Path, case) -> Path:
    """The trace beside the figure: STEM_len120.h5, STEM_len20_repeats20.h5, STEM_items18.h5."""
    parts = [f"len{v}" if k == "length" else f"{k}{v}" for k, v in case.items()]
    return figure.with_name(f"{figure.stem}_{'_'.join(parts)}.h5")


def _write(result, path: Path, model, task, meta, checkpoint, largest) -> tuple[str, str]:
    """Draw the figure and record the largest size's trace, then write both."""
    from .io import atomic_path, save
    from .plot.draw import default_style, figure_bytes
    from .training import record_trace

    with default_style():
        data = figure_bytes(draw_generalisation(result), path.suffix.lower().lstrip("."))
    size = dict(largest)
    length = size.pop("length", None) or size.pop("items")
    trace = record_trace(model, task, meta, checkpoint, length, _probe_seed(task, largest), **size)
    trace_path = trace_name(path, largest)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(trace, trace_path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return str(path), str(trace_path)


COLOURS = ("#df3a6a", "#2447c0", "#2a9d5c", "#e08a1e", "#7a4fc4", "#3d3d3d")
UNIT_NAMES = {"length": "sequence length", "items": "items", "repeats": "repeats"}


def draw_generalisation(result: dict, fontsize: float = 10, dpi: float = 100):
    """Wrong bits per sequence (left) and the share of sequences failed outright (right) against
    size, the training range shaded; repeat-copy against the repeat count, one line per length.
    Returns a matplotlib Figure, 10 x 4 inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    rows, trained = result["rows"], result["training_range"]
    x_key = "repeats" if "repeats" in trained else next(iter(trained))
    groups: dict[int | None, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["length"] if x_key == "repeats" else None, []).append(row)
    fig = Figure(figsize=(10, 4), dpi=dpi)
    FigureCanvasAgg(fig)
    wrong_ax, failed_ax = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.76, wspace=0.2)
    lo, hi = trained[x_key]
    shade = f"trained: lengths {lo}-{hi}" if x_key == "length" else f"trained: {lo}-{hi} {x_key}"
    if x_key == "repeats":
        shade += f" (lengths {trained['length'][0]}-{trained['length'][1]})"
    xs = sorted({row[x_key] for row in rows})
    for ax in (wrong_ax, failed_ax):
        ax.axvspan(lo, hi, color="0.9", lw=0, zorder=0, label=shade)
    for i, (length, group) in enumerate(groups.items()):
        colour = COLOURS[i % len(COLOURS)]
        beyond = length is not None and not trained["length"][0] <= length <= trained["length"][1]
        label = None if length is None else f"length {length}" + (" (beyond training)" if beyond else "")
        style = {"color": colour, "marker": "o", "ms": 4, "lw": 1.5, "ls": "--" if beyond else "-"}
        x = [row[x_key] for row in group]
        wrong_ax.plot(x, [row["wrong_bits_per_sequence"] for row in group], label=label, **style)
        failed_ax.plot(x, [100 * row["failed_outright_fraction"] for row in group], label=label, **style)
    wrong_ax.set_yscale("symlog", linthresh=0.1, linscale=0.5)
    top = max(row["wrong_bits_per_sequence"] for row in rows)
    wrong_ax.set_ylim(0, max(10.0, top * 2))  # a few wrong bits stay near the floor, where they belong
    failed_ax.set_ylim(-3, 103)
    titles = (("Wrong bits", "wrong bits per sequence"),
              ("Failed outright (more wrong bits than output steps)", "% of sequences"))
    for ax, (title, ylabel) in zip((wrong_ax, failed_ax), titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlim(xs[0] / 1.25, xs[-1] * 1.25)
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize=fontsize)
        ax.set_xlabel(UNIT_NAMES[x_key], fontsize=fontsize)
        ax.set_ylabel(ylabel, fontsize=fontsize)
        ax.tick_params(labelsize=fontsize * 0.8)
        ax.grid(True, which="major", color="0.9", lw=0.6)
    handles, labels = wrong_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.91), ncols=len(labels),
               fontsize=fontsize * 0.8, frameon=False)
    step = f" (step {result['step']:,})" if result["step"] else ""
    per = {"repeats": "length and repeat count", "items": "number of items"}.get(x_key, "length")
    fig.suptitle(f"{result['task']}: {result['checkpoint']}{step}, {result['sequences_per_size']:,} sequences at "
                 f"each {per}", fontsize=fontsize * 1.1)
    return fig
