"""Training throughput of the two models on each task, with their defaults, in one run.

    python benchmarks/model_speed.py [--steps 200] [--tasks copy multi-copy] [--models ntm] [--batch-size 32]

For each task, the NTM and the DNC each train --steps steps from seed 0 (the same batches: the data
stream depends on the seed only) with two gradient processes, no evaluation, snapshot or checkpoint,
and the sequences per second of training are printed as a table and a JSON line, with the numpy
version and the BLAS kernel (threadpoolctl) they were measured with. `--models ntm` measures the NTM
alone, also in a checkout from before the trainer had two models (attnviz.ntm, as at commit d537c87).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from kernel import blas_kernels

try:
    from attnviz.trainer.config import TrainConfig
    from attnviz.trainer.tasks import TASKS
    from attnviz.trainer.train import Trainer, run
    TWO_MODELS = True
except ImportError:  # a checkout from before the DNC: the NTM alone, in attnviz.ntm
    from attnviz.ntm.config import TrainConfig
    from attnviz.ntm.tasks import TASKS
    from attnviz.ntm.train import Trainer, run
    TWO_MODELS = False


def throughput(model: str, task: str, steps: int, batch_size: int = 32) -> float:
    model_kw = {"architecture": model} if TWO_MODELS else {}
    trainer = Trainer(TrainConfig(task=task, seed=0, max_steps=steps, trace_every=0, checkpoint_every=0,
                                  checkpoint_seconds=1e9, eval_every=10**9, batch_size=batch_size, **model_kw))
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        run(trainer, d)
        seconds = time.perf_counter() - start
    trainer.close()
    return trainer.progress.sequences / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--models", nargs="+", default=["ntm", "dnc"] if TWO_MODELS else ["ntm"])
    parser.add_argument("--batch-size", type=int, default=32, help="sequences a step (the default's 32)")
    args = parser.parse_args()
    blas = blas_kernels()
    print(f"numpy {np.__version__}, BLAS {', '.join(blas)}; {args.steps} steps of {args.batch_size} sequences each")
    print(f"{'task':<20}" + "".join(f"{m.upper() + ' seq/s':>11}" for m in args.models)
          + (f"{'DNC/NTM':>9}" if args.models == ["ntm", "dnc"] else ""))
    rows = []
    for task in args.tasks:
        speed = {m: throughput(m, task, args.steps, args.batch_size) for m in args.models}
        rows.append({"task": task, **{f"{m}_sequences_per_second": round(v, 1) for m, v in speed.items()}})
        ratio = f"{speed['dnc'] / speed['ntm']:>9.2f}" if args.models == ["ntm", "dnc"] else ""
        print(f"{task:<20}" + "".join(f"{v:>11.0f}" for v in speed.values()) + ratio)
    print(json.dumps({"numpy": np.__version__, "blas": blas, "steps": args.steps, "batch_size": args.batch_size,
                      "rows": rows}))


if __name__ == "__main__":
    main()
