"""Rebuild sample_traces/ from a converged run of the bundled trainer.

    attnviz train --task copy --seed 0 --run-dir runs/copy-seed0
    python sample_traces/make_samples.py runs/copy-seed0

Writes, beside this file:
  copy_checkpoint.npz             the best checkpoint's parameters and config (no optimiser
                                  state), for `attnviz record`;
  copy_len20.h5 / copy_len20.npz  that model on a new length-20 sequence (every array,
                                  memory and the heads' addressing stages included), the paper's figure;
  copy_len50.h5                   the same model on length 50 (generalisation beyond training);
  copy_training.h5                the probe trace early, midway and at the end of training (as
                                  the run recorded it: its snapshots hold the addressing stages
                                  only if the run recorded them).

With --dnc COPY_RUN MULTI_COPY_RUN (converged runs of `attnviz train --model dnc --task copy --seed 0`
and `--task multi-copy --seed 0`) it writes the DNC's samples instead:
  dnc_copy_checkpoint.npz, dnc_multi_copy_checkpoint.npz   their best checkpoints' parameters;
  dnc_copy_len20.h5    the copy model on a new length-20 sequence, every DNC dataset included;
  dnc_multi_copy.h5    the multi-copy model on an episode of four copies through its 10 locations.

With --ngrams NGRAMS_RUN (a converged run of `attnviz train --task ngrams --seed 0`) it writes
  ngrams_checkpoint.npz  its best checkpoint's parameters;
  ngrams.h5              that model on a new sequence of 200 bits (5 first bits, then 200 drawn
                         from the sequence's own 6-gram table), with the optimal predictor's outputs.

With --priority-sort SORT_RUN (`attnviz train --task priority-sort --seed 0 --max-seconds 1800`) it writes
  priority_sort_checkpoint.npz  its best checkpoint's parameters;
  priority_sort.h5              that model on a new sequence of 20 vectors with their priorities.

Without a run folder it re-records the first three from the shipped checkpoint (the same
sequences, so the same arrays) and gives copy_training.h5's snapshots an output mask if they
were recorded before traces had one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import attnviz
from attnviz.trainer.checkpoint import load_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parent
COMMAND = "attnviz train --task copy --seed 0"


def without_memory(t: attnviz.Trace, **meta) -> attnviz.Trace:
    return attnviz.Trace({k: v for k, v in t.arrays.items() if k != "memory"}, dict(t.metadata, **meta), t.name)


def with_output_mask(t: attnviz.Trace) -> attnviz.Trace:
    """A copy trace recorded before traces carried output_mask: the copy scores steps L+1..2L."""
    if "output_mask" in t.arrays:
        return t
    L = int(t.metadata["sequence_length"])
    return attnviz.Trace(dict(t.arrays, output_mask=np.arange(t.steps) > L), t.metadata, t.name)


def record_samples() -> None:
    for length, suffixes in ((20, (".h5", ".npz")), (50, (".h5",))):
        for suffix in suffixes:
            out = HERE / f"copy_len{length}{suffix}"
            attnviz.record(HERE / "copy_checkpoint.npz", length, out)
            t = attnviz.load(out)
            t = without_memory(t) if length != 20 else t
            t.metadata.update(command=COMMAND, synthetic=False)
            attnviz.save(t, out)


DNC_COMMANDS = {"copy": "attnviz train --model dnc --task copy --seed 0",
                "multi_copy": "attnviz train --model dnc --task multi-copy --seed 0"}


def sample(run: Path | None, checkpoint: Path, size: int, out: Path, command: str) -> None:
    """A model's checkpoint (its run's best parameters, when a run is given) and the trace recorded from it."""
    if run is not None:
        arrays, meta = load_checkpoint(run / "best.npz")
        save_checkpoint(checkpoint, {k: v for k, v in arrays.items() if k.startswith("param/")}, meta)
    attnviz.record(checkpoint, size, out)
    t = attnviz.load(out)
    t.metadata.update(command=command, synthetic=False, checkpoint=checkpoint.name)
    attnviz.save(t, out)


def dnc_samples(copy_run: Path | None, multi_run: Path | None) -> None:
    for name, run, size in (("copy", copy_run, 20), ("multi_copy", multi_run, 4)):
        out = HERE / (f"dnc_{name}_len{size}.h5" if name == "copy" else f"dnc_{name}.h5")
        sample(run, HERE / f"dnc_{name}_checkpoint.npz", size, out, DNC_COMMANDS[name])


# The paper's other two tasks: option, file stem, size recorded, the command of the run.
PAPER_SAMPLES = {"--ngrams": ("ngrams", 200, "attnviz train --task ngrams --seed 0"),
                 "--priority-sort": ("priority_sort", 20,
                                     "attnviz train --task priority-sort --seed 0 --max-seconds 1800")}


def main(run: Path | None) -> None:
    if run is not None:
        arrays, meta = load_checkpoint(run / "best.npz")
        params = {k: v for k, v in arrays.items() if k.startswith("param/")}
        save_checkpoint(HERE / "copy_checkpoint.npz", params, meta)
        snapshots = list(attnviz.iter_traces(run / "traces.h5"))
        keep = [snapshots[0], snapshots[len(snapshots) // 2], snapshots[-1]]
        attnviz.save([without_memory(t, command=COMMAND, synthetic=False) for t in keep], HERE / "copy_training.h5")
    record_samples()
    attnviz.save([with_output_mask(t) for t in attnviz.iter_traces(HERE / "copy_training.h5")],
                 HERE / "copy_training.h5")
    for p in sorted(HERE.glob("copy_*")):
        print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--dnc"]:
        runs = [Path(a) for a in sys.argv[2:4]]
        dnc_samples(*(runs or [None, None]))
        for p in sorted(HERE.glob("dnc_*")):
            print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")
    elif sys.argv[1:2] and sys.argv[1] in PAPER_SAMPLES:
        stem, size, command = PAPER_SAMPLES[sys.argv[1]]
        sample(Path(sys.argv[2]) if len(sys.argv) > 2 else None, HERE / f"{stem}_checkpoint.npz", size,
               HERE / f"{stem}.h5", command)
        for p in sorted(HERE.glob(f"{stem}*")):
            print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")
    else:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
