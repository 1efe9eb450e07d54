"""The training loop: a Trainer (model, optimiser, data stream and progress, with exact resume),
its held-out evaluation as small named steps, and ``run``, which writes the run folder.

numpy only: progress, trace files and the terminal are the caller's business, reached
through the ``on_event`` callback (see attnviz.training for the wiring). Checkpoint files are
checkpoint.py's; recording a trace is record.py's.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from .checkpoint import (
    CHECKPOINT_VERSION,
    CheckpointError,
    assign,
    load_checkpoint,
    recorded_config,
    save_checkpoint,
    write_atomic,
)
from .config import TrainConfig, make_task
from .diverge import Diverged, diagnose, finite
from .models import create_model
from .optim import OPTIMIZERS
from .parallel import QUIET, GradientPool, batch_scores, shard_gradients
from .record import record
from .tasks.base import Batch

LN2 = float(np.log(2.0))
# Held-out batches are scored in pieces of at most this many sequences, so that the processes share a
# large held-out set (priority sort's 256 sequences of one length were one batch: one process scored
# it while the other waited). A fixed size, so that the numbers do not depend on the processes.
HELDOUT_PIECE = 64


def pieces(batches: list[Batch], size: int) -> list[Batch]:
    """The batches cut along the batch axis into pieces of at most ``size`` sequences, in order."""
    return [Batch(b.x[:, i : i + size], b.y[:, i : i + size], b.mask[:, i : i + size], b.length,
                  b.levels[i : i + size]) for b in batches for i in range(0, b.x.shape[1], size)]


def clip_(grads: dict[str, np.ndarray], limit: float, norm_limit: float) -> None:
    """Scale the whole gradient down to norm ``norm_limit`` if it is longer (0: never), then clip
    every element to [-limit, limit] (0: never). In place."""
    if norm_limit:
        norm = float(np.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in grads.values())))
        if norm > norm_limit:
            for g in grads.values():
                g *= norm_limit / norm
    if limit:
        for g in grads.values():
            np.clip(g, -limit, limit, out=g)


def evaluate(model, batches, scores=None) -> dict:
    """Held-out cost: bits per sequence (cross-entropy), wrong bits per sequence, and wrong bits
    per sequence at each curriculum level (Batch.levels). ``scores`` computes batch_scores for a
    list of (x, y, mask) (GradientPool.scores shares them out among processes); by default here."""
    data = [(b.x, b.y, b.mask) for b in batches]
    results = scores(data) if scores else [batch_scores(model, *d) for d in data]
    bits = n = 0.0
    wrong, levels = [], []
    for b, (loss, w) in zip(batches, results, strict=True):
        bits += loss * b.x.shape[1] / LN2
        n += b.x.shape[1]
        wrong.append(w)
        levels.append(b.levels)
    wrong, levels = np.concatenate(wrong), np.concatenate(levels)
    by_level = {int(k): float(wrong[levels == k].mean()) for k in np.unique(levels)}
    return {"bits": bits / n, "wrong_bits": float(wrong.sum()) / n, "by_level": by_level}


@dataclass
class Progress:
    """Where a run stands: everything besides the arrays that a checkpoint must hold to resume
    exactly. Saved and loaded whole."""

    step: int = 0
    sequences: int = 0
    seconds: float = 0.0  # training time, summed over the run and its resumptions
    lr: float = 0.0  # the optimiser's rate, after any decay and rollbacks
    lr_decayed: bool = False
    streak: int = 0  # evaluations in a row below the convergence threshold
    best: float = float("inf")  # lowest score so far (Trainer.evaluate: held-out wrong bits, or bits above optimal)
    converged_at: int | None = None  # sequences seen when the streak began
    level: int = 0  # curriculum: the highest level trained on (a length for copy; see Task.sample)
    rollbacks: int = 0
    wide_steps: int = 0  # steps whose gradient overflowed float32 and was recomputed in float64 (train_step)

    @classmethod
    def from_dict(cls, d: dict) -> Progress:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})  # a checkpoint older than "rollbacks" too


class Trainer:
    """One training run: model, optimiser, data stream and progress, with exact resume."""

    def __init__(self, cfg: TrainConfig):
        if cfg.shards < 1 or cfg.batch_size % cfg.shards:
            raise ValueError(f"batch size {cfg.batch_size} is not a multiple of shards={cfg.shards}")
        self.cfg = cfg
        self.task = make_task(cfg)
        self.model = create_model(cfg, self.task)
        self.model_cfg = self.model.cfg
        self.opt = self._make_optimizer(cfg.lr)
        self.rng = np.random.default_rng(cfg.seed + 1)  # the training data stream
        self.heldout = pieces(self.task.heldout(per_length=cfg.heldout_per_length), HELDOUT_PIECE)
        # The task's optimal predictor on the same held-out sequences, bits per sequence (None: it has none)
        self.optimal_bits = optimal_bits(self.task, self.heldout)
        self.progress = Progress(lr=cfg.lr, level=cfg.curriculum_start or self.task.max_level)
        self.best_state: dict[str, np.ndarray] | None = None  # state_arrays() at the best evaluation
        self._pool: GradientPool | None = None

    def _make_optimizer(self, lr):
        cls = OPTIMIZERS[self.cfg.optimizer]
        kw = {"momentum": self.cfg.momentum} if self.cfg.optimizer == "rmsprop" else {}
        return cls(self.model.params, lr=lr, **kw)

    @property
    def converged(self) -> bool:
        return self.progress.streak >= self.cfg.converge_patience

    @property
    def pool(self) -> GradientPool:
        """The gradient workers, started at the first step (after any checkpoint is loaded)."""
        if self._pool is None:
            processes = self.cfg.processes or min(self.cfg.shards, os.cpu_count() or 1)
            self._pool = GradientPool(self.model, self.cfg.shards, processes)
            weakref.finalize(self, self._pool.close)
        return self._pool

    def close(self) -> None:
        """Stop the gradient workers (also done when the Trainer is collected or Python exits)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def next_batch(self) -> Batch:
        """The next training batch: at most the curriculum's level, or, for a curriculum_mix share of
        batches, from the task's whole range (the draw is made only with a curriculum and a mix, so
        that any other run sees the task's stream as it is)."""
        level, cfg = self.progress.level, self.cfg
        if cfg.curriculum_start and cfg.curriculum_mix and self.rng.random() < cfg.curriculum_mix:
            level = None
        return self.task.sample(self.rng, cfg.batch_size, level)

    def train_step(self) -> dict[str, float]:
        """One optimiser step; Diverged (and no update: the parameters stay as they were) when the
        batch's loss or gradient is not finite."""
        p = self.progress
        b = self.next_batch()
        loss, wrong, grads = self.pool.gradients(b.x, b.y, b.mask)
        if not finite(loss, grads) and np.isfinite(loss) and (self.cfg.clip or self.cfg.clip_norm):
            grads = self._wide_gradients(b, grads)
        if not finite(loss, grads):
            with np.errstate(**QUIET):
                raise Diverged(diagnose(self.model, self.task, b, grads, p.step + 1, self.cfg.shards))
        clip_(grads, self.cfg.clip, self.cfg.clip_norm)
        self.opt.lr = p.lr
        self.opt.step(self.model.params, grads)
        p.step += 1
        p.sequences += self.cfg.batch_size
        return {"loss": loss / LN2, "wrong_bits": wrong / self.cfg.batch_size}

    def _wide_gradients(self, b: Batch, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A finite loss whose gradient overflowed float32 (backpropagation through a long sequence can
        grow past 3.4e38 where float64 does not) gets its gradient again in float64, clipped there (its
        norm, its elements) and then narrowed: the step float64 training would take. Returns ``grads``
        unchanged if the gradient is not finite in float64 either."""
        wide = type(self.model)(self.model.cfg, {k: v.astype(np.float64) for k, v in self.model.params.items()})
        _, _, wide_grads = shard_gradients(wide, *(a.astype(np.float64) for a in (b.x, b.y, b.mask)))
        if not finite(0.0, wide_grads):
            return grads
        clip_(wide_grads, self.cfg.clip, self.cfg.clip_norm)
        self.progress.wide_steps += 1
        return {k: g.astype(grads[k].dtype) for k, g in wide_grads.items()}

    # ----------------------------------------------------------- evaluation

    def evaluate(self) -> dict[str, float]:
        """Evaluate on the held-out set, then take the evaluation's steps in order: keep the
        best state, roll back after a collapse, count the convergence streak, grow the curriculum,
        decay the rate. The steps judge the result's "score" (Task.judge): held-out wrong bits per
        sequence; the cross-entropy in bits per sequence; or for a task with an optimal predictor, the
        bits per sequence above its cost ("optimal_bits"). The result says "improved" (a new best) and "rolled_back"."""
        result = evaluate(self.model, self.heldout, self.pool.scores)
        result["optimal_bits"], result["judge"] = self.optimal_bits, self.task.judge
        result["score"] = {"excess_bits": result["bits"] - (self.optimal_bits or 0.0), "bits": result["bits"],
                           "wrong_bits": result["wrong_bits"]}[self.task.judge]
        result["improved"] = result["rolled_back"] = False
        for step in (self._keep_best, self._roll_back, self._count_streak, self._grow_curriculum, self._decay_rate):
            step(result)
        return result

    def _keep_best(self, result) -> None:
        if result["score"] <= self.progress.best:
            self.progress.best, result["improved"] = result["score"], True
            self.best_state = {k: v.copy() for k, v in self.state_arrays().items()}

    def _roll_back(self, result) -> None:
        """Collapse guard: once held-out wrong bits have been below rollback_from, an evaluation more
        than rollback_margin above the best restores the best state and lowers the rate."""
        p, cfg = self.progress, self.cfg
        if (cfg.rollback_margin and not result["improved"] and self.best_state is not None
                and p.best < cfg.rollback_from and result["score"] > p.best + cfg.rollback_margin):
            assign(self.model.params, self.best_state, "param/", "best state")
            assign(self.opt.state, self.best_state, "opt/", "best state")
            p.lr *= cfg.rollback_lr
            p.rollbacks += 1
            result["rolled_back"] = True

    def _count_streak(self, result) -> None:
        p = self.progress
        if result["score"] < self.cfg.converge_below:
            if p.streak == 0:
                p.converged_at = p.sequences
            p.streak += 1
        else:
            p.streak, p.converged_at = 0, None

    def _grow_curriculum(self, result) -> None:
        p, cfg = self.progress, self.cfg
        if p.level < self.task.max_level and all(
                v < cfg.curriculum_below for n, v in result["by_level"].items() if n <= p.level):
            p.level = min(self.task.max_level, p.level + cfg.curriculum_step)

    def _decay_rate(self, result) -> None:
        p = self.progress
        if not p.lr_decayed and result["score"] < self.cfg.lr_decay_below:
            p.lr *= self.cfg.lr_decay
            p.lr_decayed = True

    # ---------------------------------------------------------------- state

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"param/{k}": v for k, v in self.model.params.items()}
        arrays.update({f"opt/{k}": np.asarray(v) for k, v in self.opt.state.items()})
        return arrays

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """state_arrays() plus the best state (under best/), which a rollback after --resume needs."""
        arrays = self.state_arrays()
        arrays.update({f"best/{k}": v for k, v in (self.best_state or {}).items()})
        return arrays

    def state_json(self) -> dict:
        return {"checkpoint_version": CHECKPOINT_VERSION, "train": self.cfg.to_dict(),
                "model": self.model_cfg.to_dict(), "progress": asdict(self.progress),
                "rng": self.rng.bit_generator.state}

    def save(self, path) -> None:
        save_checkpoint(path, self.checkpoint_arrays(), self.state_json())

    @classmethod
    def load(cls, path) -> Trainer:
        arrays, meta = load_checkpoint(path)
        try:
            t = cls(recorded_config(meta))
            assign(t.model.params, arrays, "param/", path)
            assign(t.opt.state, arrays, "opt/", path)
            t.progress = Progress.from_dict(meta["progress"])
            t.opt.lr = t.progress.lr
            t.rng.bit_generator.state = meta["rng"]
            if any(k.startswith("best/") for k in arrays):
                t.best_state = {k: v.copy() for k, v in t.state_arrays().items()}  # shapes to check
                assign(t.best_state, arrays, "best/", path)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"{path}: checkpoint does not match this model ({e})") from None
        return t


# ------------------------------------------------------------------------- loop

# The columns of metrics.csv, one row per held-out evaluation (docs/cli.md has the same table).
METRICS = {
    "step": "optimiser steps so far",
    "sequences": "training sequences seen so far",
    "train_bits_per_seq": "cross-entropy of the last training batch, bits per sequence",
    "heldout_bits_per_seq": "cross-entropy on the held-out set, bits per sequence",
    "heldout_wrong_bits_per_seq": "output bits on the wrong side of 0.5 on the held-out set, per sequence",
    "heldout_optimal_bits_per_seq": "the task's optimal predictor's cross-entropy on the same held-out set, bits "
                                    "per sequence (only for a task that has one: ngrams)",
    "lr": "learning rate after this evaluation",
    "rollbacks": "collapse-guard rollbacks so far",
    "seconds": "training time so far, seconds (evaluations included)",
}


def metric_columns(task) -> list[str]:
    """The columns of a run's metrics.csv: METRICS, less the optimal predictor's cost for a task without one."""
    return [c for c in METRICS if c != "heldout_optimal_bits_per_seq" or task.has_optimal]


def optimal_bits(task, batches) -> float | None:
    """The task's optimal predictor's cross-entropy on ``batches``, bits per sequence; None: it has none."""
    if not task.has_optimal:
        return None
    total = n = 0.0
    for b in batches:
        p = np.clip(task.optimal(b).astype(np.float64), 1e-12, 1 - 1e-12)
        per = -(b.y * np.log2(p) + (1 - b.y) * np.log2(1 - p)) * b.mask[:, :, None]
        total += float(per.sum())
        n += b.x.shape[1]
    return total / n


def snapshot_due(step: int, every: int) -> bool:
    """Whether to record the probe trace at ``step``: densely early, where learning happens,
    then every ``every`` steps: every every/10 steps up to 2 x every, every every/5 up to
    10 x every (with 500: every 50 steps to 1,000, every 100 to 5,000, then every 500)."""
    if not every or step <= 0:
        return False
    if step <= 2 * every:
        return step % max(1, every // 10) == 0
    if step <= 10 * every:
        return step % max(1, every // 5) == 0
    return step % every == 0


def run(trainer: Trainer, run_dir, on_event: Callable[[dict], None] = lambda e: None,
        should_stop: Callable[[], bool] = lambda: False) -> str:
    """Train until converged or out of budget, writing the run folder as it goes.

    Writes config.json, metrics.csv, checkpoint.npz (latest, full state for --resume)
    and best.npz (lowest held-out wrong bits). Sends events to ``on_event``:
    {"kind": "start" | "step" | "eval" | "trace" | "checkpoint" | "diverged" | "done", ...} ("start"
    says the task and the step and time limits given to this call); a "trace" event
    carries (arrays, metadata) for the caller to store. Returns why it stopped:
    "converged", "max_steps", "max_seconds", "interrupted" (Ctrl-C or SIGTERM, after a
    checkpoint), "diverged" (a loss or gradient not finite: no update, no checkpoint, the last one
    is kept; a "diverged" event says where (Divergence.as_dict()), names the last checkpoint's step
    ("checkpoint_step", None when there is none) and carries the trace of the sequence that
    diverged, recorded with the model as it was, as (arrays, metadata): None if it cannot be
    recorded), or "already at max_steps" / "already at max_seconds" (a resumed run with nothing
    left to do). A checkpoint is written every ``checkpoint_every`` steps and at least every
    ``checkpoint_seconds``; on resume, metrics rows past the checkpoint are dropped.
    """
    cfg, progress = trainer.cfg, trainer.progress
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    metrics = run_dir / "metrics.csv"
    columns = metric_columns(trainer.task)
    header = ",".join(columns) + "\n"
    if not metrics.exists() or progress.step == 0:
        metrics.write_text(header)
    else:  # resumed: rows written after the checkpoint will be written again
        rows = metrics.read_text().splitlines(keepends=True)[1:]
        kept = [r for r in rows if r.split(",", 1)[0].isdigit() and int(r.split(",", 1)[0]) <= progress.step]
        if len(kept) != len(rows):
            write_atomic(metrics, lambda f: f.write((header + "".join(kept)).encode()))
    probe_length = cfg.probe_length or trainer.task.max_length
    started = time.perf_counter() - progress.seconds
    last_checkpoint, first_step = progress.seconds, progress.step
    saved = first_step if first_step else None  # the step of the checkpoint on disk
    reason = diverged = None
    if cfg.max_steps and progress.step >= cfg.max_steps:  # a resumed run already there: no more steps
        reason = "already at max_steps"
    elif cfg.max_seconds and progress.seconds >= cfg.max_seconds:
        reason = "already at max_seconds"

    def checkpoint():
        nonlocal last_checkpoint, saved
        progress.seconds = last_checkpoint = time.perf_counter() - started
        trainer.save(run_dir / "checkpoint.npz")
        saved = progress.step
        on_event({"kind": "checkpoint", "step": progress.step})

    def trace():
        arrays, meta = record(trainer.model, trainer.task, probe_length, cfg.probe_seed)
        meta.update(step=progress.step, seed=cfg.seed, sequences=progress.sequences)
        on_event({"kind": "trace", "step": progress.step, "arrays": arrays, "metadata": meta})

    # One BLAS thread per process, set here at run time so that a notebook's attnviz.train() is as
    # fast as the command line: BLAS threads on top of one process per core only fight them
    # (docs/performance.md). The gradient workers set the same for themselves.
    on_event({"kind": "start", "task": cfg.task, "step": progress.step, "max_steps": cfg.max_steps,
              "max_seconds": cfg.max_seconds, "best": progress.best})
    blas = threadpool_limits(limits=1, user_api="blas")
    try:
        while reason is None:
            stats = trainer.train_step()
            elapsed = time.perf_counter() - started
            on_event({"kind": "step", "step": progress.step, "sequences": progress.sequences,
                      "seconds": elapsed, **stats})
            if progress.step % cfg.eval_every == 0:
                result = trainer.evaluate()
                row = {"step": progress.step, "sequences": progress.sequences,
                       "train_bits_per_seq": f"{stats['loss']:.6g}", "heldout_bits_per_seq": f"{result['bits']:.6g}",
                       "heldout_wrong_bits_per_seq": f"{result['wrong_bits']:.6g}",
                       "heldout_optimal_bits_per_seq": f"{result['optimal_bits'] or 0:.6g}",
                       "lr": f"{progress.lr:.3g}", "rollbacks": progress.rollbacks, "seconds": f"{elapsed:.3f}"}
                with open(metrics, "a") as f:
                    f.write(",".join(str(row[c]) for c in columns) + "\n")
                if result["improved"]:  # the snapshot evaluate() just took
                    save_checkpoint(run_dir / "best.npz", trainer.best_state, trainer.state_json())
                on_event({"kind": "eval", "step": progress.step, "sequences": progress.sequences,
                          "seconds": elapsed, "streak": progress.streak, "level": progress.level,
                          "max_level": trainer.task.max_level if cfg.curriculum_start else None, **result})
                if trainer.converged:
                    reason = "converged"
            if snapshot_due(progress.step, cfg.trace_every):
                trace()
            if ((cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0)
                    or (cfg.checkpoint_seconds and elapsed - last_checkpoint >= cfg.checkpoint_seconds)):
                checkpoint()
            if reason is None and cfg.max_steps and progress.step >= cfg.max_steps:
                reason = "max_steps"
            if reason is None and cfg.max_seconds and elapsed >= cfg.max_seconds:
                reason = "max_seconds"
            if reason is None and should_stop():
                reason = "interrupted"
    except KeyboardInterrupt:
        reason = "interrupted"
    except Diverged as e:
        reason, diverged = "diverged", e.divergence
    finally:
        blas.restore_original_limits()
    if diverged is not None:  # the parameters are those the step began with; the checkpoint stays
        on_event({"kind": "diverged", **diverged.as_dict(), "checkpoint_step": saved,
                  "trace": _diverged_trace(trainer, diverged)})
    elif progress.step > first_step:  # a resumed run with nothing to do leaves its folder as it was
        checkpoint()
        if not snapshot_due(progress.step, cfg.trace_every):
            trace()
    on_event({"kind": "done", "reason": reason, "step": progress.step, "sequences": progress.sequences,
              "seconds": progress.seconds, "converged_at": progress.converged_at, "best": progress.best})
    return reason


def _diverged_trace(trainer: Trainer, d) -> tuple[dict, dict] | None:
    """(arrays, metadata) of the sequence that diverged, run by the model as it was; None if it is
    too long to record."""
    try:
        with np.errstate(**QUIET):
            arrays, meta = record(trainer.model, trainer.task, d.batch.length, sequence=d.batch)
    except ValueError:
        return None
    meta.pop("probe_seed", None)
    if trainer.task.name == "repeat-copy":
        meta["repeats"] = int(d.batch.levels[0])
    meta.update(step=d.step, seed=trainer.cfg.seed, sequences=trainer.progress.sequences, batch_index=d.sequence,
                diverged=d.quantity if d.time_step is None else f"{d.quantity} at time step {d.time_step}")
    return arrays, meta
