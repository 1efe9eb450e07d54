"""attnviz compare RUN_DIR...: runs side by side, grouped by what differs in their configuration."""

import csv
import io
import json

import numpy as np
import pytest

import attnviz
from attnviz import Trace, save
from attnviz.compare import COLUMNS, compare_runs, crossing
from attnviz.trainer.config import TrainConfig
from attnviz.trainer.tasks import get_task
from attnviz.trainer.train import metric_columns
from attnviz.training import write_status

from conftest import copy_like_arrays, run


def make_run(folder, seed, wrong, lr=0.001, task="copy", every=50, state=("finished", "converged"), snapshot=True):
    """A run folder as the trainer writes it, with held-out wrong bits ``wrong`` at evaluations
    every ``every`` steps of 32 sequences, one second apart."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"task": task, "seed": seed, "lr": lr, "max_seconds": 0,
                                                    "converge_below": 0.1, "converge_patience": 10}))
    rows = [",".join(metric_columns(get_task("copy")))]
    for i, w in enumerate(wrong, 1):
        rows.append(f"{i * every},{i * every * 32},40,30,{w},{lr},0,{float(i)}")
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "checkpoint.npz").write_bytes(b"")
    write_status(folder, *state)
    if snapshot:
        save(Trace(copy_like_arrays(seed=seed), {"task": task}, f"step_{len(wrong) * every:07d}"),
             folder / "traces.h5")


def curve(first_below_1, first_below_01, n=40):
    """Wrong bits per evaluation: 30 until first_below_1, then 0.5 until first_below_01, then 0."""
    return [30.0 if i < first_below_1 else 0.5 if i < first_below_01 else 0.0 for i in range(n)]


@pytest.fixture
def sweep(tmp_path):
    d = tmp_path / "sweep"
    make_run(d / "seed0", 0, curve(5, 12))
    make_run(d / "seed1", 1, curve(8, 20))
    make_run(d / "seed2", 2, curve(10, 30, n=35))  # 30 + 10 > 35: no streak below 0.1
    make_run(d / "seed10", 10, curve(3, 10), state=("running",))
    return d


def test_a_run_that_diverged_says_so(tmp_path):
    make_run(tmp_path / "seed0", 0, curve(30, 40), state=("stopped", "diverged"))
    make_run(tmp_path / "seed1", 1, curve(30, 40), state=("stopped", "interrupted"))
    assert [r["state"] for r in compare_runs([tmp_path])["runs"]] == ["diverged", "stopped"]


def test_crossing_is_the_first_of_ten_in_a_row():
    wrong = [5, 0.5, 0.5, 2] + [0.5] * 10
    assert crossing(np.arange(14) * 10, np.arange(14) * 1.0, wrong, 1.0) == (40, 4.0)
    assert crossing(np.arange(14), np.arange(14) * 1.0, wrong, 0.1) == (None, None)


def test_compare_a_sweep(sweep):
    r = compare_runs([sweep])
    assert r["task"] == "copy"
    rows = {row["seed"]: row for row in r["runs"]}
    assert [row["seed"] for row in r["runs"]] == [0, 1, 2, 10]  # seed10 after seed2
    assert rows[0]["sequences_to_below_1"] == 6 * 50 * 32 and rows[0]["seconds_to_below_1"] == 6.0
    assert rows[0]["sequences_to_below_0.1"] == 13 * 50 * 32 and rows[0]["converged"] is True
    assert rows[2]["converged"] is False and rows[2]["sequences_to_below_0.1"] is None
    assert rows[2]["best_heldout_wrong_bits_per_seq"] == 0.0 and rows[2]["training_seconds"] == 35.0
    assert rows[10]["state"] == "running"
    [group] = r["groups"]
    assert group["group"] == "copy" and (group["runs"], group["converged"]) == (4, 3)
    seconds = [13.0, 21.0, 11.0]
    assert group["median_seconds_to_below_0.1"] == np.median(seconds)
    assert (group["q1_seconds_to_below_0.1"], group["q3_seconds_to_below_0.1"]) == tuple(
        np.percentile(seconds, [25, 75]))


def test_runs_that_differ_form_groups_named_by_what_differs(tmp_path):
    for i, lr in enumerate((0.001, 0.003, 0.001)):
        make_run(tmp_path / f"lr{lr}" / f"seed{i}", i, curve(4, 6 + i), lr=lr)
    r = compare_runs([tmp_path / "lr0.001", tmp_path / "lr0.003"])
    assert [row["group"] for row in r["runs"]] == ["lr=0.001", "lr=0.001", "lr=0.003"]
    assert [(g["group"], g["runs"], g["converged"]) for g in r["groups"]] == [("lr=0.001", 2, 2), ("lr=0.003", 1, 1)]


def test_a_run_from_before_a_task_set_a_model_option_is_grouped_as_it_ran(tmp_path):
    """Priority sort's read gate (N-grams' too): its runs from before record no read_gate_bias and ran with
    the model's own default (None: the gate bias of -1), not with the task's +1 of today."""
    for i, model in enumerate(({"learn_memory": True}, {"learn_memory": True, "read_gate_bias": 1.0}, {})):
        make_run(tmp_path / f"seed{i}", i, curve(4, 6))
        config = json.loads((tmp_path / f"seed{i}" / "config.json").read_text())
        (tmp_path / f"seed{i}" / "config.json").write_text(json.dumps({**config, "task": "priority-sort",
                                                                        "model": model}))
    r = compare_runs([tmp_path])
    assert [row["group"] for row in r["runs"]] == ["model.learn_memory=True, model.read_gate_bias=-",
                                                   "model.learn_memory=True, model.read_gate_bias=1",
                                                   "model.learn_memory=False, model.read_gate_bias=-"]
    assert TrainConfig(task="priority-sort").model["read_gate_bias"] == 1.0  # what today's defaults would say


def test_a_runs_model_is_the_one_its_checkpoint_recorded(tmp_path):
    """Before config.json recorded a task's model options, a priority-sort run with the learned memory
    recorded none, though it used it: its checkpoint's whole model config says what it used."""
    from attnviz.trainer.checkpoint import save_checkpoint
    from attnviz.trainer.ntm.config import NTMConfig

    for i, (recorded, learned) in enumerate((({}, True), ({"learn_memory": True}, True), ({}, False))):
        make_run(tmp_path / f"seed{i}", i, curve(4, 6))
        config = json.loads((tmp_path / f"seed{i}" / "config.json").read_text())
        (tmp_path / f"seed{i}" / "config.json").write_text(json.dumps({**config, "task": "priority-sort",
                                                                        "model": recorded}))
        model = NTMConfig(input_size=10, output_size=8, learn_memory=learned).to_dict()
        save_checkpoint(tmp_path / f"seed{i}" / "checkpoint.npz", {}, {"checkpoint_version": 1, "model": model})
    r = compare_runs([tmp_path])
    assert [row["group"] for row in r["runs"]] == ["model.learn_memory=True"] * 2 + ["model.learn_memory=False"]
    (tmp_path / "seed0" / "checkpoint.npz").write_bytes(b"")  # none readable: config.json's options, the rest
    assert [row["group"] for row in compare_runs([tmp_path])["runs"]] == [  # at the model's defaults
        "model.learn_memory=False", "model.learn_memory=True", "model.learn_memory=False"]


