"""Training loop, evaluation, checkpoints and trace recording for the numpy NTM.

numpy only: progress, trace files and the terminal are the caller's business, reached
through the ``on_event`` callback (see attnviz.training for the wiring).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import DictConfig, NTMConfig
from .layers import sigmoid
from .model import NTM, bce_loss, wrong_bits
from .optim import OPTIMIZERS
from .parallel import GradientPool
from .tasks import Task, get_task

LN2 = float(np.log(2.0))
CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig(DictConfig):
    task: str = "copy"
    task_options: dict = field(default_factory=dict)  # e.g. {"max_length": 10}
    seed: int = 0
    batch_size: int = 32  # one length per batch; 32 keeps numpy's per-call overhead small
    # The gradient is the mean over this many equal slices of each batch, one slice per process
    # where the machine has the cores (see parallel.py). The numbers depend on shards, not on processes.
    shards: int = 2
    processes: int = 0  # 0: one per shard, up to the number of cores
    optimizer: str = "adam"  # "adam" or "rmsprop" (the paper's: lr 1e-4, momentum 0.9)
    lr: float = 1e-3
    momentum: float = 0.9  # rmsprop only
    clip: float = 10.0  # gradients are clipped elementwise to [-clip, clip], as in the paper
    # Once held-out wrong bits drop below lr_decay_below, the rate is multiplied by lr_decay
    # (once): a converged model then wanders less, and the collapses seen at full rate are rarer.
    lr_decay_below: float = 1.0
    lr_decay: float = 0.3
    # Collapse guard: once held-out wrong bits have been below rollback_from, an evaluation more
    # than rollback_margin above the best so far restores the parameters and optimiser state of
    # that best evaluation and multiplies the rate by rollback_lr. Training data runs on, so the
    # same batches are not replayed. rollback_margin 0 turns it off.
    rollback_from: float = 5.0
    rollback_margin: float = 10.0
    rollback_lr: float = 0.5
    # Curriculum: train on lengths up to `level`, starting at curriculum_start and growing by
    # curriculum_step whenever held-out wrong bits at every length up to the level fall below
    # curriculum_below. Short sequences are cheap and teach the same moves. 0 turns it off.
    curriculum_start: int = 0
    curriculum_step: int = 4
    curriculum_below: float = 0.5
    eval_every: int = 50  # steps between held-out evaluations
    heldout_per_length: int = 8  # held-out sequences of each length (fixed seed)
    converge_below: float = 0.1  # held-out wrong bits per sequence
    converge_patience: int = 10  # evaluations in a row below the threshold count as converged
    max_steps: int = 0  # 0: no limit
    max_seconds: float = 0.0  # 0: no limit
    checkpoint_every: int = 500  # steps; and at least every checkpoint_seconds of training
    checkpoint_seconds: float = 60.0  # so that a run killed after a minute loses at most a minute
    trace_every: int = 500  # steps between recorded traces of the probe sequence
    probe_length: int = 0  # 0: the task's maximum length
    probe_seed: int = 2014
    model: dict = field(default_factory=dict)  # NTMConfig overrides (controller, sizes, heads)


def make_task(cfg: TrainConfig) -> Task:
    return get_task(cfg.task, **cfg.task_options)


def make_model_config(cfg: TrainConfig, task: Task) -> NTMConfig:
    return NTMConfig(task.input_size, task.output_size, **{**task.model_defaults, **cfg.model})


def clip_(grads: dict[str, np.ndarray], limit: float) -> None:
    for g in grads.values():
        np.clip(g, -limit, limit, out=g)


def evaluate(model: NTM, batches) -> dict:
    """Held-out cost: bits per sequence (cross-entropy), wrong bits per sequence, and wrong
    bits per sequence at each length."""
    bits = wrong = n = 0.0
    by_length = {}
    for b in batches:
        logits, _ = model.forward(b.x)
        loss, _ = bce_loss(logits, b.y, b.mask)
        B = b.x.shape[1]
        w = float(wrong_bits(logits, b.y, b.mask).sum())
        bits += loss * B / LN2
        wrong += w
        n += B
        by_length[b.length] = w / B
    return {"bits": bits / n, "wrong_bits": wrong / n, "by_length": by_length}


class Trainer:
    """One training run: model, optimiser, data stream and progress, with exact resume."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.task = make_task(cfg)
        self.model_cfg = make_model_config(cfg, self.task)
        self.model = NTM.create(self.model_cfg, seed=cfg.seed)
        self.opt = self._make_optimizer(cfg.lr)
        self.rng = np.random.default_rng(cfg.seed + 1)  # the training data stream
        self.heldout = self.task.heldout(per_length=cfg.heldout_per_length)
        self.step = 0
        self.sequences = 0
        self.seconds = 0.0  # training time, summed over resumed sessions
        self.lr_decayed = False
        self.streak = 0  # evaluations in a row below the threshold
        self.best = float("inf")
        self.converged_at: int | None = None  # sequences seen when the streak began
        self.best_state: dict[str, np.ndarray] | None = None  # state_arrays() at the best evaluation
        self.rollbacks = 0
        self.level = cfg.curriculum_start or self.task.max_length  # curriculum: longest length trained on
        if cfg.shards < 1 or cfg.batch_size % cfg.shards:
            raise ValueError(f"batch size {cfg.batch_size} is not a multiple of shards={cfg.shards}")
        self._pool: GradientPool | None = None

    def _make_optimizer(self, lr):
        cls = OPTIMIZERS[self.cfg.optimizer]
        kw = {"momentum": self.cfg.momentum} if self.cfg.optimizer == "rmsprop" else {}
        return cls(self.model.params, lr=lr, **kw)

    @property
    def converged(self) -> bool:
        return self.streak >= self.cfg.converge_patience

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

    def train_step(self) -> dict[str, float]:
        b = self.task.sample(self.rng, self.cfg.batch_size, self.level)
        loss, wrong, grads = self.pool.gradients(b.x, b.y, b.mask)
        clip_(grads, self.cfg.clip)
        self.opt.step(self.model.params, grads)
        self.step += 1
        self.sequences += self.cfg.batch_size
        return {"loss": loss / LN2, "wrong_bits": wrong / self.cfg.batch_size}

    def evaluate(self) -> dict[str, float]:
        """Evaluate on the held-out set; update the best state, the convergence streak and the
        rate; roll back to the best state after a collapse. The result says "improved" (a new
        best) and "rolled_back"."""
        result = evaluate(self.model, self.heldout)
        w = result["wrong_bits"]
        result["improved"] = result["rolled_back"] = False
        if w <= self.best:
            self.best, result["improved"] = w, True
            self.best_state = {k: v.copy() for k, v in self.state_arrays().items()}
        elif (self.cfg.rollback_margin and self.best_state is not None  # (None: an older checkpoint)
              and self.best < self.cfg.rollback_from and w > self.best + self.cfg.rollback_margin):
            _assign(self.model.params, self.best_state, "param/", "best state")
            _assign(self.opt.state, self.best_state, "opt/", "best state")
            self.opt.lr *= self.cfg.rollback_lr
            self.rollbacks += 1
            result["rolled_back"] = True
        if w < self.cfg.converge_below:
            if self.streak == 0:
                self.converged_at = self.sequences
            self.streak += 1
        else:
            self.streak, self.converged_at = 0, None
        if self.level < self.task.max_length and all(
                v < self.cfg.curriculum_below for n, v in result["by_length"].items() if n <= self.level):
            self.level = min(self.task.max_length, self.level + self.cfg.curriculum_step)
        if not self.lr_decayed and w < self.cfg.lr_decay_below:
            self.opt.lr *= self.cfg.lr_decay
            self.lr_decayed = True
        return result

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
                "model": self.model_cfg.to_dict(),
                "progress": {"step": self.step, "sequences": self.sequences, "seconds": self.seconds,
                             "lr": self.opt.lr, "lr_decayed": self.lr_decayed, "streak": self.streak,
                             "best": self.best, "converged_at": self.converged_at, "level": self.level,
                             "rollbacks": self.rollbacks},
                "rng": self.rng.bit_generator.state}

    def save(self, path) -> None:
        save_checkpoint(path, self.checkpoint_arrays(), self.state_json())

    @classmethod
    def load(cls, path) -> Trainer:
        arrays, meta = load_checkpoint(path)
        try:
            t = cls(TrainConfig.from_dict(meta["train"]))
            _assign(t.model.params, arrays, "param/", path)
            _assign(t.opt.state, arrays, "opt/", path)
            p = meta["progress"]
            t.step, t.sequences, t.seconds = int(p["step"]), int(p["sequences"]), float(p["seconds"])
            t.opt.lr, t.lr_decayed, t.streak = float(p["lr"]), bool(p["lr_decayed"]), int(p["streak"])
            t.best, t.converged_at, t.level = float(p["best"]), p["converged_at"], int(p["level"])
            t.rng.bit_generator.state = meta["rng"]
            t.rollbacks = int(p.get("rollbacks", 0))
            if any(k.startswith("best/") for k in arrays):
                t.best_state = {k: v.copy() for k, v in t.state_arrays().items()}  # shapes to check
                _assign(t.best_state, arrays, "best/", path)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: checkpoint does not match this model ({e})") from None
        return t


