"""The NTM paper's other two tasks: dynamic N-grams (with its optimal predictor) and priority sort."""

import csv

import numpy as np
import pytest

from attnviz.trainer.checkpoint import load_model
from attnviz.trainer.config import TrainConfig
from attnviz.trainer.tasks import get_task
from attnviz.trainer.tasks.ngrams import contexts
from attnviz.trainer.train import Trainer, optimal_bits, run


def test_ngrams_layout_one_bit_a_step_predicting_the_next():
    task = get_task("ngrams")
    b = task.make(np.random.default_rng(0), 3, 200)
    assert b.x.shape == b.y.shape == (204, 3, 1)
    np.testing.assert_array_equal(b.x[1:], b.y[:-1])  # the target is the next input
    assert b.mask[:4].sum() == 0 and (b.mask[4:] == 1).all()  # the 200 bits drawn from the table are scored
    bits = np.concatenate([b.x[:, :, 0], b.y[-1:, :, 0]])
    ctx = contexts(bits)
    assert (ctx[:4] == -1).all() and ctx[4, 0] == sum(int(bits[4 - k, 0]) << k for k in range(5))


def test_ngrams_draws_each_bit_from_its_sequences_table():
    """With a table of 0s and 1s only, each bit after the first five is its context's table entry."""
    task = get_task("ngrams")
    rng = np.random.default_rng(1)
    b = task.make(rng, 64, 200)
    bits = np.concatenate([b.x[:, :, 0], b.y[-1:, :, 0]])
    ctx = contexts(bits)
    # within one sequence, a context whose table entry is near 0 or 1 is followed by the same bit nearly always
    agree = []
    for s in range(64):
        for c in range(32):
            after = bits[1:][ctx[:-1, s] == c, s]
            if len(after) >= 10:
                agree.append(max(after.mean(), 1 - after.mean()))
    assert np.mean(agree) > 0.75  # Beta(1/2, 1/2) puts most entries near 0 or 1: a coin would give about 0.6


def test_the_optimal_predictor_counts_what_followed_each_context():
    task = get_task("ngrams")
    b = task.make(np.random.default_rng(2), 2, 200)
    p = task.optimal(b)
    bits = np.concatenate([b.x[:, :, 0], b.y[-1:, :, 0]])
    ctx = contexts(bits)
    for s in range(2):
        for t in (4, 50, 203):
            before = [bits[u + 1, s] for u in range(4, t) if ctx[u, s] == ctx[t, s]]
            assert p[t, s, 0] == pytest.approx((sum(before) + 0.5) / (len(before) + 1))
    assert (p[:4] == 0.5).all()


def test_the_held_out_set_is_256_sequences_and_the_optimal_cost_is_in_bits():
    task = get_task("ngrams")
    heldout = task.heldout()
    assert sum(b.x.shape[1] for b in heldout) == 256
    for name, options, sizes in (("priority-sort", {}, [256]), ("priority-sort", {"min_length": 19}, [128, 128]),
                                 ("copy", {}, [8] * 20)):  # one length judged by its cost: 256; copy: 8 a length
        assert [b.x.shape[1] for b in get_task(name, **options).heldout(per_length=8)] == sizes
    bits = optimal_bits(task, heldout)
    assert 100 < bits < 200  # 200 scored bits: below 1 bit each, well above 0 (the paper: about 133)
    assert optimal_bits(get_task("copy"), get_task("copy").heldout()) is None


def test_an_ngrams_run_is_judged_by_the_bits_above_the_optimal_predictor(tmp_path):
    cfg = TrainConfig(task="ngrams", seed=0, max_steps=4, eval_every=2, trace_every=0, checkpoint_every=0,
                      batch_size=4, task_options={"min_length": 20, "max_length": 20},
                      model={"controller_size": 8, "memory_size": 8, "word_size": 4})
    trainer = Trainer(cfg)
    events = []
    run(trainer, tmp_path, events.append)
    evals = [e for e in events if e["kind"] == "eval"]
    assert evals[0]["score"] == pytest.approx(evals[0]["bits"] - evals[0]["optimal_bits"])
    assert trainer.progress.best == pytest.approx(min(e["score"] for e in evals))
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert float(rows[0]["heldout_optimal_bits_per_seq"]) == pytest.approx(trainer.optimal_bits, abs=1e-4)
    assert (cfg.converge_below, cfg.lr_decay_below) == (1.0, 3.0)
    assert cfg.model["read_gate_bias"] == trainer.model.cfg.read_gate_bias == 1.0  # its reads lean on content
    cfg = TrainConfig(task="copy", seed=0, max_steps=2, eval_every=2, trace_every=0, checkpoint_every=0,
                      batch_size=4, task_options={"max_length": 3}, model={"controller_size": 8, "memory_size": 8})
    run(Trainer(cfg), tmp_path / "copy")
    assert "heldout_optimal_bits_per_seq" not in (tmp_path / "copy" / "metrics.csv").read_text()


