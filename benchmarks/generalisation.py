"""Wrong bits per sequence of the shipped copy checkpoint at lengths beyond training (1-20).

    python benchmarks/generalisation.py [--checkpoint sample_traces/copy_checkpoint.npz] [--n 100]

The numbers of `attnviz generalise` (attnviz.generalise: wrong bits, sequences failed outright,
that is with more wrong bits than steps, and cross-entropy, from the probe seeds 1000 + length),
and two columns of copy's own: `attnviz inspect`'s copy verdict on one recorded sequence of each
length, and the one input we know to be hard: the same sequences with their first vector all
zeros. At the first step such an input looks exactly like no input at all, and a model that moves
its write head only when it sees bits misplaces the whole sequence. It starts 1 in 256 random
sequences.
"""

from __future__ import annotations

import argparse

import numpy as np

from attnviz.analysis import copy_diagnostics
from attnviz.generalisation import generalise
from attnviz.trainer.checkpoint import load_model
from attnviz.trainer.loss import wrong_bits
from attnviz.trainer.record import record


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="sample_traces/copy_checkpoint.npz")
    ap.add_argument("--n", type=int, default=100, help="sequences per length")
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 50, 120])
    args = ap.parse_args()
    result = generalise(args.checkpoint, args.lengths, args.n, figure=False)
    model, task, _ = load_model(args.checkpoint)
    print("| length | wrong bits per sequence (of 8 x length) | failed outright | bits per sequence "
          "| learned copy (copy diagnostics, one recorded sequence) | first vector all zero: wrong bits, failed |")
    print("|---:|---:|---:|---:|---|---:|")
    for row in result["rows"]:
        L = row["length"]
        batch = task.make(np.random.default_rng(row["probe_seed"]), args.n, L)  # generalise's sequences
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
        print(f"| {L} | {row['wrong_bits_per_sequence']:.3f} | {row['failed_outright_fraction']:.0%} "
              f"| {row['cross_entropy_bits_per_sequence']:.3f} | {walk} "
              f"| {zero_wrong.mean():.2f}, {(zero_wrong > L).mean():.0%} |")


def wrong_per_sequence(model, batch) -> np.ndarray:
    return wrong_bits(model.forward(batch.x, cache=False)[0], batch.y, batch.mask)


if __name__ == "__main__":
    main()
