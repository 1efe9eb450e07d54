"""Training runs side by side: per run, when it converged and how well; per group of runs with one
configuration, how many converged and how fast (median and interquartile range). Reads run folders'
config.json, metrics.csv and status.json only (numpy; the figure is attnviz.plot.compare's)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np

from .errors import AttnvizError

THRESHOLDS = (1.0, 0.1)  # held-out wrong bits per sequence (a task's own: Task.thresholds)
PATIENCE = 10  # evaluations in a row below a threshold
# Configuration fields that do not make runs differ (how long, where from, how fast they ran)
NOT_A_DIFFERENCE = {"seed", "max_steps", "max_seconds", "processes", "checkpoint_every", "checkpoint_seconds",
                    "trace_every"}
CONFIG_MAX_BYTES = 2**20
SHOWN = 3  # differences named in a group's label

# What a run is judged by (Task.judge): its words, and the name of its column in a run's row
JUDGED = {"wrong_bits": ("held-out wrong bits per sequence", "heldout_wrong_bits_per_seq"),
          "excess_bits": ("held-out cross-entropy above the optimal predictor's, bits per sequence",
                          "heldout_bits_above_optimal_per_seq"),
          "bits": ("held-out cross-entropy, bits per sequence", "heldout_bits_per_seq")}


def columns(judge: str = "wrong_bits", thresholds=THRESHOLDS) -> list[str]:
    """The columns of a run's row, with their units (--csv's header, --json's keys), for runs judged by
    ``judge`` with ``thresholds`` (looser, then the convergence threshold)."""
    key = JUDGED[judge][1]
    return (["run", "group", "task", "seed", "state", "converged"]
            + [f"{what}_to_below_{t:g}" for t in thresholds for what in ("sequences", "seconds")]
            + [f"best_{key}", f"last_{key}", "rollbacks", "training_seconds", "sequences", "evaluations", "problem"])


COLUMNS = columns()  # for the tasks judged by wrong bits


def judging(task: str | None) -> dict:
    """How runs of ``task`` are judged: {"judge", "label", "thresholds"} (Task.judge and Task.thresholds)."""
    from .trainer.tasks import TASKS

    cls = TASKS.get(task)
    judge, thresholds = (cls.judge, cls.thresholds) if cls else ("wrong_bits", THRESHOLDS)
    return {"judge": judge, "label": JUDGED[judge][0], "thresholds": list(thresholds)}


def judged_values(metrics: dict, judge: str) -> np.ndarray:
    """A run's held-out score at each evaluation, as ``judge`` says (metrics: the columns of metrics.csv)."""
    if judge == "excess_bits":
        return np.asarray(metrics["heldout_bits_per_seq"]) - np.asarray(metrics["heldout_optimal_bits_per_seq"])
    return np.asarray(metrics["heldout_bits_per_seq" if judge == "bits" else "heldout_wrong_bits_per_seq"])


def find_runs(paths) -> list[Path]:
    """Run folders named, or inside the folders named (a sweep: one level down), in order; a
    folder that is neither stands for itself (listed as empty or damaged)."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise AttnvizError(f"{p}: not a run folder or a folder of runs" if p.exists() else f"{p}: no such folder")
        if _looks_like_run(p):
            runs.append(p)
            continue
        inside = sorted((c for c in p.iterdir() if c.is_dir() and not c.is_symlink() and _looks_like_run(c)),
                        key=_natural)
        runs += inside or [p]
    return list(dict.fromkeys(runs))


def _looks_like_run(p: Path) -> bool:
    return any((p / name).exists() for name in ("config.json", "metrics.csv", "checkpoint.npz"))


def _natural(p: Path):
    """seed2 before seed10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def read_run(path: Path) -> dict:
    """One run folder: its configuration, evaluations (columns of metrics.csv) and state; a
    folder that cannot be read has "problem" set."""
    from .plot.run import read_metrics
    from .training import run_state

    run = {"path": path, "config": {}, "metrics": {}, "state": "empty", "problem": None}
    if not _looks_like_run(path):
        run["problem"] = "no config.json, metrics.csv or checkpoint"
        return run
    try:
        if (path / "metrics.csv").is_symlink():
            raise AttnvizError("its config.json or metrics.csv is a symbolic link")
        run["config"] = run_config(path)
        if not (path / "metrics.csv").is_file():
            raise AttnvizError("no metrics.csv")
        run["metrics"] = read_metrics(path / "metrics.csv")
        if "heldout_wrong_bits_per_seq" not in run["metrics"]:
            raise AttnvizError("metrics.csv has no heldout_wrong_bits_per_seq column")
    except FileNotFoundError as e:
        run["state"], run["problem"] = "damaged", f"no {Path(e.filename).name}"
        return run
    except (OSError, ValueError, AttnvizError) as e:
        text = str(e)
        run["state"], run["problem"] = "damaged", text.split(": ", 1)[1] if text.startswith(str(path)) else text
        return run
    run["model"] = recorded_model(path)
    state = run_state(path)
    run["state"] = {"new": "empty"}.get(state["state"], state["state"])
    if state["reason"] == "diverged":  # stopped by a loss or gradient that was not finite
        run["state"] = "diverged"
    run["reason"] = state["reason"]
    return run


