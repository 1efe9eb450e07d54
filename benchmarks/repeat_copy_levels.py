"""What a repeat-copy model gets wrong, per repeat count and length, and where its read head goes.

    python benchmarks/repeat_copy_levels.py runs/rc/checkpoint.npz [--counts 1 2 3] [--walk 10 2]

For each repeat count, wrong bits per sequence at each length 1-10 on 64 fresh sequences (a seed of
its own, neither the training stream nor the held-out set); then, with --walk L R, one sequence of
length L and R repeats step by step: where the write and read heads focus (argmax and peak weight)
and the wrong bits of each output step. docs/ntm.md reads a stalled run with it.
"""

from __future__ import annotations

import argparse

import numpy as np

from attnviz.trainer.checkpoint import load_model
from attnviz.trainer.parallel import batch_scores


def by_length(model, task, counts, sequences=64, seed=7):
    rng = np.random.default_rng(seed)
    return {r: [float(batch_scores(model, *astuple(task.make(rng, sequences, L, r)))[1].mean())
                for L in range(task.min_length, task.max_length + 1)] for r in counts}


def astuple(b):
    return b.x, b.y, b.mask


def walk(model, task, length, repeats, seed=3):
    b = task.make(np.random.default_rng(seed), 1, length, repeats)
    logits, cache = model.forward(b.x)
    wrong = (((logits > 0) != (b.y > 0.5)) * b.mask[..., None]).sum(-1)[:, 0]
    W = model.cfg.write_heads
    for t, s in enumerate(cache["steps"]):
        w, r = s["out"][0].weighting[0], s["out"][W].weighting[0]
        print(f"step {t:3d}  write {int(w.argmax()):3d} ({w.max():.2f})  read {int(r.argmax()):3d} ({r.max():.2f})"
              f"  wrong bits {int(wrong[t])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--walk", type=int, nargs=2, metavar=("LENGTH", "REPEATS"))
    args = ap.parse_args()
    model, task, meta = load_model(args.checkpoint)
    p = meta["progress"]
    print(f"{args.checkpoint}: step {p['step']:,}, curriculum level {p['level']}")
    lengths = range(task.min_length, task.max_length + 1)
    print("wrong bits per sequence, 64 fresh sequences each | length " + " ".join(f"{L:5d}" for L in lengths))
    for r, row in by_length(model, task, args.counts).items():
        print(f"{r:2d} repeats" + " " * 41 + "| " + " ".join(f"{v:5.2f}" for v in row))
    if args.walk:
        walk(model, task, *args.walk)


if __name__ == "__main__":
    main()
