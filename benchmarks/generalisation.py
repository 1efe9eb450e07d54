"""Wrong bits per sequence of the shipped copy checkpoint at lengths beyond training (1-20).

    python benchmarks/generalisation.py [--checkpoint sample_traces/copy_checkpoint.npz] [--n 100]
"""

from __future__ import annotations

import argparse

import numpy as np

from attnviz.analysis import copy_diagnostics
from attnviz.ntm.train import evaluate, load_model, record


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="sample_traces/copy_checkpoint.npz")
    ap.add_argument("--n", type=int, default=100, help="sequences per length")
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 50, 120])
    args = ap.parse_args()
    model, task, _ = load_model(args.checkpoint)
    print("| length | wrong bits per sequence (of 8 x length) | bits per sequence | learned walk (copy diagnostics) |")
    print("|---:|---:|---:|---|")
    for L in args.lengths:
        batch = task.make(np.random.default_rng(1000 + L), args.n, L)
        r = evaluate(model, [batch])
        arrays, _ = record(model, task, L, seed=L)
        d = copy_diagnostics(arrays["write_weightings"], arrays["read_weightings"], L)
        walk = (f"{'yes' if d['learned'] else 'no'}: write peak {d['write']['mean_peak']:.2f}, "
                f"steady {d['write']['steady_fraction']:.0%}; read peak {d['read']['mean_peak']:.2f}, "
                f"steady {d['read']['steady_fraction']:.0%}")
        print(f"| {L} | {r['wrong_bits']:.3f} | {r['bits']:.3f} | {walk} |")


if __name__ == "__main__":
    main()
