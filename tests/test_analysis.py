"""The copy verdict: it must agree with the outputs, whatever implementation wrote the trace."""

import numpy as np
from test_plot import copy_trace

import attnviz
from attnviz.analysis import copy_diagnostics
from attnviz.inspect import summarize


def verdict(t):
    a = t.arrays
    return copy_diagnostics(a["write_weightings"], a["read_weightings"], t.metadata["sequence_length"],
                            a["outputs"], a["targets"], a.get("output_mask"))


def test_a_perfect_copy_with_diffuse_first_writes_from_anywhere_is_learned():
    # another implementation's habits: heads start at location 27, wrap at N, two diffuse first writes
    t = copy_trace(L=20, N=32, start=27, diffuse_writes=2)
    d = verdict(t)
    assert d["learned"] and d["wrong_bits"] == 0 and d["scored_bits"] == 160
    assert d["settle_steps"] == 2 and d["write"]["steady_fraction"] == 1.0


def test_a_read_slip_that_spoils_the_outputs_is_not_learned():
    t = copy_trace(L=30, N=64, slip=10)
    d = verdict(t)
    assert d["read"]["steady_fraction"] >= 0.9  # the heads alone still look right...
    assert d["wrong_bits"] > 0.01 * d["scored_bits"] and not d["learned"]  # ...the outputs do not


def test_inspect_scores_the_outputs_and_rebuilds_missing_targets(tmp_path):
    good = copy_trace(L=12, N=32, start=5)
    arrays = {k: v for k, v in good.arrays.items() if k not in ("targets", "output_mask")}
    attnviz.save(attnviz.Trace(arrays, good.metadata), tmp_path / "good.h5")
    slipped = copy_trace(L=30, N=64, slip=10)
    attnviz.save(slipped, tmp_path / "slip.npz")
    d = summarize(tmp_path / "good.h5")["traces"][0]["copy_diagnostics"]
    assert d["learned"] and d["wrong_bits"] == 0 and d["scored_bits"] == 12 * 8
    d = summarize(tmp_path / "slip.npz")["traces"][0]["copy_diagnostics"]
    assert not d["learned"] and d["wrong_bits"] > 0


def test_output_mask_is_checked(tmp_path, runner):
    from conftest import run

    t = copy_trace(L=4, N=16)
    arrays = dict(t.arrays, output_mask=np.where(t.arrays["output_mask"], 1.0, 0.0))
    attnviz.save(attnviz.Trace(arrays, t.metadata), tmp_path / "ok.h5")  # 0/1 floats are fine too
    assert run(runner, "validate", tmp_path / "ok.h5").exit_code == 0
    bad = dict(arrays)
    bad["output_mask"] = bad["output_mask"].copy()
    bad["output_mask"][6] = 0.5
    import pytest

    with pytest.raises(attnviz.TraceError, match="has value 0.5 at step 6; an output mask holds 0 or 1"):
        attnviz.Trace(bad)
    bad["output_mask"] = np.ones((9, 2))
    with pytest.raises(attnviz.TraceError, match=r"output_mask.*expected \(T,\)"):
        attnviz.Trace(bad)
