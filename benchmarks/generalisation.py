"""Wrong bits per sequence of the shipped copy checkpoint at lengths beyond training (1-20).

    python benchmarks/generalisation.py [--checkpoint sample_traces/copy_checkpoint.npz] [--n 100]

Also counts the sequences that fail outright (more than one wrong bit per step), and measures
the one input we know to be hard: a sequence whose first vector is all zeros. At the first step
such an input looks exactly like no input at all, and a model that moves its write head only
when it sees bits misplaces the whole sequence. It starts 1 in 256 random sequences.
"""

from __future__ import annotations

import argparse

import numpy as np

from attnviz.analysis import copy_diagnostics
from attnviz.ntm.checkpoint import load_model
from attnviz.ntm.model import wrong_bits
from attnviz.ntm.record import record
from attnviz.ntm.train import evaluate


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="sample_traces/copy_checkpoint.npz")
    ap.add_argument("--n", type=int, default=100, help="sequences per length")
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 50, 120])
    args = ap.parse_args()
    model, task, _ = load_model(args.checkpoint)
    print("| length | wrong bits per sequence (of 8 x length) | failed outright | bits per sequence "
          "| learned copy (copy diagnostics, one recorded sequence) | first vector all zero: wrong bits, failed |")
    print("|---:|---:|---:|---:|---|---:|")
    for L in args.lengths:
        batch = task.make(np.random.default_rng(1000 + L), args.n, L)
        r = evaluate(model, [batch])
        failed = float((wrong_per_sequence(model, batch) > L).mean())
        batch.x[0, :, : task.width] = 0
        batch.y[L + 1] = 0
        zero_wrong = wrong_per_sequence(model, batch)
        arrays, _ = record(model, task, L, seed=L)
        d = copy_diagnostics(arrays["write_weightings"], arrays["read_weightings"], L, arrays["outputs"],
                             arrays["targets"], arrays["output_mask"])
        walk = (f"{'yes' if d['learned'] else 'no'} ({d['wrong_bits']} of {d['scored_bits']} bits wrong): "
                f"write peak {d['write']['mean_peak']:.2f}, "
                f"steady {d['write']['steady_fraction']:.0%}; read peak {d['read']['mean_peak']:.2f}, "
                f"steady {d['read']['steady_fraction']:.0%}")
        print(f"| {L} | {r['wrong_bits']:.3f} | {failed:.0%} | {r['bits']:.3f} | {walk} "
              f"| {zero_wrong.mean():.2f}, {(zero_wrong > L).mean():.0%} |")


def wrong_per_sequence(model, batch) -> np.ndarray:
    return wrong_bits(model.forward(batch.x)[0], batch.y, batch.mask)


if __name__ == "__main__":
    main()
