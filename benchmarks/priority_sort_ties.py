"""Where a trained priority sort loses its bits: the cost of each written-out item against how close
its priority lies to its nearest neighbour's in the sorted order.

    python benchmarks/priority_sort_ties.py RUN_DIR_OR_CHECKPOINT [--sequences 1000] [--seed 1020]

An NTM that writes each vector at a location linear in its priority (slope s locations per unit)
puts two vectors whose priorities differ by less than about 1/s at one location. The table gives, per
band of that gap, how many items fall in it and their share of all items written out, their mean
cross-entropy and wrong bits (per item: 8 bits), and the bits per sequence each band adds (the bands
add up to the whole cost). Fresh sequences from --seed, not the held-out set: by default those that
`attnviz generalise --lengths 20` scores (its probe seed for 20 items), so the whole cost is its
cost. Prints a table and a JSON line with the numpy version and BLAS kernel.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from kernel import blas_kernels

from attnviz.trainer.checkpoint import load_model

BANDS = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 2.0)  # gap to the nearest neighbour's priority


def item_costs(model, task, sequences: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per written-out item (selected, sequences): its cross-entropy in bits, its wrong bits, and the
    gap from its priority to the nearest priority beside it in the sorted order (the 17th counts)."""
    batch = task.make(np.random.default_rng(seed), sequences, task.max_length)
    logits, _ = model.forward(batch.x, cache=False)
    out = slice(batch.length + 1, None)
    y, z = batch.y[out], logits[out].astype(np.float64)
    bits = (np.logaddexp(0, z) - y * z).sum(axis=2) / np.log(2)  # binary cross-entropy, bits per item
    wrong = ((z > 0) != (y > 0.5)).sum(axis=2)
    ranked = -np.sort(-batch.x[: batch.length, :, task.width], axis=0)  # priorities, highest first
    steps = -np.diff(ranked, axis=0)  # (length - 1, sequences): the gap below each ranked item
    S, none = task.selected, np.full((1, sequences), np.inf)
    above = np.vstack([none, steps])[:S]  # the gap to the item ranked above: none for the first
    below = np.vstack([steps, none])[:S]  # and below: none for the last item of all
    return bits, wrong, np.minimum(above, below)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a run folder (its best.npz) or a checkpoint file")
    parser.add_argument("--sequences", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1020)
    args = parser.parse_args()
    path = args.source / "best.npz" if args.source.is_dir() else args.source
    model, task, meta = load_model(path)
    if task.name != "priority-sort":
        raise SystemExit(f"{path}: a {task.name} checkpoint; this measures priority sort")
    bits, wrong, gap = item_costs(model, task, args.sequences, args.seed)
    total = bits.sum() / args.sequences
    print(f"{path}: step {meta['progress']['step']:,}; {args.sequences:,} fresh sequences (seed {args.seed}): "
          f"{total:.2f} bits per sequence, {wrong.sum() / args.sequences:.2f} wrong bits per sequence")
    print(f"{'gap to nearest priority':>26} {'items':>7} {'share':>6} {'bits/item':>9} {'wrong/item':>10} "
          f"{'bits/seq':>8}")
    rows = []
    for lo, hi in zip(BANDS, BANDS[1:], strict=False):
        inside = (gap >= lo) & (gap < hi)
        n = int(inside.sum())
        row = {"gap_from": lo, "gap_to": hi, "items": n,  # per item: None in a band with none
               "bits_per_item": float(bits[inside].mean()) if n else None,
               "wrong_bits_per_item": float(wrong[inside].mean()) if n else None,
               "bits_per_seq": float(bits[inside].sum() / args.sequences)}
        rows.append(row)
        each = (f"{row['bits_per_item']:>9.2f} {row['wrong_bits_per_item']:>10.2f}" if n else f"{'-':>9} {'-':>10}")
        print(f"{lo:>11.2f} to {hi:<11.2f} {n:>7,} {n / gap.size:>6.1%} {each} {row['bits_per_seq']:>8.2f}")
    blas = blas_kernels()
    print(json.dumps({"checkpoint": str(path), "step": meta["progress"]["step"], "sequences": args.sequences,
                      "bits_per_seq": float(total), "bands": rows, "numpy": np.__version__, "blas": blas}))


if __name__ == "__main__":
    main()
