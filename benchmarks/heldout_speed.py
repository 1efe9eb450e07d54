"""Held-out evaluation on two processes: the task's held-out batches whole, against cut into pieces of
HELDOUT_PIECE sequences (what the trainer does), in one run.

    python benchmarks/heldout_speed.py [--task priority-sort] [--repeats 10]

Priority sort's 256 held-out sequences are one batch of the task: scored whole, one process does it
while the other waits. The same model scores both, and the costs are printed beside the times (equal
within rounding). Prints a table and a JSON line with the numpy version and BLAS kernel.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from kernel import blas_kernels
from threadpoolctl import threadpool_limits

from attnviz.trainer.config import TrainConfig
from attnviz.trainer.train import HELDOUT_PIECE, Trainer, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="priority-sort")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    blas = blas_kernels()
    trainer = Trainer(TrainConfig(task=args.task, seed=0, processes=2))
    whole = trainer.task.heldout(per_length=trainer.cfg.heldout_per_length)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):  # as in training
        for name, batches in (("whole", whole), (f"pieces of {HELDOUT_PIECE}", trainer.heldout)):
            evaluate(trainer.model, batches, trainer.pool.scores)  # warm up
            start = time.perf_counter()
            for _ in range(args.repeats):
                result = evaluate(trainer.model, batches, trainer.pool.scores)
            seconds = (time.perf_counter() - start) / args.repeats
            rows.append({"held_out": name, "batches": len(batches), "seconds": round(seconds, 4),
                         "bits_per_seq": result["bits"]})
    trainer.close()
    print(f"numpy {np.__version__}, BLAS {', '.join(blas)}; {args.task}, "
          f"{sum(b.x.shape[1] for b in whole)} held-out sequences, two processes")
    for r in rows:
        print(f"{r['held_out']:<14}{r['batches']:>4} batches {r['seconds']:>8.3f} s  "
              f"{r['bits_per_seq']:.6f} bits per sequence")
    print(f"whole / pieces: {rows[0]['seconds'] / rows[1]['seconds']:.2f}x")
    print(json.dumps({"numpy": np.__version__, "blas": blas, "task": args.task, "rows": rows}))


if __name__ == "__main__":
    main()