def test_runs_of_different_tasks_are_refused_in_one_line(runner, tmp_path):
    make_run(tmp_path / "a", 0, curve(3, 5))
    make_run(tmp_path / "b", 0, curve(3, 5), task="repeat-copy")
    with pytest.raises(attnviz.AttnvizError, match="runs of different tasks cannot be compared: .* is copy, .* is "
                                                   "repeat-copy"):
        compare_runs([tmp_path / "a", tmp_path / "b"])
    r = run(runner, "compare", tmp_path / "a", tmp_path / "b")
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1


def test_damaged_and_empty_folders_are_listed_and_the_rest_compared(runner, sweep):
    (sweep / "seed1" / "config.json").write_text("{not json")
    (sweep / "seed3").mkdir()
    (sweep / "seed3" / "config.json").write_text(json.dumps({"task": "copy", "seed": 3}))  # no metrics yet
    r = compare_runs([sweep])
    states = {row["run"].rsplit("/", 1)[1]: (row["state"], row["problem"]) for row in r["runs"]}
    assert states["seed1"][0] == "damaged" and "seed1" not in (states["seed1"][1] or "seed1")
    assert states["seed3"] == ("damaged", "no metrics.csv")
    assert states["seed0"][0] == "finished" and r["groups"][0]["runs"] == 3  # seed0, seed2, seed10
    result = run(runner, "compare", sweep)
    assert result.exit_code == 1
    assert "seed1" in result.stdout and "damaged" in result.stdout and "Traceback" not in result.output