def test_priority_sorts_ntm_learns_its_initial_memory_and_resumes_exactly(tmp_path):
    """Priority sort's NTM learns its initial memory (Task.model_defaults); the memory is a parameter
    like any other: trained, checkpointed, and resumed to the same numbers as a run never stopped."""
    def cfg(steps):
        return TrainConfig(task="priority-sort", seed=0, max_steps=steps, eval_every=2, trace_every=0,
                           checkpoint_every=2, batch_size=4, task_options={"min_length": 5, "max_length": 5,
                                                                           "selected": 4},
                           model={"controller_size": 8, "memory_size": 8, "word_size": 4})
    whole = Trainer(cfg(4))
    start = whole.model.params["memory0"].copy()
    assert whole.model.cfg.learn_memory and np.unique(start).size == start.size  # every cell its own
    assert whole.model.cfg.read_gate_bias == 1.0  # its reads lean on content from the start, as N-grams'
    run(whole, tmp_path / "whole")
    assert not np.array_equal(whole.model.params["memory0"], start)
    run(Trainer(cfg(2)), tmp_path / "half")
    resumed = Trainer.load(tmp_path / "half" / "checkpoint.npz")
    resumed.cfg.max_steps = 4
    run(resumed, tmp_path / "half")
    np.testing.assert_array_equal(resumed.model.params["memory0"], whole.model.params["memory0"])
    model, _, _ = load_model(tmp_path / "half" / "checkpoint.npz")
    np.testing.assert_array_equal(model.params["memory0"], whole.model.params["memory0"])
    other = TrainConfig(task="priority-sort", architecture="dnc", model={"memory_size": 8, "word_size": 4})
    assert "memory0" not in Trainer(other).model.params  # the DNC's memory starts at 0, as before


def test_priority_sort_writes_out_the_highest_priorities_first():
    task = get_task("priority-sort")
    b = task.make(np.random.default_rng(3), 5, 20)
    assert b.x.shape == (37, 5, 10) and b.y.shape == (37, 5, 8) and b.mask.sum(axis=0).tolist() == [16] * 5
    assert (b.x[20, :, 9] == 1).all() and (b.x[:20, :, 9] == 0).all()
    for s in range(5):
        priority = b.x[:20, s, 8]
        assert priority.min() >= -1 and priority.max() <= 1
        top = np.argsort(-priority)[:16]
        np.testing.assert_array_equal(b.y[21:, s], b.x[top, s, :8])
    with pytest.raises(ValueError, match="selected=30"):
        get_task("priority-sort", selected=30)


@pytest.mark.parametrize("task, options, words", [
    ("ngrams", '{"min_length": 20, "max_length": 20}', ("bits/seq, optimal", "from the optimal predictor's")),
    ("priority-sort", '{"min_length": 5, "max_length": 5, "selected": 4}',
     ("bits/seq, wrong bits/seq", "best held-out cross-entropy")),
])
def test_train_says_what_a_run_is_judged_by(runner, tmp_path, task, options, words):
    from conftest import run as cli

    r = cli(runner, "train", "--task", task, "--run-dir", tmp_path / "r", "--max-steps", "4", "--batch-size", "4",
            "--processes", "1", "--trace-every", "0", "--memory-size", "8", "--word-size", "4",
            "--controller-size", "8", "--set", "eval_every=2", "--set", f"task_options={options}")
    assert r.exit_code == 0, r.output
    assert words[0] in r.stderr and words[1] in r.stdout
    r = cli(runner, "train", "--task", task, "--run-dir", tmp_path / "early", "--max-steps", "1", "--batch-size", "4",
            "--processes", "1", "--trace-every", "0", "--memory-size", "8", "--word-size", "4",
            "--controller-size", "8", "--set", f"task_options={options}")
    assert r.exit_code == 0 and "no held-out evaluation yet" in r.stdout and "inf" not in r.stdout, r.output


