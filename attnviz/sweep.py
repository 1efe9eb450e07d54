"""Seed sweeps: one ordinary run folder per seed (``DIR/seed0``, ...), resumable, and sliced into
disjoint shards so that several machines share one sweep."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

from . import workers
from .errors import AttnvizError, OptionError
from .training import run_state, train

PARALLEL = 1  # seeds trained at once by default: one after another, each with every core (docs/performance.md)


def parse_seeds(text: str) -> list[int]:
    """'0-9', '3', '0,2,5-7' -> the seeds, in order, each once."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise OptionError(f"--seeds {text!r}: give seeds as 0-9, 3 or 0,2,5-7")
        first, last = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if last < first:
            raise OptionError(f"--seeds {text!r}: {first}-{last} counts down; write {last}-{first}")
        seeds += [s for s in range(first, last + 1) if s not in seeds]
    return seeds


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise OptionError(f"--shard {text!r} is not K/N (e.g. 1/4)")
    K, N = int(m[1]), int(m[2])
    if not (N >= 1 and 1 <= K <= N):
        raise OptionError(f"--shard {text}: K must be between 1 and N")
    return K, N


def shard_seeds(seeds: list[int], shard: tuple[int, int] = (1, 1)) -> list[int]:
    """The K-th of N disjoint slices of the seeds (every N-th seed from the K-th): together the N
    slices hold every seed once, and slices of a sorted range take turns on slow and fast seeds."""
    K, N = shard
    return seeds[K - 1 :: N]


def seed_dir(run_dir, seed: int) -> Path:
    return Path(run_dir) / f"seed{seed}"


def sweep(seeds, run_dir, task: str | None = None, shard: tuple[int, int] = (1, 1), parallel: int = PARALLEL,
          max_steps: int | None = None, max_seconds: float | None = None, config=None,
          on_event: Callable[[dict], None] | None = None, **overrides) -> list[dict]:
    """Train one run per seed into ``run_dir/seedS``, each an ordinary run folder.

    ``seeds``: a list, or text such as "0-9". Calling it again continues each unfinished seed
    from its checkpoint and skips those that converged, those that diverged (resumed, a run repeats
    its numbers exactly: it would diverge again) and those still running elsewhere. A seed that
    diverges is reported (its summary's "reason" is "diverged") and the sweep goes on.
    ``shard`` (K, N) trains only the K-th of N disjoint slices of the seeds. ``parallel`` seeds
    train at once, each with its share of the cores (1: one after another, each with all of them).
    ``max_steps``/``max_seconds`` limit each seed; ``config`` and ``overrides`` are attnviz.train's.
    ``on_event`` gets {"kind": "seed", "seed", "what": "start" | "done" | "skip", ...} and, after
    each, {"kind": "sweep", "done", "running", "left", "seconds"}. Returns one summary per seed of
    the slice, in seed order (a skipped seed's says why). Ctrl-C stops every seed after a checkpoint.
    """
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]
    K, N = shard
    if not (N >= 1 and 1 <= K <= N):
        raise OptionError(f"--shard {K}/{N}: K must be between 1 and N")
    if not parallel >= 1:
        raise OptionError(f"--parallel {parallel}: give 1 or more seeds at once")
    mine = shard_seeds(seeds, shard)
    emit = on_event or (lambda e: None)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    results: dict[int, dict] = {}
    todo = []
    for seed in mine:
        state = run_state(seed_dir(run_dir, seed))
        if state["state"] == "finished" and state["reason"] == "converged":
            results[seed] = {"seed": seed, "skipped": "converged", "run_dir": str(seed_dir(run_dir, seed))}
        elif state["state"] == "stopped" and state["reason"] == "diverged":  # resumed, it would again, exactly
            results[seed] = {"seed": seed, "skipped": "diverged", "run_dir": str(seed_dir(run_dir, seed))}
        elif state["state"] == "running":
            results[seed] = {"seed": seed, "skipped": "running in another process",
                             "run_dir": str(seed_dir(run_dir, seed))}
        else:
            todo.append((seed, state["state"] != "new"))
    started = time.perf_counter()
    running: set[int] = set()

    def report(seed, what, info=None):
        emit({**(info or {}), "kind": "seed", "seed": seed, "what": what})
        emit({"kind": "sweep", "done": len(results), "running": len(running),
              "left": len(mine) - len(results) - len(running), "seconds": time.perf_counter() - started})

    for seed, why in ((s, r["skipped"]) for s, r in results.items()):
        report(seed, "skip", {"why": why})
    kwargs = {"task": task, "max_steps": max_steps, "max_seconds": max_seconds, "config": config, **overrides}
    if parallel == 1 or len(todo) <= 1:
        for seed, resume in todo:
            running.add(seed)
            report(seed, "start", {"resume": resume})
            result = _train_seed(run_dir, seed, resume, kwargs)
            running.discard(seed)
            results[seed] = result
            report(seed, "done", result)
            if result.get("reason") == "interrupted":
                break
    else:
        _side_by_side(run_dir, todo, parallel, kwargs, results, running, report)
    return [results[s] for s in mine if s in results]