def recorded_model(path: Path) -> dict | None:
    """The whole model config a run trained with, from its checkpoint's metadata (as a resumed run reads
    it: ``recorded_config``); None without a readable checkpoint. config.json's ``model`` holds only the
    options given or, since a task could set some, the task's too: a run from before that recorded none
    of the task's, though it used them."""
    from .trainer.checkpoint import CheckpointError, load_checkpoint

    try:
        model = load_checkpoint(path / "checkpoint.npz", arrays=False)[1].get("model")
    except CheckpointError:
        return None
    return model if isinstance(model, dict) else None


def run_config(path: Path) -> dict:
    """A run folder's config.json, as a dict with a task; AttnvizError (its message without the folder)
    when it is a link, too large, or not a run's configuration. OSError when it cannot be read."""
    cfg_path = path / "config.json"
    if cfg_path.is_symlink():
        raise AttnvizError("its config.json or metrics.csv is a symbolic link")
    if cfg_path.stat().st_size > CONFIG_MAX_BYTES:
        raise AttnvizError("config.json is larger than a configuration")
    config = json.loads(cfg_path.read_text())
    if not isinstance(config, dict) or "task" not in config:
        raise AttnvizError("config.json is not a run's configuration")
    return config


def crossing(sequences, seconds, wrong, threshold: float, patience: int = PATIENCE):
    """(sequences, seconds) at the first of ``patience`` evaluations in a row below ``threshold``,
    or (None, None)."""
    streak = 0
    for i, w in enumerate(wrong):
        streak = streak + 1 if w < threshold else 0
        if streak == patience:
            j = i - patience + 1
            return int(sequences[j]), float(seconds[j])
    return None, None


def compare_runs(paths, output=None, formats=None) -> dict:
    """Compare training runs: run folders, or folders of them (a sweep).

    Returns {"task", "runs": [row per run, COLUMNS as keys], "groups": [...]}. Runs whose
    configurations differ (seeds and limits aside) form groups named by what differs
    ("lr=0.001"); each group says how many of its runs converged (10 held-out evaluations in a row
    below 0.1 wrong bits per sequence) and the median and interquartile range of sequences and
    seconds to that. Runs of different tasks are refused; a folder that is empty or damaged is
    listed as such (its "problem" says why) and the rest compared. The rows carry no arrays; each
    run's curves are in ``curves`` (sequences, seconds, wrong bits) for the figure. With ``output``
    it also draws them (attnviz.plot.compare.write_compare: PNG, SVG, PDF or the HTML report, by
    suffix or ``formats``) and lists the files in ``written``.
    """
    runs = [read_run(p) for p in find_runs(paths)]
    tasks = {r["config"]["task"]: r["path"] for r in runs if r["config"]}
    if len(tasks) > 1:
        (a, pa), (b, pb) = list(tasks.items())[:2]
        raise AttnvizError(f"runs of different tasks cannot be compared: {pa} is {a}, {pb} is {b}")
    judged = judging(next(iter(tasks), None))
    for r in runs:
        if r["problem"] is None and judged["judge"] == "excess_bits" and "heldout_optimal_bits_per_seq" not in r[
                "metrics"]:
            r["state"], r["problem"] = "damaged", "metrics.csv has no heldout_optimal_bits_per_seq column"
    readable = [r for r in runs if r["problem"] is None]  # a damaged folder's configuration makes no group
    configs = [{**r["config"], "model": r["model"]} if r.get("model") else r["config"] for r in readable]
    labels = dict(zip(map(id, readable), group_labels(configs), strict=True))
    rows, curves = [], []
    for r in runs:
        label = labels.get(id(r))
        rows.append(_row(r, label, judged))
        m = r["metrics"]
        if m and r["problem"] is None:
            curves.append({"run": str(r["path"]), "group": label, "steps": m["step"], "sequences": m["sequences"],
                           "seconds": m["seconds"], "values": judged_values(m, judged["judge"])})
    groups = [_group(label, [row for row in rows if row["group"] == label], judged["thresholds"][-1])
              for label in dict.fromkeys(labels.values())]
    result = {"task": next(iter(tasks), None), **judged, "columns": columns(judged["judge"], judged["thresholds"]),
              "runs": rows, "groups": groups, "curves": curves}
    if output is not None:
        from .plot.compare import write_compare

        result["written"] = [str(p) for p in write_compare(result, output, formats)]
    return result


