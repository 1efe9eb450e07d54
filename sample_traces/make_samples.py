"""Rebuild sample_traces/ from a converged run of the bundled trainer.

    attnviz train --task copy --seed 0 --run-dir runs/copy-seed0
    python sample_traces/make_samples.py runs/copy-seed0

Writes, beside this file:
  copy_len20.h5 / copy_len20.npz  the trained model on a new length-20 sequence (every array,
                                  memory included), the paper's figure;
  copy_len50.h5                   the same model on length 50 (generalisation beyond training);
  copy_training.h5                the probe trace early, midway and at the end of training;
  copy_checkpoint.npz             the best checkpoint's parameters and config (no optimiser
                                  state), for `attnviz record`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attnviz
from attnviz.ntm.train import load_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parent
COMMAND = "attnviz train --task copy --seed 0"


def main(run: Path) -> None:
    arrays, meta = load_checkpoint(run / "best.npz")
    params = {k: v for k, v in arrays.items() if k.startswith("param/")}
    save_checkpoint(HERE / "copy_checkpoint.npz", params, meta)
    for length, suffixes in ((20, (".h5", ".npz")), (50, (".h5",))):
        for suffix in suffixes:
            out = HERE / f"copy_len{length}{suffix}"
            attnviz.record(HERE / "copy_checkpoint.npz", length, out)
            t = attnviz.load(out)
            if length != 20:
                t = attnviz.Trace({k: v for k, v in t.arrays.items() if k != "memory"}, t.metadata, t.name)
            t.metadata.update(command=COMMAND, synthetic=False)
            attnviz.save(t, out)
    snapshots = list(attnviz.iter_traces(run / "traces.h5"))
    keep = [snapshots[0], snapshots[len(snapshots) // 2], snapshots[-1]]
    slim = []
    for t in keep:
        arrays = {k: v for k, v in t.arrays.items() if k != "memory"}
        slim.append(attnviz.Trace(arrays, dict(t.metadata, command=COMMAND, synthetic=False), t.name))
    attnviz.save(slim, HERE / "copy_training.h5")
    for p in sorted(HERE.glob("copy_*")):
        print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/copy-seed0"))
