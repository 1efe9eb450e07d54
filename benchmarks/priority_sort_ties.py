"""Where a trained priority sort loses its bits: the cost of each written-out item against how close
its priority lies to its nearest neighbour's in the sorted order.

    python benchmarks/priority_sort_ties.py RUN_DIR_OR_CHECKPOINT [--sequences 1000] [--seed 2026]

An NTM that writes each vector at a location linear in its priority (slope s locations per unit)
puts two vectors whose priorities differ by less than about 1/s at one location. The table gives, per
band of that gap, how many items fall in it, their mean cross-entropy and wrong bits (per item: 8
bits), and each band's share of the whole cost per sequence. Fresh sequences from --seed, not the
held-out set. Prints a table and a JSON line with the numpy version and BLAS kernel.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

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
    S = task.selected
    above = np.vstack([np.full((1, sequences), np.inf), steps[: S - 1]])
    return bits, wrong, np.minimum(above, steps[:S])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a run folder (its best.npz) or a checkpoint file")
    parser.add_argument("--sequences", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    path = args.source / "best.npz" if args.source.is_dir() else args.source
    model, task, meta = load_model(path)
    if task.name != "priority-sort":
        raise SystemExit(f"{path}: a {task.name} checkpoint; this measures priority sort")
    bits, wrong, gap = item_costs(model, task, args.sequences, args.seed)
    total = bits.sum() / args.sequences
    print(f"{path}: step {meta['progress']['step']:,}; {args.sequences:,} fresh sequences (seed {args.seed}): "
          f"{total:.2f} bits per sequence, {wrong.sum() / args.sequences:.2f} wrong bits per sequence")
    print(f"{'gap to nearest priority':>24} {'items':>7} {'share':>6} {'bits/item':>9} {'wrong/item':>10} "
          f"{'bits/seq':>8}")
    rows = []
    for lo, hi in zip(BANDS, BANDS[1:], strict=False):
        inside = (gap >= lo) & (gap < hi)
        row = {"gap_from": lo, "gap_to": hi, "items": int(inside.sum()),
               "bits_per_item": float(bits[inside].mean()), "wrong_bits_per_item": float(wrong[inside].mean()),
               "bits_per_seq": float(bits[inside].sum() / args.sequences)}
        rows.append(row)
        print(f"{lo:>11.2f} to {hi:<11.2f} {row['items']:>7,} {row['items'] / gap.size:>6.1%} "
              f"{row['bits_per_item']:>9.2f} {row['wrong_bits_per_item']:>10.2f} {row['bits_per_seq']:>8.2f}")
    blas = sorted({f"{i['internal_api']} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()
                   if i["user_api"] == "blas"})
    print(json.dumps({"checkpoint": str(path), "step": meta["progress"]["step"], "sequences": args.sequences,
                      "bits_per_seq": float(total), "bands": rows, "numpy": np.__version__, "blas": blas}))


if __name__ == "__main__":
    main()
