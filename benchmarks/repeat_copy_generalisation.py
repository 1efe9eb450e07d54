"""Repeat-copy beyond training (lengths 1-10, 1-10 repeats): longer sequences, more repeats.

    python benchmarks/repeat_copy_generalisation.py runs/rc/seed0 runs/rc/seed1 runs/rc/seed2 [--n 16]

`attnviz generalise CHECKPOINT --lengths 10,20 --repeats 5,10,15,20 --sequences 16`
(attnviz.generalise, probe seeds 1000 x length + repeats) for each checkpoint, five of its cases:
wrong output bits per sequence (of the scored bits, end marker included), how many sequences have
no wrong bit, and whether the end marker comes at the right step. Prints a markdown table. More
repeats than 10 give a repeat-count input beyond any seen in training.

A run folder stands for its checkpoint.npz, the state the run stopped in (converged: its last 10
held-out evaluations below 0.1), as docs/performance.md measured it; `attnviz generalise RUN_DIR`
reads the run's best.npz, the state of its lowest held-out evaluation, instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnviz.generalisation import generalise

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
        checkpoint = Path(run) / "checkpoint.npz" if Path(run).is_dir() else run
        result = generalise(checkpoint, [L for L, _ in CASES], args.n, [r for _, r in CASES], figure=False)
        rows = {(row["length"], row["repeats"]): row for row in result["rows"]}
        for length, repeats in CASES:
            row = rows[length, repeats]
            perfect = round(row["no_wrong_bit_fraction"] * args.n)
            right_end = round(row["end_marker_right_fraction"] * args.n)
            print(f"| {run} | {length} | {repeats} | {row['scored_bits_per_sequence']} "
                  f"| {row['wrong_bits_per_sequence']:.2f} | {perfect}/{args.n} | {right_end}/{args.n} |", flush=True)


if __name__ == "__main__":
    main()
