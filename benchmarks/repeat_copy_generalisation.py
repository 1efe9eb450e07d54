"""Repeat-copy beyond training (lengths 1-10, 1-10 repeats): longer sequences, more repeats.

    python benchmarks/repeat_copy_generalisation.py runs/rc/seed0 runs/rc/seed1 runs/rc/seed2 [--n 16]

For each checkpoint (a run folder: its best.npz) and each (length, repeats) case, --n fresh
sequences: wrong output bits per sequence (of the scored bits, end marker included), how many
sequences have no wrong bit, and whether the end marker comes at the right step. Prints a
markdown table. More repeats than 10 give a repeat-count input beyond any seen in training.
"""

from __future__ import annotations

import argparse

import numpy as np

from attnviz.ntm.checkpoint import load_model
from attnviz.ntm.model import wrong_bits

CASES = [(10, 10), (20, 5), (20, 10), (10, 15), (10, 20)]  # (length, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders or checkpoints")
    ap.add_argument("--n", type=int, default=16, help="sequences per case")
    args = ap.parse_args()
    print("| checkpoint | length | repeats | scored bits per sequence | wrong bits per sequence | no wrong bit "
          "| end marker at the right step |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        model, task, _ = load_model(run)
        for length, repeats in CASES:
            b = task.make(np.random.default_rng(1000 * length + repeats), args.n, length, repeats)
            logits, _ = model.forward(b.x)
            wrong = wrong_bits(logits, b.y, b.mask)
            end = length + 1 + length * repeats
            marker = (logits[:, :, task.width] > 0)  # (T, B) end-marker channel on
            right_end = marker[end] & ~(marker[: end] * b.mask[:end].astype(bool)).any(axis=0)
            scored = int(b.mask[:, 0].sum()) * task.output_size
            perfect = int((wrong == 0).sum())
            print(f"| {run} | {length} | {repeats} | {scored} | {wrong.mean():.2f} | {perfect}/{args.n} "
                  f"| {int(right_end.sum())}/{args.n} |", flush=True)


if __name__ == "__main__":
    main()
