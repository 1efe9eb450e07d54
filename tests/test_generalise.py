"""attnviz generalise: a checkpoint beyond the sizes it was trained on, as numbers, a figure and a trace."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import attnviz
from attnviz.errors import OptionError
from attnviz.generalisation import generalise
from attnviz.trainer.checkpoint import load_model
from attnviz.trainer.config import TrainConfig
from attnviz.trainer.loss import wrong_bits
from attnviz.trainer.train import Trainer
from attnviz.trainer.train import run as train_run

from conftest import run

SHIPPED = Path(__file__).parent.parent / "sample_traces" / "copy_checkpoint.npz"
TINY = {"controller_size": 16, "memory_size": 16, "word_size": 6}


def tiny_run(path: Path, task: str, **task_options) -> Path:
    """A run folder of two training steps: a model that has learned nothing yet."""
    cfg = TrainConfig(task=task, seed=0, max_steps=2, eval_every=50, trace_every=0, checkpoint_every=0,
                      processes=1, task_options=task_options, model=TINY)
    train_run(Trainer(cfg), path)
    return path


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped copy checkpoint at 10 (in training) and 120 (six times beyond), as docs/performance.md."""
    out = tmp_path_factory.mktemp("shipped")
    return generalise(SHIPPED, [120, 10], 100, output=out / "generalise.png"), out


def test_the_shipped_checkpoint_copies_length_120_as_docs_performance_says(shipped):
    result, out = shipped
    short, long = result["rows"]  # sorted by size
    assert (short["length"], long["length"]) == (10, 120)
    assert (short["probe_seed"], long["probe_seed"]) == (1010, 1120)  # 1000 + length, as the benchmark
    assert short["wrong_bits_per_sequence"] == 0.05 and long["wrong_bits_per_sequence"] == 0.08
    assert short["failed_outright_fraction"] == long["failed_outright_fraction"] == 0.0
    assert (short["cross_entropy_bits_per_sequence"], long["cross_entropy_bits_per_sequence"]) == pytest.approx(
        (2.436, 20.436), abs=5e-4)
    assert (short["scored_bits_per_sequence"], long["scored_bits_per_sequence"]) == (80, 960)
    assert (short["output_steps_per_sequence"], long["output_steps_per_sequence"]) == (10, 120)
    assert short["in_training_range"] and not long["in_training_range"]
    assert result["training_range"] == {"length": [1, 20]} and result["task"] == "copy"
    assert result["sequences_per_size"] == 100 and "end_marker_right_fraction" not in long


