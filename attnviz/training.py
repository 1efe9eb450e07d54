"""The Python API behind `attnviz train` and `attnviz record`: the numpy trainer, wired to
trace files. (attnviz.trainer itself writes no HDF5 and draws nothing.)"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
from collections.abc import Callable
from pathlib import Path

from .errors import AttnvizError
from .trace import Trace
from .trainer import record as trainer_record
from .trainer import train as trainer_train
from .trainer.checkpoint import CheckpointError, load_model
from .trainer.config import TrainConfig, make_task
from .trainer.models import make_model_config
from .trainer.parallel import WorkerLost

TRACE_FILE = "traces.h5"
DIVERGED_FILE = "diverged.h5"  # the trace of the sequence whose loss or gradient went non-finite


def train(task: str | None = None, run_dir=None, seed: int | None = None, resume=None,
          max_steps: int | None = None, max_seconds: float | None = None,
          on_event: Callable[[dict], None] | None = None, processes: int | None = None, config=None,
          interrupted: Callable[[], str | None] | None = None, **overrides) -> dict:
    """Train the reference NTM; write config.json, metrics.csv, checkpoint.npz, best.npz and
    traces.h5 (one group per recorded step) into ``run_dir`` [default: runs/TASK-seedSEED].

    ``overrides`` set TrainConfig fields (batch_size, lr, optimizer, trace_every, model={...}, ...);
    ``config`` (a JSON file such as a run folder's config.json, or a dict) sets any of them too;
    arguments given here win over it. What neither sets keeps TrainConfig's default (task
    "copy", seed 0, no step or time limit).

    With ``resume`` (a run folder) training continues exactly where that run's checkpoint
    stopped; ``max_steps`` then counts from the start of the original run. Ctrl-C stops
    after the current step with a checkpoint (a second one stops at once, still with one); with
    ``interrupted`` (a callable returning the name of a signal that asked the run to stop, else
    None) the caller handles the signals and the run stops after the step where it says so.
    Returns a summary of the run. A run whose loss or gradient goes non-finite stops before that
    step's update ("reason": "diverged"), keeps its last checkpoint, writes the trace of the
    sequence that diverged to DIVERGED_FILE in the run folder, and its summary's "diverged" says
    where (step, sequence, size, quantity, time step, one line "description", "checkpoint_step",
    "trace": the file written, or None).

    Gradients are computed in ``processes`` processes (0: one per core, up to the batch's
    ``shards``, 2); the number changes the speed, never the numbers. Each process uses one BLAS
    thread while training (set at run time: nothing to do before importing numpy).
    """
    try:
        if resume is not None:
            run_dir = Path(resume)
            trainer = trainer_train.Trainer.load(run_dir / "checkpoint.npz")
            given = {k: v for k, v in (("task", task), ("seed", seed)) if v is not None}
            _check_resume_options(run_dir, trainer.cfg, {**overrides, **given})
            if config is not None:
                raise AttnvizError("--config starts a new run; --resume continues one as its folder configured it")
            trainer.cfg.max_steps, trainer.cfg.max_seconds = max_steps or 0, max_seconds or 0
            trainer.cfg.processes = processes or 0
        else:
            cfg = TrainConfig.from_dict(_settings(config, task=task, seed=seed, max_steps=max_steps,
                                                  max_seconds=max_seconds, processes=processes, **overrides))
            trainer = trainer_train.Trainer(cfg)
            run_dir = Path(run_dir or f"runs/{cfg.task}-seed{cfg.seed}")
    except (ValueError, TypeError) as e:
        raise AttnvizError(str(e)) from None
    run_dir.mkdir(parents=True, exist_ok=True)
    traces = run_dir / TRACE_FILE
    if resume is None and traces.exists():
        traces.unlink()  # a fresh run starts a fresh trace file
    elif traces.exists():
        drop_snapshots_after(traces, trainer.progress.step)
    (run_dir / DIVERGED_FILE).unlink(missing_ok=True)  # of an earlier call: this one writes its own, if any
    stop = {"now": False, "signal": None}
    diverged = {}

    def handle(event):
        if event["kind"] == "trace":
            append_trace(traces, Trace(event["arrays"], event["metadata"], f"step_{event['step']:07d}"))
        if event["kind"] == "diverged":
            from .io import save

            diverged.update({k: v for k, v in event.items() if k not in ("kind", "trace")}, trace=None)
            if event["trace"] is not None:
                diverged["trace"] = str(save(Trace(*event["trace"]), run_dir / DIVERGED_FILE))
        if on_event:
            on_event(event)

    def on_signal(signum, frame):
        if stop["now"]:  # a second Ctrl-C: stop now, still with a checkpoint
            raise KeyboardInterrupt
        stop["now"], stop["signal"] = True, signal.Signals(signum).name

    def should_stop() -> bool:
        if interrupted is not None and not stop["now"] and interrupted():
            stop["now"], stop["signal"] = True, interrupted()
        return stop["now"]

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM) if interrupted is None else ():
        with contextlib.suppress(ValueError):  # not in the main thread: no handler
            previous[sig] = signal.signal(sig, on_signal)
    write_status(run_dir, "running")
    reason = "failed"
    try:
        reason = trainer_train.run(trainer, run_dir, handle, should_stop=should_stop)
    except WorkerLost as e:
        raise AttnvizError(f"{run_dir}: {e} at step {trainer.progress.step:,}; the last checkpoint is kept: "
                           f"continue with attnviz train --resume {run_dir}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        trainer.close()
        write_status(run_dir, "stopped" if reason in ("interrupted", "failed", "diverged") else "finished", reason)
    p = trainer.progress
    return {"reason": reason, "signal": stop["signal"], "run_dir": str(run_dir), "step": p.step,
            "sequences": p.sequences, "seconds": round(p.seconds, 2),
            # what the run is judged by (Task.judge): held-out wrong bits, or bits above the optimal predictor
            "judged_by": trainer.task.judge, "best": p.best,
            "best_wrong_bits": p.best if trainer.task.judge == "wrong_bits" else None,
            "converged_at_sequences": p.converged_at, "rollbacks": p.rollbacks,
            "wide_steps": p.wide_steps, "diverged": diverged or None}


RESUMABLE = {"max_steps", "max_seconds", "processes"}  # what a resumed run may set anew

STATUS_FILE = "status.json"
STALE_SECONDS = 600  # a run on another machine whose metrics.csv is older than this is taken as stopped


def write_status(run_dir: Path, state: str, reason: str | None = None) -> None:
    """status.json of a run folder: "running" (with the process and machine), "finished" or
    "stopped", and why it stopped."""
    import os
    import socket

    from .io import atomic_path

    status = {"state": state, "reason": reason, "pid": os.getpid(), "host": socket.gethostname()}
    with atomic_path(Path(run_dir) / STATUS_FILE) as tmp:
        tmp.write_text(json.dumps(status) + "\n")


def run_state(run_dir) -> dict:
    """Where a run folder stands: {"state": "new" | "running" | "finished" | "stopped", "reason"}.
    A run said to be running whose process is gone (on this machine), or whose metrics.csv has not
    changed for STALE_SECONDS (on another), was killed: stopped."""
    import os
    import socket
    import time

    run_dir = Path(run_dir)
    try:
        status = json.loads((run_dir / STATUS_FILE).read_text())
        state, reason = str(status["state"]), status.get("reason")
    except (OSError, ValueError, KeyError, TypeError):  # a folder written before status.json
        state = reason = None
    if not (run_dir / "checkpoint.npz").is_file():  # unless it diverged before its first checkpoint
        return {"state": "stopped", "reason": "diverged"} if reason == "diverged" else {"state": "new", "reason": None}
    if state is None:
        return {"state": "stopped", "reason": None}
    if state == "running":
        if status.get("host") == socket.gethostname():
            try:
                os.kill(int(status.get("pid", 0)), 0)
            except (OSError, ValueError):
                return {"state": "stopped", "reason": "killed"}
        else:
            metrics = run_dir / "metrics.csv"
            if not metrics.exists() or time.time() - metrics.stat().st_mtime > STALE_SECONDS:
                return {"state": "stopped", "reason": "no progress for 10 minutes"}
    return {"state": state, "reason": reason}


CONFIG_MAX_BYTES = 2**20  # a run folder's config.json is under 1 KiB


def load_config(path) -> dict:
    """Training options from a JSON file: one object of TrainConfig fields, as in a run folder's
    config.json (checked when the run is made)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise AttnvizError(f"{path}: not a regular file; a configuration is a JSON file")
        if path.stat().st_size > CONFIG_MAX_BYTES:
            raise AttnvizError(f"{path}: {path.stat().st_size:,} bytes, more than a configuration holds "
                               f"(at most {CONFIG_MAX_BYTES // 2**10} KiB)")
        config = json.loads(path.read_text())
    except OSError as e:
        raise AttnvizError(f"{path}: cannot read the configuration ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AttnvizError(f"{path}: not a JSON configuration ({e})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model", {}), dict):
        raise AttnvizError(f"{path}: a configuration is one JSON object of training options, its \"model\" an "
                           "object of model options (as in a run folder's config.json)")
    unknown = sorted(set(config) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise AttnvizError(f"{path}: unknown training option {unknown[0]!r}; the options are the fields of "
                           "attnviz.trainer.config.TrainConfig (docs/cli.md)")
    return config


def _settings(config, **given) -> dict:
    """TrainConfig fields: the configuration (a file or a dict), then what was given (None: not
    given) on top of it; model options merge, field by field."""
    base = dict(config) if isinstance(config, dict) else load_config(config) if config is not None else {}
    given = {k: v for k, v in given.items() if v is not None}
    if isinstance(base.get("model"), dict) and isinstance(given.get("model"), dict):
        given["model"] = {**base["model"], **given["model"]}
    return {**base, **given}


def _check_resume_options(run_dir: Path, cfg, overrides: dict) -> None:
    """A resumed run continues as it was configured: refuse an option that would change that."""
    current = cfg.to_dict()
    for key, value in overrides.items():
        if key not in current:
            raise AttnvizError(f"unknown training option {key!r}")
        have = current[key]
        if key == "model":
            model_cfg = make_model_config(cfg, make_task(cfg))
            have = {k: v for k, v in model_cfg.to_dict().items() if k in value}
        if value != have:
            raise AttnvizError(f"{run_dir}: --resume continues the run as it was configured; {key} is {have!r} "
                               f"there, not {value!r} (start a new run to change it)")


def drop_snapshots_after(path: Path, step: int) -> None:
    """Remove the snapshots a killed run recorded after its last checkpoint (they are recorded again)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            later = [k for k in f.keys() if k.startswith("step_") and k[5:].isdigit() and int(k[5:]) > step]
    except OSError as e:
        raise AttnvizError(f"{path}: damaged ({str(e).splitlines()[0]}); move it away to resume without its "
                           "snapshots (the checkpoint is intact)") from None
    if later:
        _rewrite(path, lambda f: [f.__delitem__(k) for k in later])


def append_trace(path: Path, trace: Trace) -> None:
    """Add (or replace) one trace group in an HDF5 file, chunked and compressed. The file is
    changed in a copy that replaces it, so a run killed while writing leaves the last whole one."""
    from .io import write_group

    _rewrite(path, lambda f: write_group(f, trace, compression=True))


def _rewrite(path: Path, change) -> None:
    import shutil

    import h5py

    from .io import atomic_path

    with atomic_path(path) as tmp:
        if path.exists():
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a") as f:
            change(f)


def record(checkpoint, length: int, output, seed: int = 2014) -> Path:
    """Run a trained model (a checkpoint file or run folder) on a new sequence of ``length``
    and save its trace to ``output`` (.h5 or .npz)."""
    from .io import HDF5_SUFFIXES, NPZ_SUFFIXES, save

    output = Path(output)
    if output.suffix.lower() not in HDF5_SUFFIXES + NPZ_SUFFIXES:
        raise AttnvizError(f"{output}: unknown suffix {output.suffix!r}; use .h5, .hdf5 or .npz")
    source = _checkpoint_path(checkpoint)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise AttnvizError(f"{output}: the output is the checkpoint it would be recorded from")
    try:
        model, task, meta = load_model(source)
    except CheckpointError as e:
        raise AttnvizError(str(e)) from None
    if length < task.min_length:
        raise AttnvizError(f"length {length} is below the task's minimum of {task.min_length}")
    return save(record_trace(model, task, meta, checkpoint, length, seed), output)


def record_trace(model, task, meta: dict, checkpoint, length: int, seed: int, **make_options) -> Trace:
    """The trace of ``model`` (loaded from ``checkpoint``, a file or run folder, with its metadata
    ``meta``) on one new sequence, its metadata naming the checkpoint, its step and its run's seed."""
    try:
        arrays, metadata = trainer_record.record(model, task, length, seed, **make_options)
    except ValueError as e:
        raise AttnvizError(f"{_checkpoint_path(checkpoint)}: {e}") from None
    progress = meta.get("progress", {})
    metadata.update(step=int(progress.get("step", 0)), seed=int(meta["train"]["seed"]),
                    checkpoint=Path(checkpoint).name)
    return Trace(arrays, metadata)


def _checkpoint_path(path) -> Path:
    path = Path(path)
    if path.is_dir():
        best = path / "best.npz"
        return best if best.exists() else path / "checkpoint.npz"
    return path
