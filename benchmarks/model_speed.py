"""Training throughput of the two models on each task, with their defaults, in one run.

    python benchmarks/model_speed.py [--steps 200] [--tasks copy multi-copy]

For each task, the NTM and the DNC each train --steps steps from seed 0 (the same batches: the data
stream depends on the seed only) with two gradient processes, no evaluation, snapshot or checkpoint,
and the sequences per second of training are printed as a table and a JSON line, with the numpy
version and the BLAS kernel (threadpoolctl) they were measured with.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_info

from attnviz.trainer.config import TrainConfig
from attnviz.trainer.tasks import TASKS
from attnviz.trainer.train import Trainer, run


def throughput(model: str, task: str, steps: int) -> float:
    trainer = Trainer(TrainConfig(architecture=model, task=task, seed=0, max_steps=steps, trace_every=0,
                                  checkpoint_every=0, checkpoint_seconds=1e9, eval_every=10**9))
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
    args = parser.parse_args()
    blas = sorted({f"{i['internal_api']} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()
                   if i["user_api"] == "blas"})
    print(f"numpy {np.__version__}, BLAS {', '.join(blas)}; {args.steps} steps of 32 sequences each")
    print(f"{'task':<20} {'NTM seq/s':>10} {'DNC seq/s':>10} {'DNC/NTM':>8}")
    rows = []
    for task in args.tasks:
        ntm, dnc = throughput("ntm", task, args.steps), throughput("dnc", task, args.steps)
        rows.append({"task": task, "ntm_sequences_per_second": round(ntm, 1),
                     "dnc_sequences_per_second": round(dnc, 1)})
        print(f"{task:<20} {ntm:>10.0f} {dnc:>10.0f} {dnc / ntm:>8.2f}")
    print(json.dumps({"numpy": np.__version__, "blas": blas, "steps": args.steps, "rows": rows}))


if __name__ == "__main__":
    main()