def test_the_trace_of_the_longest_size_is_written_beside_the_figure(shipped):
    result, out = shipped
    assert result["figure"] == str(out / "generalise.png") and result["trace"] == str(out / "generalise_len120.h5")
    assert result["trace_size"] == {"length": 120}
    assert (out / "generalise.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trace = attnviz.load(out / "generalise_len120.h5")
    assert trace.metadata["sequence_length"] == 120 and trace.metadata["probe_seed"] == 1120
    assert trace.metadata["checkpoint"] == "copy_checkpoint.npz" and trace.metadata["step"] == result["step"]
    assert trace.inputs.shape == (241, 9)
    assert attnviz.validate_file(out / "generalise_len120.h5") == []


def test_rows_are_the_held_out_scores_of_the_probe_seeds_sequences(tmp_path):
    path = tiny_run(tmp_path / "copy", "copy", max_length=4)
    result = generalise(path, [3, 9], np.int64(7), figure=False)
    assert json.loads(json.dumps(result)) == result
    model, task, _ = load_model(path / "checkpoint.npz")  # two steps: no held-out evaluation, no best.npz
    assert result["checkpoint"] == str(path / "checkpoint.npz")
    for row in result["rows"]:
        b = task.make(np.random.default_rng(1000 + row["length"]), 7, row["length"])
        wrong = wrong_bits(model.forward(b.x)[0], b.y, b.mask)
        assert row["wrong_bits_per_sequence"] == pytest.approx(wrong.mean())
        assert row["failed_outright_fraction"] == pytest.approx((wrong > row["length"]).mean())
    assert result["rows"][1]["failed_outright_fraction"] == 1.0  # a model that learned nothing fails outright
    assert result["figure"] is result["trace"] is None and not list(path.glob("generalise*"))


def test_repeat_copy_varies_length_and_repeat_count(tmp_path):
    path = tiny_run(tmp_path / "rc", "repeat-copy", max_length=3, max_repeats=4)
    result = generalise(path, sequences=5)
    cases = [(row["length"], row["repeats"]) for row in result["rows"]]
    assert cases == [(L, r) for L in (3, 6) for r in (2, 4, 6, 8)]  # the defaults: 1 and 2 x the length, ...
    assert result["training_range"] == {"length": [1, 3], "repeats": [1, 4]}
    assert [row["in_training_range"] for row in result["rows"]] == [True, True] + [False] * 6
    model, task, _ = load_model(path / "checkpoint.npz")
    row = result["rows"][1]
    assert row["probe_seed"] == 3004  # 1000 x length + repeats
    b = task.make(np.random.default_rng(3004), 5, 3, 4)
    assert row["wrong_bits_per_sequence"] == pytest.approx(wrong_bits(model.forward(b.x)[0], b.y, b.mask).mean())
    assert row["output_steps_per_sequence"] == 3 * 4 + 1 and row["scored_bits_per_sequence"] == 13 * 9
    assert 0 <= row["end_marker_right_fraction"] <= 1
    assert result["figure"] == str(path / "generalise.png")  # a run folder: the figure in it
    assert result["trace"] == str(path / "generalise_len6_repeats8.h5")
    trace = attnviz.load(result["trace"])
    assert trace.metadata["repeats"] == 8 and trace.metadata["sequence_length"] == 6
    assert trace.inputs.shape == (6 * 9 + 2, 10)


def test_associative_recall_varies_the_number_of_items(tmp_path):
    path = tiny_run(tmp_path / "ar", "associative-recall", max_length=4)
    result = generalise(path, sequences=4, output=tmp_path / "ar.svg")
    assert [row["items"] for row in result["rows"]] == [2, 4, 6, 8, 12]
    assert [row["probe_seed"] for row in result["rows"]] == [1002, 1004, 1006, 1008, 1012]
    assert all(row["output_steps_per_sequence"] == 3 and row["scored_bits_per_sequence"] == 18
               for row in result["rows"])
    assert result["trace"] == str(tmp_path / "ar_items12.h5")
    assert attnviz.load(result["trace"]).inputs.shape == (12 * 4 + 2 * 3 + 2, 8)  # the steps the limits count
    assert (tmp_path / "ar.svg").read_text().startswith("<?xml")
    with pytest.raises(OptionError, match="2 items or more"):
        generalise(path, [1], figure=False)
    with pytest.raises(OptionError, match="--repeats applies to repeat-copy"):
        generalise(path, repeats=[3], figure=False)


def test_a_dnc_runs_with_more_memory_than_it_trained_with(tmp_path):
    """No parameter depends on the number of locations: --memory-size runs the same model in a larger
    memory, and its trace shows them all."""
    cfg = TrainConfig(architecture="dnc", task="copy", seed=0, max_steps=2, eval_every=50, trace_every=0,
                      checkpoint_every=0, processes=1, task_options={"max_length": 4}, model=TINY)
    train_run(Trainer(cfg), tmp_path / "dnc")
    small = generalise(tmp_path / "dnc", [20], 4, figure=False)
    large = generalise(tmp_path / "dnc", [20], 4, output=tmp_path / "g.png", memory_size=48)
    assert (small["memory_size"], large["memory_size"]) == (16, 48)
    assert attnviz.load(large["trace"]).write_weightings.shape == (41, 48)
    with pytest.raises(OptionError, match="--memory-size 0"):
        generalise(tmp_path / "dnc", [20], 4, figure=False, memory_size=0)


def test_a_learned_initial_memory_keeps_its_size(tmp_path):
    """Priority sort's NTM learns a row of initial memory per location: --memory-size is refused with
    why, and its own size runs as trained."""
    path = tiny_run(tmp_path / "ps", "priority-sort", min_length=5, max_length=5, selected=4)
    with pytest.raises(OptionError, match=r"--memory-size 32: .* learned its initial memory, one row for each of "
                                          r"its 16 locations"):
        generalise(path, [5], 2, figure=False, memory_size=32)
    assert generalise(path, [5], 2, figure=False, memory_size=16)["memory_size"] == 16


def test_multi_copy_is_sized_by_its_copies(tmp_path):
    path = tiny_run(tmp_path / "mc", "multi-copy", max_length=2)
    result = generalise(path, sequences=3, figure=False)
    assert [row["length"] for row in result["rows"]] == [1, 2, 3, 5, 12]
    assert all(row["output_steps_per_sequence"] <= 5 * row["length"] for row in result["rows"])


def test_json_is_the_api_result_and_reruns_give_the_same_bytes(runner, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(SHIPPED, a / "copy.npz")
    shutil.copy(SHIPPED, b / "copy.npz")
    api = generalise(a / "copy.npz", [10, 30], 20)
    first = {p.name: p.read_bytes() for p in a.iterdir()}
    assert set(first) == {"copy.npz", "copy_generalise.png", "copy_generalise_len30.h5"}  # beside the checkpoint
    cli = run(runner, "generalise", a / "copy.npz", "--lengths", "30,10", "--sequences", 20, "--json")
    assert cli.exit_code == 0 and json.loads(cli.stdout) == json.loads(json.dumps(api))
    assert {p.name: p.read_bytes() for p in a.iterdir()} == first  # the same run again: the same bytes
    other = run(runner, "generalise", b / "copy.npz", "--lengths", "10,30", "--sequences", 20, "--json")
    assert json.loads(other.stdout)["rows"] == api["rows"]  # elsewhere: the same numbers and trace
    assert (b / "copy_generalise_len30.h5").read_bytes() == first["copy_generalise_len30.h5"]


def test_the_table_names_units_and_what_was_written(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # every header on one line
    shutil.copy(SHIPPED, tmp_path / "copy.npz")
    result = run(runner, "generalise", tmp_path / "copy.npz", "--lengths", "10", "--sequences", 5, "-o",
                 tmp_path / "g.pdf")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in ("wrong bits per sequence", "% failed outright", "scored bits per sequence",
                  "trained on lengths 1-20", "more wrong bits than output steps", f"wrote {tmp_path / 'g.pdf'}",
                  f"wrote {tmp_path / 'g_len10.h5'}"):
        assert words in text, words
    assert (tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("args, code, words", [
    (["missing.npz"], 1, "no such checkpoint"),
    (["notes.h5"], 1, "not an attnviz checkpoint"),
    (["folder"], 1, "not a run folder"),
    (["copy.npz", "--lengths", "x"], 2, "--lengths 'x' is not a list of whole numbers"),
    (["copy.npz", "--lengths", "0"], 2, "sizes are 1 or more"),
    (["copy.npz", "--lengths", "10,-3"], 2, "not a list of whole numbers"),
    (["copy.npz", "--sequences", "0"], 2, "--sequences 0"),
    (["copy.npz", "--repeats", "3"], 2, "--repeats applies to repeat-copy"),
    (["copy.npz", "-o", "g.jpg"], 2, "unknown figure format '.jpg'"),
    (["copy.npz", "--lengths", "5000"], 2, "too long to record"),
])
def test_bad_input_is_one_line(runner, tmp_path, monkeypatch, args, code, words):
    monkeypatch.chdir(tmp_path)
    shutil.copy(SHIPPED, "copy.npz")
    Path("notes.h5").write_bytes(b"not a checkpoint")
    Path("folder").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(runner, "generalise", *args)
    assert result.exit_code == code, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("attnviz: error: ")
    assert words in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_forward_without_a_cache_gives_the_same_outputs():
    model, task, _ = load_model(SHIPPED)
    b = task.make(np.random.default_rng(0), 3, 5)
    logits, cache = model.forward(b.x, cache=False)
    np.testing.assert_array_equal(logits, model.forward(b.x)[0])
    assert cache["steps"] == []