def test_recorded_traces_carry_the_optimal_predictions_and_the_channels():
    import attnviz
    from attnviz.trainer.models import create_model
    from attnviz.trainer.record import record

    small = {"controller_size": 8, "memory_size": 8, "word_size": 4}
    task = get_task("ngrams", min_length=30, max_length=30)
    arrays, meta = record(create_model(TrainConfig(task="ngrams", model=small), task), task, 30)
    t = attnviz.Trace(arrays, meta)
    b = task.make(np.random.default_rng(2014), 1, 30)
    np.testing.assert_allclose(t.baseline_outputs[:, 0], task.optimal(b)[:, 0, 0], rtol=1e-6)
    assert meta["context_bits"] == 5
    task = get_task("priority-sort")
    arrays, meta = record(create_model(TrainConfig(task="priority-sort", model=small), task), task, 20)
    assert (meta["priority_channel"], meta["delimiter_channel"], meta["selected"]) == (8, 9, 16)
    assert "baseline_outputs" not in arrays


def test_a_run_folders_curves_draw_the_optimal_predictor_and_the_threshold_it_is_judged_by(tmp_path):
    from attnviz.plot.run import _judging, draw_learning_curves, plot_run, read_metrics

    cfg = TrainConfig(task="ngrams", seed=0, max_steps=4, eval_every=2, trace_every=2, checkpoint_every=0,
                      batch_size=4, task_options={"min_length": 20, "max_length": 20},
                      model={"controller_size": 8, "memory_size": 8, "word_size": 4})
    run(Trainer(cfg), tmp_path)
    assert _judging(tmp_path) == {"judge": "excess_bits", "label": "held-out cross-entropy above the optimal "
                                  "predictor's, bits per sequence", "thresholds": [3.0, 1.0]}
    fig = draw_learning_curves(read_metrics(tmp_path / "metrics.csv"), 1.0, judge="excess_bits")
    wrong_ax, bits_ax = fig.axes
    labels = [line.get_label() for line in bits_ax.get_lines()]
    assert "the optimal predictor, held-out" in labels and "converged within 1 of it" in labels
    assert not any(label.startswith("converged") for label in (line.get_label() for line in wrong_ax.get_lines()))
    assert tmp_path / "figures" / "learning_curves.png" in plot_run(tmp_path)


def test_a_run_from_before_its_tasks_model_options_resumes_as_it_was_trained(tmp_path):
    """A checkpoint records the whole model config; a run from before N-grams set read_gate_bias, or
    priority sort learn_memory, resumes without them (not with the task's defaults of today)."""
    from attnviz.trainer.checkpoint import load_checkpoint, save_checkpoint

    small = {"controller_size": 8, "memory_size": 8, "word_size": 4}
    for task, option, before, size in (("ngrams", "read_gate_bias", None, {}),
                                       ("priority-sort", "learn_memory", False, {"selected": 4})):
        cfg = TrainConfig(task=task, seed=0, max_steps=2, eval_every=2, trace_every=0, checkpoint_every=2,
                          batch_size=4, task_options={"min_length": 5, "max_length": 5, **size}, model=small)
        run(Trainer(cfg), tmp_path / task)
        arrays, meta = load_checkpoint(tmp_path / task / "checkpoint.npz")
        del meta["model"][option], meta["train"]["model"][option]  # as a checkpoint from before the option
        arrays.pop("param/memory0", None), arrays.pop("opt/m/memory0", None), arrays.pop("opt/v/memory0", None)
        save_checkpoint(tmp_path / task / "old.npz", arrays, meta)
        resumed = Trainer.load(tmp_path / task / "old.npz")
        assert resumed.cfg.model[option] == getattr(resumed.model.cfg, option) == before
        assert resumed.cfg.model["memory_size"] == 8
        assert load_model(tmp_path / task / "old.npz")[0].cfg.memory_size == 8