# ------------------------------------------------------------------ checkpoints


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged or does not fit the model."""


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Plain arrays plus JSON metadata in one NPZ, written under a temporary name and renamed."""
    _write_atomic(Path(path), lambda f: np.savez(f, **arrays, meta=np.array(json.dumps(meta))))


def _write_atomic(path: Path, write) -> None:
    """``write(binary file)`` into a temporary file beside ``path``, renamed to it when complete."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


CHECKPOINT_MAX_BYTES = 2**30  # a checkpoint declaring more is refused before anything is read


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint without unpickling; CheckpointError with one line on any problem.

    Its metadata is read and checked first, and the arrays' declared sizes are summed from their
    headers before any array is read, so that a small file cannot make this allocate much.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise CheckpointError(f"{path}: not an attnviz checkpoint (not an NPZ file; a checkpoint is the "
                                  "checkpoint.npz or best.npz of a run folder)")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "meta.npy" not in names:
                raise CheckpointError(f"{path}: not an attnviz checkpoint (no 'meta' entry)")
            declared = {}
            for name in names:
                with z.open(name) as fp:
                    version = np.lib.format.read_magic(fp)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fp)
                if dtype.hasobject:
                    raise CheckpointError(f"{path}: {name} is an object array; checkpoints hold plain numbers")
                declared[name] = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if declared["meta.npy"] > 2**20 or sum(declared.values()) > CHECKPOINT_MAX_BYTES:
                raise CheckpointError(f"{path}: declares {sum(declared.values()) / 2**20:,.0f} MiB of arrays, more "
                                      f"than a checkpoint of this model holds (at most {CHECKPOINT_MAX_BYTES // 2**20}"
                                      " MiB); not an attnviz checkpoint")
            with z.open("meta.npy") as fp:
                meta = json.loads(str(np.lib.format.read_array(fp, allow_pickle=False)[()]))
            if not isinstance(meta, dict) or meta.get("checkpoint_version") != CHECKPOINT_VERSION:
                raise CheckpointError(f"{path}: not an attnviz checkpoint of version {CHECKPOINT_VERSION}")
            arrays = {}
            for name in names:
                if name != "meta.npy":
                    with z.open(name) as fp:
                        arrays[name.removesuffix(".npy")] = np.lib.format.read_array(fp, allow_pickle=False)
    except CheckpointError:
        raise
    except Exception as e:  # zip, zlib, npy and JSON errors alike
        raise CheckpointError(f"{path}: damaged checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                              ) from None
    return arrays, meta


def _assign(target: dict, arrays: dict, prefix: str, path) -> None:
    for k, v in target.items():
        key = prefix + k
        if key not in arrays:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
        if np.shape(arrays[key]) != np.shape(v):
            raise CheckpointError(f"{path}: {key!r} has shape {np.shape(arrays[key])}, the model needs {np.shape(v)}")
        target[k][...] = arrays[key]  # in place: parameters may live in memory shared with workers


def load_model(path) -> tuple[NTM, Task, dict]:
    """A trained model from a checkpoint (the latest or the best), with its task and metadata."""
    arrays, meta = load_checkpoint(path)
    try:
        cfg = TrainConfig.from_dict(meta["train"])
        task = make_task(cfg)
        model = NTM(NTMConfig.from_dict(meta["model"]), {})
        params = NTM.create(model.cfg, seed=0).params
        _assign(params, arrays, "param/", path)
        model.params = params
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: checkpoint does not match this model ({e})") from None
    return model, task, meta


# ------------------------------------------------------------------- recording


RECORD_BYTES = 256 * 2**20  # what recording one sequence may hold in memory


def recordable_steps(cfg: NTMConfig) -> int:
    """The most steps ``record`` runs: the forward pass keeps every step (its memory and each
    head's weighting and addressing intermediates, float64), as the trace will."""
    heads = cfg.read_heads + cfg.write_heads
    per_step = 8 * (3 * cfg.memory_size * cfg.word_size + 12 * heads * cfg.memory_size + 8 * cfg.controller_size)
    return RECORD_BYTES // per_step


def record(model: NTM, task: Task, length: int, seed: int = 2014, memory_limit: int = 2_000_000
           ) -> tuple[dict[str, np.ndarray], dict]:
    """Run the model on one new sequence of ``length`` and return every traced array.

    Returns (arrays, metadata) in the trace format: inputs, outputs (probabilities),
    targets, the scored-output mask, write/read weightings, adds, erases, reads, and the memory at every step
    when it has at most ``memory_limit`` values.
    """
    limit = recordable_steps(model.cfg)
    if length > limit:  # every task has at least one step per item
        raise ValueError(f"length {length} is too long to record: this model records at most {limit:,} steps "
                         f"within {RECORD_BYTES // 2**20} MiB")
    b = task.make(np.random.default_rng(seed), 1, length)
    if b.x.shape[0] > limit:
        raise ValueError(f"length {length} is too long to record: its {b.x.shape[0]:,} steps are more than the "
                         f"{limit:,} this model records within {RECORD_BYTES // 2**20} MiB")
    logits, cache = model.forward(b.x, keep_memory=True)
    cfg = model.cfg
    steps = cache["steps"]

    def heads(kind, attr):
        idx = range(cfg.write_heads) if kind == "write" else range(cfg.write_heads, cfg.write_heads + cfg.read_heads)
        a = np.stack([np.stack([getattr(s["out"][j], attr)[0] for j in idx]) for s in steps])  # (T, heads, ·)
        return a[:, 0] if a.shape[1] == 1 else a

    arrays = {"inputs": b.x[:, 0], "outputs": sigmoid(logits[:, 0]), "targets": b.y[:, 0],
              "write_weightings": heads("write", "weighting"), "read_weightings": heads("read", "weighting"),
              "adds": heads("write", "add"), "erases": heads("write", "erase"), "reads": heads("read", "read")}
    output_mask = b.mask[:, 0] > 0  # (T,) the steps whose outputs the task scores
    T = b.x.shape[0]
    if T * cfg.memory_size * cfg.word_size <= memory_limit:
        arrays["memory"] = np.stack([s["memory"][0] for s in steps])
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    arrays["output_mask"] = output_mask
    meta = {"task": task.name, "sequence_length": int(length), "probe_seed": int(seed), "model": "attnviz.ntm",
            "controller": cfg.controller, "memory_size": cfg.memory_size, "word_size": cfg.word_size}
    return arrays, meta


# ------------------------------------------------------------------------- loop

# The columns of metrics.csv, one row per held-out evaluation (docs/cli.md has the same table).
METRICS = {
    "step": "optimiser steps so far",
    "sequences": "training sequences seen so far",
    "train_bits_per_seq": "cross-entropy of the last training batch, bits per sequence",
    "heldout_bits_per_seq": "cross-entropy on the held-out set, bits per sequence",
    "heldout_wrong_bits_per_seq": "output bits on the wrong side of 0.5 on the held-out set, per sequence",
    "lr": "learning rate after this evaluation",
    "rollbacks": "collapse-guard rollbacks so far",
    "seconds": "training time so far, seconds (evaluations included)",
}


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
    {"kind": "step" | "eval" | "trace" | "checkpoint" | "done", ...}; a "trace" event
    carries (arrays, metadata) for the caller to store. Returns why it stopped:
    "converged", "max_steps", "max_seconds", "interrupted" (Ctrl-C or SIGTERM, after a
    checkpoint), or "already at max_steps" / "already at max_seconds" (a resumed run with nothing
    left to do). A checkpoint is written every ``checkpoint_every`` steps and at least every
    ``checkpoint_seconds``; on resume, metrics rows past the checkpoint are dropped.
    """
    cfg = trainer.cfg
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(trainer.state_json()["train"], indent=2) + "\n")
    metrics = run_dir / "metrics.csv"
    header = ",".join(METRICS) + "\n"
    if not metrics.exists() or trainer.step == 0:
        metrics.write_text(header)
    else:  # resumed: rows written after the checkpoint will be written again
        rows = metrics.read_text().splitlines(keepends=True)[1:]
        kept = [r for r in rows if r.split(",", 1)[0].isdigit() and int(r.split(",", 1)[0]) <= trainer.step]
        if len(kept) != len(rows):
            _write_atomic(metrics, lambda f: f.write((header + "".join(kept)).encode()))
    probe_length = cfg.probe_length or trainer.task.max_length
    started = time.perf_counter() - trainer.seconds
    last_checkpoint, first_step = trainer.seconds, trainer.step
    reason = None
    if cfg.max_steps and trainer.step >= cfg.max_steps:  # a resumed run already there: no more steps
        reason = "already at max_steps"
    elif cfg.max_seconds and trainer.seconds >= cfg.max_seconds:
        reason = "already at max_seconds"

    def checkpoint():
        nonlocal last_checkpoint
        trainer.seconds = last_checkpoint = time.perf_counter() - started
        trainer.save(run_dir / "checkpoint.npz")
        on_event({"kind": "checkpoint", "step": trainer.step})

    def trace():
        arrays, meta = record(trainer.model, trainer.task, probe_length, cfg.probe_seed)
        meta.update(step=trainer.step, seed=cfg.seed, sequences=trainer.sequences)
        on_event({"kind": "trace", "step": trainer.step, "arrays": arrays, "metadata": meta})

    try:
        while reason is None:
            stats = trainer.train_step()
            elapsed = time.perf_counter() - started
            on_event({"kind": "step", "step": trainer.step, "sequences": trainer.sequences,
                      "seconds": elapsed, **stats})
            if trainer.step % cfg.eval_every == 0:
                result = trainer.evaluate()
                with open(metrics, "a") as f:
                    f.write(f"{trainer.step},{trainer.sequences},{stats['loss']:.6g},{result['bits']:.6g},"
                            f"{result['wrong_bits']:.6g},{trainer.opt.lr:.3g},{trainer.rollbacks},{elapsed:.3f}\n")
                if result["improved"]:  # the snapshot evaluate() just took
                    save_checkpoint(run_dir / "best.npz", trainer.best_state, trainer.state_json())
                on_event({"kind": "eval", "step": trainer.step, "sequences": trainer.sequences,
                          "seconds": elapsed, "streak": trainer.streak, "level": trainer.level, **result})
                if trainer.converged:
                    reason = "converged"
            if snapshot_due(trainer.step, cfg.trace_every):
                trace()
            if ((cfg.checkpoint_every and trainer.step % cfg.checkpoint_every == 0)
                    or (cfg.checkpoint_seconds and elapsed - last_checkpoint >= cfg.checkpoint_seconds)):
                checkpoint()
            if reason is None and cfg.max_steps and trainer.step >= cfg.max_steps:
                reason = "max_steps"
            if reason is None and cfg.max_seconds and elapsed >= cfg.max_seconds:
                reason = "max_seconds"
            if reason is None and should_stop():
                reason = "interrupted"
    except KeyboardInterrupt:
        reason = "interrupted"
    if trainer.step > first_step:  # a resumed run with nothing to do leaves its folder as it was
        checkpoint()
        if not snapshot_due(trainer.step, cfg.trace_every):
            trace()
    on_event({"kind": "done", "reason": reason, "step": trainer.step, "sequences": trainer.sequences,
              "seconds": trainer.seconds, "converged_at": trainer.converged_at, "best": trainer.best})
    return reason
