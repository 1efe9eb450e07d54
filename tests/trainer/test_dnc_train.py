"""The DNC through the shared trainer: runs, resumes exactly, records its trace, loads from a
checkpoint; its options are its own; and the memory-reuse task."""

import json

import numpy as np
import pytest

from attnviz.trace import Trace
from attnviz.trainer.checkpoint import load_model
from attnviz.trainer.config import TrainConfig
from attnviz.trainer.dnc import DNC
from attnviz.trainer.models import make_model_config
from attnviz.trainer.record import record
from attnviz.trainer.tasks import get_task
from attnviz.trainer.train import Trainer, run

SMALL = {"controller_size": 16, "memory_size": 8, "word_size": 6}


def small(max_steps, task="copy", **kw):
    return TrainConfig(architecture="dnc", task=task, seed=2, max_steps=max_steps, eval_every=5, trace_every=4,
                       checkpoint_every=3, batch_size=8, task_options={"max_length": 4}, model=SMALL, **kw)


def test_a_dnc_run_resumes_exactly_and_records_its_memory(tmp_path):
    a = Trainer(small(12))
    events = []
    run(a, tmp_path / "a", events.append)
    assert isinstance(a.model, DNC)
    b = Trainer(small(6))
    run(b, tmp_path / "b")
    b = Trainer.load(tmp_path / "b" / "checkpoint.npz")
    b.cfg.max_steps = 12
    run(b, tmp_path / "b")
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    assert json.loads((tmp_path / "a" / "config.json").read_text())["architecture"] == "dnc"
    trace = next(e for e in events if e["kind"] == "trace")
    t = Trace(trace["arrays"], trace["metadata"])
    T, N = t.steps, 8
    assert t.metadata["model"] == "attnviz.dnc"
    assert t.usage.shape == (T, N) and t.link_matrices.shape == (T, N, N) and t.read_modes.shape == (T, 3)
    assert t.dnc_write_gates.shape == t.allocation_gates.shape == t.free_gates.shape == (T,)
    np.testing.assert_allclose(t.read_modes.sum(axis=1), 1, atol=1e-5)
    assert (t.usage >= 0).all() and (t.usage <= 1 + 1e-6).all()
    assert np.abs(np.diagonal(t.link_matrices, axis1=1, axis2=2)).max() == 0


def test_a_dnc_checkpoint_loads_as_a_dnc_and_records(tmp_path):
    t = Trainer(small(3))
    run(t, tmp_path)
    model, task, _ = load_model(tmp_path / "checkpoint.npz")
    assert isinstance(model, DNC) and model.cfg.memory_size == 8
    arrays, meta = record(model, task, length=5)
    assert arrays["write_weightings"].shape == (11, 8) and meta["model"] == "attnviz.dnc"
    # the write weighting is the gated mix of allocation and content: at most 1 in all
    assert (arrays["write_weightings"].sum(axis=1) <= 1 + 1e-5).all()


def test_an_option_of_the_other_model_is_named():
    with pytest.raises(ValueError, match="shift_bias is an option of the NTM, not of the DNC"):
        make_model_config(TrainConfig(architecture="dnc", model={"shift_bias": "forward"}), get_task("copy"))
    with pytest.raises(ValueError, match="free_gate_bias is an option of the DNC, not of the NTM"):
        make_model_config(TrainConfig(model={"free_gate_bias": 1.0}), get_task("copy"))
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        make_model_config(TrainConfig(architecture="lstm"), get_task("copy"))


def test_multi_copy_reads_each_copy_back_before_the_next():
    task = get_task("multi-copy")
    b = task.make(np.random.default_rng(0), 2, 3, items=[2, 4, 3])
    assert b.x.shape == (5 + 9 + 7, 2, 7) and b.mask.sum(axis=0).tolist() == [9, 9]
    # the delimiters, and each copy's targets right after its delimiter
    assert np.flatnonzero(b.x[:, 0, 6]).tolist() == [2, 9, 17]
    np.testing.assert_array_equal(b.y[3:5], b.x[0:2, :, :6])
    np.testing.assert_array_equal(b.y[10:14], b.x[5:9, :, :6])
    np.testing.assert_array_equal(b.y[18:21], b.x[14:17, :, :6])
    assert make_model_config(TrainConfig(architecture="dnc", task="multi-copy"), task).memory_size == 10
    levels = {task.sample(np.random.default_rng(s), 4, level=2).length for s in range(20)}
    assert levels == {1, 2}


def test_the_command_line_offers_every_task_and_model():
    from attnviz.cli import ModelName, TaskName
    from attnviz.trainer.models import MODELS
    from attnviz.trainer.tasks import TASKS

    assert [t.value for t in TaskName] == list(TASKS)
    assert [m.value for m in ModelName] == list(MODELS)


def test_an_option_of_the_other_model_is_a_usage_error(runner, tmp_path):
    from conftest import run as cli

    result = cli(runner, "train", "--model", "dnc", "--set", "model.shift_bias=forward", "--run-dir", tmp_path / "r")
    assert result.exit_code == 2 and "shift_bias is an option of the NTM, not of the DNC" in result.stderr
    assert not (tmp_path / "r").exists()
