"""Is attnviz.train() in a plain Python session (a notebook) as fast as `attnviz train`?

    python benchmarks/blas_threads.py [--steps 300]

Trains copy (seed 0, two gradient processes) for --steps steps in three fresh interpreters, none
with a *_NUM_THREADS variable set, and reports training sequences per second:
  library   as attnviz is: the trainer limits BLAS to one thread per process at run time;
  no limit  the same with that limit switched off (numpy's BLAS starts one thread per core);
  env var   no limit in the library, OPENBLAS_NUM_THREADS=1 set before numpy is imported (what
            the command line did before the library set the limit itself).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CODE = """
import json, sys, time
import attnviz.trainer.parallel as parallel, attnviz.trainer.train as train
if {disable}:
    class NoLimit:
        def __init__(self, *a, **k): pass
        def restore_original_limits(self): pass
    train.threadpool_limits = parallel.threadpool_limits = NoLimit
from threadpoolctl import threadpool_info
from attnviz.trainer.config import TrainConfig
t = train.Trainer(TrainConfig(seed=0, max_steps={steps}, trace_every=0, checkpoint_every=0, eval_every=10**9))
start = time.perf_counter()
import tempfile
with tempfile.TemporaryDirectory() as d:
    train.run(t, d)
seconds = time.perf_counter() - start
blas = sorted({{i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}})
print(json.dumps({{"sequences_per_second": t.progress.sequences / seconds, "blas_threads_outside_training": blas}}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    cases = [("library", False, {}), ("no limit", True, {}), ("env var", True, {"OPENBLAS_NUM_THREADS": "1"})]
    for name, disable, extra in cases:
        out = subprocess.run([sys.executable, "-c", CODE.format(disable=disable, steps=args.steps)],
                             env={**clean, **extra}, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{name:9s} {r['sequences_per_second']:8.0f} sequences/s "
              f"(BLAS threads outside training: {r['blas_threads_outside_training']})", flush=True)


if __name__ == "__main__":
    main()
