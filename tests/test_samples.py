"""The bundled samples are what the README says: recorded from a real converged run."""

from pathlib import Path

import numpy as np

import attnviz

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"


def test_samples_are_valid_real_recordings_of_the_learned_walk():
    for name in ("copy_len20.h5", "copy_len20.npz", "copy_len50.h5"):
        t = attnviz.load(SAMPLES / name)
        assert not t.metadata["synthetic"]
        assert t.metadata["command"] == "attnviz train --task copy --seed 0"
        d = attnviz.copy_diagnostics(t.arrays["write_weightings"], t.arrays["read_weightings"],
                                     t.metadata["sequence_length"])
        assert d["learned"], (name, d)
        assert d["write"]["direction"] == d["read"]["direction"] == 1  # upwards, as in the paper


def test_shipped_checkpoint_records_the_walk_and_copies(tmp_path):
    out = tmp_path / "t.h5"
    attnviz.record(SAMPLES / "copy_checkpoint.npz", 30, out)
    t = attnviz.load(out)
    L = 30
    assert attnviz.copy_diagnostics(t.arrays["write_weightings"], t.arrays["read_weightings"], L)["learned"]
    wrong = (np.abs(t.arrays["outputs"][L + 1 :] - t.arrays["targets"][L + 1 :]) > 0.5).sum()
    assert wrong <= 2  # of 240 bits