def group_labels(configs: list[dict]) -> list[str]:
    """Per configuration, what differs from the others ("lr=0.001, batch_size=16"); the task's name
    when nothing does."""
    flat = [_flatten(_resolved(c)) for c in configs]
    keys = sorted({k for f in flat for k in f} - NOT_A_DIFFERENCE)
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    if not differ:
        return [str(c.get("task", "")) for c in configs]
    shown = differ[:SHOWN] if len(differ) > SHOWN + 1 else differ
    more = ", ..." if len(shown) < len(differ) else ""
    return [", ".join(f"{k}={_plain(f.get(k))}" for k in shown) + more for f in flat]


def _resolved(config: dict) -> dict:
    """A run's configuration with the fields it leaves out set as the trainer sets them (a run
    folder written before a field existed); as it is when it is not a TrainConfig's. The model options
    are the ones recorded (``recorded_model``'s whole config where the run has a checkpoint), every
    other model field at the model's own default, as ``recorded_config`` reads a checkpoint: a run from
    before a task set a model option ran without it, so an N-gram run from before its read gate is not
    grouped with the runs that have it."""
    from dataclasses import MISSING, fields

    from .trainer.config import TrainConfig
    from .trainer.models import model_classes

    try:
        resolved = TrainConfig.from_dict(config).to_dict()
        model_fields = fields(model_classes(resolved["architecture"])[0])
        defaults = {f.name: f.default for f in model_fields if f.default is not MISSING}
        task_sizes = {f.name for f in model_fields if f.default is MISSING}  # input_size, output_size
        resolved["model"] = {**defaults, **{k: v for k, v in dict(config.get("model") or {}).items()
                                            if k not in task_sizes}}
        return resolved
    except (TypeError, ValueError, KeyError):
        return config


def _flatten(config: dict) -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _plain(v) -> str:
    """A configuration value in a group's name: 0.001, adam, {"shift_bias": "forward"}; - when unset."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v) if isinstance(v, str | int) else json.dumps(v)


def _row(r: dict, group: str | None, judged: dict) -> dict:
    cfg, m = r["config"], r["metrics"]
    row = dict.fromkeys(columns(judged["judge"], judged["thresholds"]))
    row.update(run=str(r["path"]), group=group, task=cfg.get("task"), seed=cfg.get("seed"), state=r["state"],
               problem=r["problem"], converged=False, evaluations=0)
    if not m or r["problem"] is not None:
        return row
    values, seqs, secs = judged_values(m, judged["judge"]), m["sequences"], m["seconds"]
    patience = int(cfg.get("converge_patience", PATIENCE))
    for t in judged["thresholds"]:
        n, s = crossing(seqs, secs, values, t, patience)
        row[f"sequences_to_below_{t:g}"], row[f"seconds_to_below_{t:g}"] = n, None if s is None else round(s, 1)
    below = float(cfg.get("converge_below") or judged["thresholds"][-1])
    row["converged"] = crossing(seqs, secs, values, below, patience)[0] is not None
    if len(values):
        key = JUDGED[judged["judge"]][1]
        row.update({f"best_{key}": round(float(np.min(values)), 4), f"last_{key}": round(float(values[-1]), 4)},
                   rollbacks=int(m["rollbacks"][-1]) if "rollbacks" in m else 0,
                   training_seconds=round(float(secs[-1]), 1), sequences=int(seqs[-1]), evaluations=len(values))
    return row


def _group(label: str, rows: list[dict], threshold: float) -> dict:
    """How many of a group's runs converged, and the median and quartiles of sequences and seconds to the
    first of their evaluations in a row below ``threshold`` (the convergence threshold)."""
    done = [r for r in rows if r["converged"]]
    out = {"group": label, "runs": len(rows), "converged": len(done)}
    for what in ("sequences", "seconds"):
        key = f"{what}_to_below_{threshold:g}"
        values = np.array([r[key] for r in done if r[key] is not None], float)
        q = np.percentile(values, [25, 50, 75]) if values.size else [None] * 3
        out.update({f"median_{key}": _num(q[1]), f"q1_{key}": _num(q[0]), f"q3_{key}": _num(q[2])})
    return out


def _num(x):
    return None if x is None or not math.isfinite(x) else round(float(x), 1)


def rows_csv(rows: list[dict], header: list[str] = COLUMNS) -> str:
    """The runs' rows as CSV, ``header`` (compare_runs' "columns") first; empty cells for what is not known."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if r[c] is None else r[c] for c in header])
    return buf.getvalue()


def as_json(result: dict) -> dict:
    """compare_runs' result without the curves' arrays: what --json prints."""
    return {k: v for k, v in result.items() if k not in ("curves", "written")}