def test_json_and_csv_give_the_same_rows_with_units(runner, sweep):
    r = run(runner, "compare", sweep, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data == json.loads(json.dumps(attnviz.compare.as_json(compare_runs([sweep]))))
    assert list(data["runs"][0]) == COLUMNS
    r = run(runner, "compare", sweep, "--csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == COLUMNS and len(rows) == 4
    assert [row["sequences_to_below_0.1"] for row in rows] == [str(x["sequences_to_below_0.1"] or "")
                                                                for x in data["runs"]]
    assert "best_heldout_wrong_bits_per_seq" in COLUMNS and "training_seconds" in COLUMNS


def test_the_table_and_the_figure(runner, sweep, tmp_path):
    r = run(runner, "compare", sweep, "-o", tmp_path / "c.png")
    assert r.exit_code == 0, r.output
    assert "seed10" in r.stdout and "running" in r.stdout
    assert "copy: converged 3 of 4; to below 0.1, median (quartiles): 20,800 (19,200-27,200) sequences, 13 (12-17) s" \
        in r.stdout.replace("\n", " ")
    first = (tmp_path / "c.png").read_bytes()
    assert run(runner, "compare", sweep, "-o", tmp_path / "c.png").exit_code == 0
    assert (tmp_path / "c.png").read_bytes() == first  # the same bytes
    from PIL import Image

    assert Image.open(tmp_path / "c.png").size == (1200, 440 + 30 + 175)  # curves, caption, one row of 4 snapshots
    for fmt in ("svg", "pdf"):
        assert run(runner, "compare", sweep, "-o", tmp_path / f"c.{fmt}").exit_code == 0
    r = run(runner, "compare", sweep, "-o", tmp_path / "c.gif")
    assert r.exit_code == 2 and "unknown output format" in r.stderr


def test_the_report_page_links_every_run_and_reads_the_curves(runner, sweep, tmp_path):
    r = run(runner, "compare", sweep, "-o", tmp_path / "report.html")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "report.html").read_text()
    pages = sorted(p.name for p in (tmp_path / "report_runs").iterdir())
    assert pages == ["seed0.html", "seed1.html", "seed10.html", "seed2.html"]
    for name in pages:
        assert f'href="report_runs/{name}"' in text
    assert text.count("data:image/png;base64,") == 4 and "20,800" in text
    first = text
    assert run(runner, "compare", sweep, "-o", tmp_path / "report.html").exit_code == 0
    assert (tmp_path / "report.html").read_text() == first


def test_the_report_in_a_browser(sweep, tmp_path):
    import math

    from test_view import chromium_path

    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium_path() is None:
        pytest.skip("needs headless Chromium")
    from attnviz.plot.compare import write_compare

    write_compare(compare_runs([sweep]), tmp_path / "report.html")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        errors, requests = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto((tmp_path / "report.html").as_uri())
        data = page.evaluate("window.ATTNVIZ_REPORT")
        box = page.locator("#by-sequences").bounding_box()
        run0 = data["runs"][0]
        sy = lambda v: v / 0.1 if v <= 0.1 else 1 + math.log10(v / 0.1)  # noqa: E731
        xmax = max(r["sequences"][-1] for r in data["runs"])
        ymax = max([sy(1)] + [sy(w) for r in data["runs"] for w in r["wrong"]]) * 1.05
        i = 20  # an evaluation past the drop: away from the other runs' curves
        x = box["x"] + 60 + run0["sequences"][i] / xmax * (560 - 72)
        y = box["y"] + 12 + (1 - sy(run0["wrong"][i]) / ymax) * (260 - 46)
        page.mouse.move(x, y)
        readout = page.locator("#curve-readout").inner_text()
        b.close()
    assert errors == [] and all(u.startswith("file://") for u in requests)
    assert readout.startswith(f"seed0 (copy): step {run0['steps'][i]:,}, {run0['sequences'][i]:,} sequences"), readout
    assert readout.endswith(f"{run0['wrong'][i]:g} held-out wrong bits per sequence")


def test_ngrams_runs_are_compared_by_the_bits_above_the_optimal_predictor(tmp_path):
    """A task with an optimal predictor is judged by the held-out bits per sequence above its cost: the
    columns, the thresholds (3 and 1) and the figure's curves say so."""
    for seed, above in ((0, [9.0] + [0.5] * 10), (1, [9.0] * 11)):
        folder = tmp_path / "ng" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"task": "ngrams", "seed": seed, "converge_below": 1.0,
                                                        "converge_patience": 10}))
        rows = [",".join(metric_columns(get_task("ngrams")))]
        for i, a in enumerate(above, 1):
            rows.append(f"{i * 50},{i * 1600},160,{130.75 + a},60,130.75,0.003,0,{float(i)}")
        (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
        write_status(folder, "finished", "max_seconds")
    result = compare_runs([tmp_path / "ng"], output=tmp_path / "c.png")
    assert result["judge"] == "excess_bits" and result["thresholds"] == [3.0, 1.0]
    first, second = result["runs"]
    assert first["converged"] and first["sequences_to_below_1"] == 3200 and not second["converged"]
    assert first["best_heldout_bits_above_optimal_per_seq"] == 0.5 and "best_heldout_wrong_bits_per_seq" not in first
    np.testing.assert_allclose(result["curves"][1]["values"], 9.0)
    assert result["columns"][6:10] == ["sequences_to_below_3", "seconds_to_below_3", "sequences_to_below_1",
                                       "seconds_to_below_1"]
    assert (tmp_path / "c.png").exists()


def cost_run(folder, task, costs, optimal=None):
    """A run folder of ``task`` with held-out cross-entropy ``costs`` above ``optimal`` (bits per sequence)
    at evaluations every 50 steps of 32 sequences, one second apart."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"task": task, "seed": 0, "converge_patience": 10}))
    rows = [",".join(metric_columns(get_task(task)))]
    for i, cost in enumerate(costs, 1):
        scored = [f"{cost + (optimal or 0)}", "8"] + ([f"{optimal}"] if optimal else [])
        rows.append(",".join([f"{i * 50}", f"{i * 1600}", "100", *scored, "0.003", "0", f"{float(i)}"]))
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    write_status(folder, "finished", "max_seconds")


def test_a_cost_is_drawn_on_a_log_axis_and_bits_above_optimal_down_to_zero(tmp_path):
    """Priority sort's cost (chance about 128, judged below 20) never nears 0: its axis is logarithmic,
    from below its lowest value, ticks in plain numbers, in the PNG and on the page. Bits above the
    optimal predictor do reach 0, so N-grams' axis keeps 0 at its foot."""
    from attnviz.plot.compare import draw_compare, write_compare

    cost_run(tmp_path / "priority-sort" / "seed0", "priority-sort", [125.0, 60.0, float("nan"), 31.0, 12.0, 24.0])
    cost_run(tmp_path / "ngrams" / "seed0", "ngrams", [125.0, 60.0, 31.0, 0.5], optimal=130.75)
    result = compare_runs([tmp_path / "priority-sort"])
    axes = draw_compare(result).axes[0]
    low, high = axes.get_ylim()
    assert axes.get_yscale() == "log" and low == pytest.approx(12.0 / 1.5) and high > 125  # (the NaN is skipped)
    axes.figure.canvas.draw()
    labels = {t.get_text() for t in axes.get_yticklabels() if low <= t.get_position()[1] <= high}
    assert {"10", "20", "30", "50", "100"} <= labels
    write_compare(result, tmp_path / "sort.html")  # the page's curves on the same axis
    assert '"floor":8.0' in (tmp_path / "sort.html").read_text()
    result = compare_runs([tmp_path / "ngrams"])
    axes = draw_compare(result).axes[0]
    assert axes.get_yscale() == "symlog" and axes.get_ylim()[0] == 0
    write_compare(result, tmp_path / "ngrams.html")
    assert '"floor":null' in (tmp_path / "ngrams.html").read_text()


def test_the_report_of_a_cost_in_a_browser_reads_a_point_on_its_log_axis(tmp_path):
    import math

    from test_view import chromium_path

    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium_path() is None:
        pytest.skip("needs headless Chromium")
    from attnviz.plot.compare import write_compare

    costs = [125.0, 100.0, 80.0, 60.0, 45.0, 35.0, 30.0, 27.0, 25.0, 24.0]
    cost_run(tmp_path / "runs" / "seed0", "priority-sort", costs)
    write_compare(compare_runs([tmp_path / "runs"]), tmp_path / "report.html")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "report.html").as_uri())
        box = page.locator("#by-sequences").bounding_box()
        floor = 20 / 1.5
        ymax = math.log10(125.0 / floor) * 1.05
        i = 5  # 35 bits per sequence, at 9,600 sequences of 16,000
        x = box["x"] + 60 + (i + 1) * 1600 / 16000 * (560 - 72)
        y = box["y"] + 12 + (1 - math.log10(costs[i] / floor) / ymax) * (260 - 46)
        page.mouse.move(x, y)
        readout = page.locator("#curve-readout").inner_text()
        b.close()
    assert errors == []
    assert readout == ("seed0 (priority-sort): step 300, 9,600 sequences, 6.0 s: 35 held-out cross-entropy, bits "
                       "per sequence")
