"""How long does `attnviz train` take to learn a task with its defaults? Per seed.

    python benchmarks/train_convergence.py --seeds 0 1 2 [--max-seconds 600] [--set 'task="repeat-copy"']

Runs the real trainer (attnviz.trainer.train) with its defaults (or --set overrides of TrainConfig
fields) in a temporary folder and reports, per seed: wall time and sequences until sustained
convergence (held-out wrong bits per sequence below converge_below, 0.1, for 10 evaluations in a
row), training throughput, and for each of the thresholds 1 and 0.1 when held-out wrong bits per
sequence first fell below it and when they first stayed below it for 10 evaluations in a row.
--set converge_below=1 stops a run at the first of those instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
from kernel import blas_kernels

from attnviz.trainer.config import TrainConfig
from attnviz.trainer.train import Trainer, run


def one(seed: int, max_seconds: float, overrides: dict, keep: str | None = None) -> dict:
    cfg = TrainConfig(**{"seed": seed, "max_seconds": max_seconds, "trace_every": 0, "checkpoint_every": 0,
                         **overrides})
    trainer = Trainer(cfg)
    evals = []
    t0 = time.perf_counter()

    def on_event(e):
        if e["kind"] == "eval":
            evals.append((e["sequences"], round(e["seconds"], 2), round(e["wrong_bits"], 4)))
            note = " - rolled back to the best" if e["rolled_back"] else ""
            level = f" curriculum level {e['level']}" if cfg.curriculum_start else ""
            print(f"  seed {seed} step {e['step']:6d} seqs {e['sequences']:7d} {e['seconds']:6.1f}s "
                  f"held-out wrong bits {e['wrong_bits']:.3f}{level}{note}", file=sys.stderr, flush=True)

    if keep:  # keep the run folder (best.npz, metrics.csv) to look at afterwards
        reason = run(trainer, f"{keep}/seed{seed}", on_event)
    else:
        with tempfile.TemporaryDirectory() as d:
            reason = run(trainer, d, on_event)
    wall = time.perf_counter() - t0
    p = trainer.progress
    return {"seed": seed, "reason": reason, "wall_seconds": round(wall, 1), "sequences": p.sequences,
            "streak_began_at_sequences": p.converged_at, "sequences_per_second": round(p.sequences / wall, 1),
            "best_wrong_bits": p.best, "rollbacks": p.rollbacks,
            "below": {str(x): crossings(evals, x) for x in (1.0, 0.1)}, "evals": evals}


def crossings(evals, threshold: float, patience: int = 10) -> dict:
    """When held-out wrong bits first fell below ``threshold`` and when they first stayed below it for
    ``patience`` evaluations in a row (the start of that streak): (seconds, sequences), or None."""
    first = next(((s, n) for n, s, w in evals if w < threshold), None)
    streak, start = 0, None
    for n, s, w in evals:
        streak = streak + 1 if w < threshold else 0
        start = (s, n) if streak == 1 else start
        if streak == patience:
            return {"first": first, "sustained": start}
    return {"first": first, "sustained": None}


def blas_kernel() -> str:
    """The BLAS library, its version and the kernel it runs on this machine, e.g. "openblas 0.3.31
    SkylakeX" (OPENBLAS_CORETYPE can choose another: the same seed can then round differently)."""
    return "; ".join(blas_kernels()) or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--set", nargs="*", action="extend", default=[],
                    help="TrainConfig overrides as key=json, e.g. lr=0.002 (several after one --set, or --set again)")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--keep", metavar="DIR", help="keep each run's folder as DIR/seedN")
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    blas = blas_kernel()
    print(f"numpy {np.__version__}, BLAS {blas}", flush=True)
    results = []
    for seed in args.seeds:
        r = one(seed, args.max_seconds, overrides, args.keep)
        results.append(r)
        below = "; ".join(f"below {x}: first {v['first']}, 10 in a row from {v['sustained']}"
                          for x, v in r["below"].items())
        print(f"seed {seed}: {r['reason']} after {r['wall_seconds']} s, {r['sequences']} sequences, "
              f"{r['sequences_per_second']} seq/s; (seconds, sequences) {below}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"overrides": overrides, "numpy": np.__version__, "blas": blas, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