def _train_seed(run_dir, seed: int, resume: bool, kwargs: dict) -> dict:
    """One seed's run, new or resumed; an error becomes {"error": ...} so the sweep goes on."""
    kwargs = dict(kwargs)
    try:
        if resume:  # the sweep's options are checked against the run's own
            config = kwargs.pop("config")
            if config is not None:
                raise AttnvizError("--config starts new runs; this seed's folder has its own")
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            return {"seed": seed, **train(resume=seed_dir(run_dir, seed), seed=seed, **kwargs)}
        return {"seed": seed, **train(run_dir=seed_dir(run_dir, seed), seed=seed, **kwargs)}
    except AttnvizError as e:
        return {"seed": seed, "run_dir": str(seed_dir(run_dir, seed)), "error": str(e), "reason": "failed"}


def _side_by_side(run_dir, todo, parallel, kwargs, results, running, report) -> None:
    """Train ``parallel`` seeds at once, each in a forked process with one gradient process."""
    ctx = workers.context()
    done = ctx.Queue()
    kwargs = {**kwargs, "processes": 1}
    procs: dict[int, object] = {}
    queue = list(todo)
    stopping = {"now": False}

    parent = os.getpid()

    def on_signal(signum, frame):  # passed on to the seeds (they may get it from the group too)
        if os.getpid() != parent:  # a seed's process, before it set its own handlers
            return
        stopping["now"] = True
        for proc in procs.values():
            proc.terminate() if signum == signal.SIGTERM else os.kill(proc.pid, signal.SIGINT)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while queue or procs:
            while queue and len(procs) < parallel and not stopping["now"]:
                seed, resume = queue.pop(0)
                proc = ctx.Process(target=_child, args=(run_dir, seed, resume, kwargs, done))
                proc.start()
                procs[seed] = proc
                running.add(seed)
                report(seed, "start", {"resume": resume})
            if not procs:
                break
            result = done.get()
            procs.pop(result["seed"]).join()
            running.discard(result["seed"])
            results[result["seed"]] = result
            report(result["seed"], "done", result)
            if result.get("reason") == "interrupted":
                stopping["now"] = True
                for proc in procs.values():
                    proc.terminate()  # SIGTERM: each stops after a checkpoint
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child(run_dir, seed, resume, kwargs, done) -> None:
    """One seed in its own process. A signal may reach it twice (from its process group and from
    the sweep, which passes on what only it received): the first asks the run to stop after its
    step, the others change nothing."""
    asked: list[str] = []

    def on_signal(signum, frame):
        asked.append(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    kwargs = {**kwargs, "interrupted": lambda: asked[0] if asked else None}
    try:
        result = _train_seed(run_dir, seed, resume, kwargs)
    except BaseException as e:  # noqa: BLE001 - the parent waits for every seed's answer
        result = {"seed": seed, "run_dir": str(seed_dir(run_dir, seed)), "error": f"{type(e).__name__}: {e}",
                  "reason": "failed"}
    done.put(result)
