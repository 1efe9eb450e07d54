"""The CLI through its runner, checked through the Python API (the sqlite-utils way)."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import attnviz
from attnviz import Trace, save
from attnviz.cli import app

from conftest import copy_like_arrays, run

README = Path(__file__).parents[1] / "README.md"
CLI_DOC = Path(__file__).parents[1] / "docs" / "cli.md"


def _traces(n, prefix="s"):
    return [Trace(copy_like_arrays(L=1 + i % 20, N=32, seed=i), {"task": "copy", "step": i}, f"{prefix}{i}")
            for i in range(n)]


def test_version_and_help(runner):
    assert run(runner, "--version").stdout.strip() == f"attnviz {attnviz.__version__}"
    for command in ("inspect", "validate", "convert", "plot", "animate", "train", "record", "generalise", "compare"):
        result = run(runner, command, "--help")
        assert result.exit_code == 0 and "Python:" in result.stdout


def test_every_command_is_documented():
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert commands == {"inspect", "validate", "convert", "plot", "animate", "train", "record", "generalise", "compare"}
    docs = CLI_DOC.read_text()
    for c in commands:
        assert f"attnviz {c}" in docs, f"docs/cli.md lacks `attnviz {c}`"
    from attnviz.plot.options import FORMATS

    row = next(line for line in README.read_text().splitlines() if line.startswith("| `attnviz plot FILE...`"))
    assert all(fmt.upper() in row for fmt in FORMATS), row  # the README's table names every format plot writes


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from attnviz.cli import app\n"
            "try:\n    app(['--help'], prog_name='attnviz')\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('numpy', 'h5py', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_inspect_json_matches_the_api(runner, tmp_path):
    path = tmp_path / "t.h5"
    save(_traces(2), path)
    result = run(runner, "inspect", path, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == [json.loads(json.dumps(attnviz.summarize(path)))]  # a list, for one file as for several
    data = data[0]
    assert [t["name"] for t in data["traces"]] == ["s0", "s1"]
    assert data["traces"][1]["datasets"]["write_weightings"] == {"shape": [5, 32], "dtype": "float32",
                                                                  "min": 0.0, "max": 1.0, "nonfinite": 0,
                                                                  "first_nonfinite_step": None}
    assert data["traces"][1]["copy_diagnostics"]["learned"] is True


def test_inspect_keeps_only_what_the_copy_diagnostics_read(tmp_path, monkeypatch):
    """Datasets read in one block (up to 16 MiB each) are kept for the copy diagnostics: only those
    they read (not memory, adds, erases or reads), and only for copy traces."""
    import attnviz.inspect

    kept, real = {}, attnviz.inspect._range

    def spy(f, info, key, whole):
        out = real(f, info, key, whole)
        if whole is not None and key in whole:
            kept.setdefault(info.name, set()).add(key)
        return out

    monkeypatch.setattr(attnviz.inspect, "_range", spy)
    path = tmp_path / "t.h5"
    save([Trace(copy_like_arrays(full=True), {"task": task}, task) for task in ("copy", "other")], path)
    summary = attnviz.summarize(path)
    assert kept == {"copy": {"inputs", "outputs", "targets", "write_weightings", "read_weightings"}}
    assert summary["traces"][0]["copy_diagnostics"]["learned"] is True
    assert "copy_diagnostics" not in summary["traces"][1]


def test_inspect_ranges_leave_out_values_that_are_not_finite_and_name_the_first(tmp_path):
    arrays = copy_like_arrays()
    path = tmp_path / "t.h5"
    save(Trace({**arrays, "output_mask": np.ones(len(arrays["inputs"]), np.float32)}), path)
    with h5py.File(path, "a") as f:  # what a Trace refuses, a file may hold
        f["read_weightings"][3, 2] = arrays["read_weightings"][3, 2] = np.nan
        f["read_weightings"][4, 1] = arrays["read_weightings"][4, 1] = -np.inf
        f["outputs"][1, 0] = arrays["outputs"][1, 0] = np.inf
        f["output_mask"][2] = 0.5
    t = attnviz.summarize(path)["traces"][0]
    for key in ("read_weightings", "outputs"):
        finite = arrays[key][np.isfinite(arrays[key])]
        assert (t["datasets"][key]["min"], t["datasets"][key]["max"]) == (float(finite.min()), float(finite.max()))
    assert t["datasets"]["output_mask"] == {"shape": [len(arrays["inputs"])], "dtype": "float32", "min": 0.5,
                                            "max": 1.0, "nonfinite": 0, "first_nonfinite_step": None}
    assert [(t["datasets"][k]["nonfinite"], t["datasets"][k]["first_nonfinite_step"])
            for k in ("inputs", "outputs", "read_weightings")] == [(0, None), (1, 1), (2, 3)]
    assert [p.split(": ", 3)[2:] for p in t["problems"]] == [
        ["dataset 'outputs'", "contains inf at step 1, element 0; values must be finite"],
        ["dataset 'read_weightings'", "contains nan at step 3, location 2; values must be finite"],
        ["dataset 'output_mask'", "has value 0.5 at step 2; an output mask holds 0 or 1 (1: scored)"]]


def test_inspect_counts_the_non_finite_values_of_each_dataset_and_names_the_first_step(runner, tmp_path,
                                                                                      monkeypatch):
    import attnviz.cli

    monkeypatch.setattr(attnviz.cli.out, "_width", 120)  # the table on one line per dataset
    arrays = copy_like_arrays(L=5)
    save(Trace(arrays, name="clean"), tmp_path / "clean.h5")
    arrays["read_weightings"][7, 2] = np.nan
    arrays["read_weightings"][9, 1:4] = np.inf
    arrays["outputs"][3, 0] = -np.inf
    save(Trace(arrays), tmp_path / "d.h5")
    result = run(runner, "inspect", tmp_path / "d.h5")
    assert result.exit_code == 1  # as validate says: values must be finite
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in result.stdout.splitlines()
            if line.startswith("│")}
    assert "non-finite" in result.stdout
    assert (rows["read_weightings"], rows["outputs"], rows["inputs"]) == ("4 (first at step 7)",
                                                                          "1 (first at step 3)", "")
    assert [line.split(": ", 5)[4:] for line in result.stderr.strip().splitlines()] == [
        ["dataset 'outputs'", "contains -inf at step 3, element 0; values must be finite"],
        ["dataset 'read_weightings'", "contains nan at step 7, location 2; values must be finite"]]
    report = json.loads(run(runner, "inspect", tmp_path / "d.h5", "--json").stdout)[0]["traces"][0]["datasets"]
    assert {k: (d["nonfinite"], d["first_nonfinite_step"]) for k, d in report.items()} == {
        "inputs": (0, None), "outputs": (1, 3), "write_weightings": (0, None), "read_weightings": (4, 7)}
    clean = run(runner, "inspect", tmp_path / "clean.h5")
    assert clean.exit_code == 0 and "non-finite" not in clean.stdout  # no column where there is nothing to count


def test_a_file_of_many_traces_is_shared_among_processes_with_the_same_summary(tmp_path, monkeypatch):
    import attnviz.inspect
    import attnviz.workers

    traces = [Trace(copy_like_arrays(seed=i), {"task": "copy"}, f"t{i}") for i in range(7)]
    traces[4].arrays["write_weightings"][2, 0] = np.nan
    path = tmp_path / "many.h5"
    save(traces, path)
    pools, real_pool = [], attnviz.workers.pool
    monkeypatch.setattr(attnviz.workers, "pool", lambda jobs: pools.append(jobs) or real_pool(jobs))
    monkeypatch.setattr(attnviz.inspect, "PARALLEL_TRACES", 3)
    alone = attnviz.summarize(path, jobs=1)
    assert pools == []
    assert attnviz.summarize(path, jobs=2) == alone and pools == [2]
    assert [t["name"] for t in alone["traces"]] == [f"t{i}" for i in range(7)]
    assert "must be finite" in alone["traces"][4]["problems"][0]

    with h5py.File(path, "a") as f:  # a problem that stops the summary stops it as it would in one process
        f["t5"].attrs["bad/key"] = 1
    with pytest.raises(attnviz.TraceError) as alone:
        attnviz.summarize(path, jobs=1)
    with pytest.raises(attnviz.TraceError) as shared:
        attnviz.summarize(path, jobs=2)
    assert str(shared.value) == str(alone.value) and "trace 't5'" in str(alone.value)


def test_validate_json_is_a_list_of_files(runner, tmp_path):
    save(_traces(1), tmp_path / "ok.h5")
    (tmp_path / "bad.h5").write_bytes(b"not a trace")
    result = run(runner, "validate", tmp_path / "ok.h5", tmp_path / "bad.h5", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [d["file"] for d in data] == [str(tmp_path / "ok.h5"), str(tmp_path / "bad.h5")]
    assert data[0]["problems"] == [] and "neither HDF5 nor NPZ" in data[1]["problems"][0]
    assert result.stderr.startswith("attnviz: error: ")


def test_validate_weighting_checks(runner, tmp_path):
    arrays = copy_like_arrays()
    arrays["read_weightings"] = arrays["read_weightings"] * 0.5
    path = tmp_path / "t.npz"
    np.savez(path, **arrays)
    assert run(runner, "validate", path).exit_code == 0
    result = run(runner, "validate", path, "--weightings")
    assert result.exit_code == 1
    assert "read_weightings': sums to 0.5 over locations at step 0" in result.stderr


def test_convert_round_trip(runner, tmp_path):
    save(_traces(3), tmp_path / "a.h5")
    assert run(runner, "convert", tmp_path / "a.h5", tmp_path / "b.npz").exit_code == 0
    assert run(runner, "convert", tmp_path / "b.npz", tmp_path / "c.h5").exit_code == 0
    assert list(attnviz.iter_traces(tmp_path / "c.h5")) == _traces(3)


def test_plot_default_output_beside_the_trace(runner, tmp_path):
    save(Trace(copy_like_arrays()), tmp_path / "trace.h5")
    result = run(runner, "plot", tmp_path / "trace.h5")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "trace.png").read_bytes().startswith(b"\x89PNG")


def test_plot_formats_and_reproducible_bytes(runner, tmp_path):
    save(Trace(copy_like_arrays(full=True), {"task": "copy"}), tmp_path / "t.npz")
    for d in ("a", "b"):
        result = run(runner, "plot", tmp_path / "t.npz", "-o", tmp_path / d / "fig", "--format", "png",
                     "--format", "svg", "--format", "pdf", "--layout", "paper", "--title", "--colorbar")
        assert result.exit_code == 1 and "does not exist" in result.stderr  # folder must exist for -o
        (tmp_path / d).mkdir()
        assert run(runner, "plot", tmp_path / "t.npz", "-o", tmp_path / d / "fig", "-f", "png", "-f", "svg",
                   "-f", "pdf", "--layout", "paper", "--title", "--colorbar").exit_code == 0
    for fmt in ("png", "svg", "pdf"):
        a, b = (tmp_path / d / f"fig.{fmt}" for d in "ab")
        assert a.read_bytes() == b.read_bytes(), fmt


def test_batch_with_a_bad_file_in_the_middle(runner, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    save(_traces(2, "a"), src / "one.h5")
    (src / "sub" / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    save(Trace(copy_like_arrays()), src / "sub" / "two.npz")
    result = run(runner, "plot", src, "--out-dir", tmp_path / "out", "--jobs", "2")
    assert result.exit_code == 1
    assert "broken.h5" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["index.html", "one__a0.png", "one__a1.png",
                                                                    "sub__two.png"]
    assert "broken.h5" in (tmp_path / "out" / "index.html").read_text()  # the gallery lists the failure


def test_a_head_one_trace_lacks_fails_that_trace_as_a_usage_error(runner, tmp_path):
    save(Trace(copy_like_arrays(heads=2)), tmp_path / "two.h5")
    save(Trace(copy_like_arrays()), tmp_path / "one.h5")
    result = run(runner, "plot", tmp_path / "one.h5", tmp_path / "two.h5", "--head", "1", "--out-dir", tmp_path / "o")
    assert result.exit_code == 2  # the command line asks for what a trace does not have: fix the command
    lines = result.stderr.strip().splitlines()
    assert lines[0].endswith("one.h5: trace '/': dataset 'write_weightings': head 1 does not exist; it has 1 head, "
                             "head 0")
    assert lines[1].endswith("1 trace(s) or file(s) failed, 2 file(s) written")  # the other is drawn, and the gallery
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["index.html", "two.png"]


def test_inputs_sharing_a_stem_keep_their_suffixes_and_every_file_written_is_listed(runner, tmp_path):
    src = tmp_path / "in"
    (src / "x").mkdir(parents=True)
    for name in ("a.h5", "a.npz", "b.h5", "x/b.h5"):
        save(Trace(copy_like_arrays()), src / name)
    r = run(runner, "plot", src, src / "x" / "b.h5", "--out-dir", tmp_path / "o")
    assert r.exit_code == 0, r.output
    # a.h5 and a.npz differ by their suffix only: it stays in the name; b.h5 twice: numbered
    names = ["a_h5.png", "a_npz.png", "b-2.png", "b.png", "index.html", "x__b.png"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == names
    assert sorted(Path(line.removeprefix("wrote ")).name for line in r.stdout.splitlines()) == names
    r = run(runner, "plot", src / "a.h5", src / "a.npz")  # beside the files, likewise
    assert r.exit_code == 0 and (src / "a_h5.png").is_file() and (src / "a_npz.png").is_file()


def test_output_names_never_escape_the_out_dir(tmp_path):
    out = tmp_path / "out"
    hostile = ("../../etc/passwd", "..", "a/../../b", "[red]x")
    np.savez(tmp_path / "evil.npz", **{f"{n}/{k}": v for n in hostile for k, v in copy_like_arrays().items()})
    assert sorted(attnviz.open_traces(tmp_path / "evil.npz").names) == sorted(hostile)
    result = attnviz.plot_files([tmp_path / "evil.npz"], out_dir=out)
    assert len(result.failures) == 3 and all("is not allowed" in line for line in result.failures)
    assert len(result.written) == 1  # "[red]x" is a name like any other
    assert attnviz.validate_file(tmp_path / "evil.npz")[0].endswith("without backslashes or control characters")
    with pytest.raises(attnviz.TraceError, match="is not allowed"):
        attnviz.convert(tmp_path / "evil.npz", tmp_path / "copy.h5")
    assert not (tmp_path / "copy.h5").exists()
    for p in result.written:
        assert p.resolve().parent == out.resolve()
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.png", p.name)


@pytest.mark.parametrize("n_shards", [1, 3, 4])
def test_shards_cover_every_trace_exactly_once(tmp_path, n_shards):
    save(_traces(7), tmp_path / "a.h5")
    save(_traces(3, "b"), tmp_path / "b.npz")
    names = []
    for k in range(1, n_shards + 1):
        names += [p.name for p in attnviz.plot_files([tmp_path], out_dir=tmp_path / "out",
                                                     shard=(k, n_shards)).written]
    assert sorted(names) == sorted(f"a__s{i}.png" for i in range(7)) + sorted(f"b__b{i}.png" for i in range(3))
    assert len(names) == len(set(names)) == 10


def test_plot_options_reach_the_figure(runner, tmp_path):
    save(Trace(copy_like_arrays(heads=2)), tmp_path / "t.h5")
    result = run(runner, "plot", tmp_path / "t.h5", "-o", tmp_path / "t.svg", "--cmap", "viridis", "--head", "1",
                 "--panels", "inputs,write_weightings", "--grid", "1x2", "--marker", "5", "--figsize", "9x3",
                 "--dpi", "72", "--fontsize", "8", "--transparent", "--limits", "inputs=0:2")
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "t.svg").read_text()
    assert "Write Weightings (head 1)" in svg and "Read Weightings" not in svg
    assert 'width="648pt" height="216pt"' in svg


def test_plot_default_title_crop_and_marker_can_each_be_turned_off(runner, tmp_path):
    from attnviz.plot import PlotOptions, Source, build_scene

    t = Trace(copy_like_arrays(L=5, N=64), {"task": "copy", "sequence_length": 5, "step": 7})
    save(t, tmp_path / "t.h5")
    r = run(runner, "plot", tmp_path / "t.h5", "-o", tmp_path / "on.svg")
    svg = (tmp_path / "on.svg").read_text()
    assert r.exit_code == 0 and "copy · step 7 · length 5" in svg and "Location (7 of 64)" in svg
    r = run(runner, "plot", tmp_path / "t.h5", "-o", tmp_path / "off.svg", "--no-title", "--locations", "all",
            "--no-phase-marker")
    svg = (tmp_path / "off.svg").read_text()
    assert r.exit_code == 0 and "step 7" not in svg and "of 64" not in svg
    opts = PlotOptions(title=False, locations="all", phase_marker=False)
    scene = build_scene(Source.of_trace(t, opts), opts)
    assert scene.suptitle is None and scene.markers == () and scene.panels[2].rows == (36, 100)  # all 64, rolled


@pytest.mark.parametrize("args, words", [
    (["--cmap", "virdis"], "did you mean viridis"),
    (["--panels", "inputs,memory"], "unknown panel 'memory'"),
    (["--panels", "adds"], "needs dataset 'adds'"),
    (["--shard", "5/4"], "K must be between 1 and N"),
    (["--trace", "nope"], "has no trace 'nope'"),
    (["--locations", "some"], "is not START:STOP (e.g. 0:500, 100:, :50, or auto, all)"),
    (["--locations", "9:9"], "location window 9:9 is empty"),  # 9:3 wraps: 9..N-1, then 0..2
    (["--limits", "outputs=1:0"], "LOW must be below HIGH"),
])
def test_plot_bad_options_are_one_line(runner, tmp_path, args, words):
    save(Trace(copy_like_arrays()), tmp_path / "t.h5")
    result = run(runner, "plot", tmp_path / "t.h5", *args)
    assert result.exit_code != 0
    assert words in result.stderr and "Traceback" not in result.output


def test_train_resume_and_record_through_the_cli(runner, tmp_path):
    small = ["--memory-size", "16", "--word-size", "8", "--controller-size", "16", "--trace-every", "40"]
    r = run(runner, "train", "--run-dir", tmp_path / "run", "--max-steps", "4", "--seed", "2", *small)
    assert r.exit_code == 0, r.output
    r = run(runner, "train", "--resume", tmp_path / "run", "--max-steps", "8")
    assert r.exit_code == 0, r.output
    assert [t.name for t in attnviz.iter_traces(tmp_path / "run" / "traces.h5")] == ["step_0000004", "step_0000008"]
    # (every 4 steps: the snapshots are dense early, every 40/10 steps up to 80)
    r = run(runner, "record", tmp_path / "run", "--length", "30", "-o", tmp_path / "t30.npz")
    assert r.exit_code == 0, r.output
    t = attnviz.load(tmp_path / "t30.npz")
    assert t.steps == 61 and t.metadata["sequence_length"] == 30 and t.metadata["seed"] == 2
    r = run(runner, "record", tmp_path / "missing", "-o", tmp_path / "x.h5")
    assert r.exit_code == 1 and "no such checkpoint" in r.stderr
    # a run folder is drawn as a run: its curves, its snapshots evolving, its last snapshot
    r = run(runner, "plot", tmp_path / "run", "--out-dir", tmp_path / "figures")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "evolution.gif", "last_snapshot.png", "learning_curves.png"]
    # its trace file alone is drawn like any other (the checkpoints beside it are skipped)
    r = run(runner, "plot", tmp_path / "run" / "traces.h5", "--out-dir", tmp_path / "each")
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["index.html", "traces__step_0000004.png",
                                                                      "traces__step_0000008.png"]


def test_train_says_when_it_rolls_back(runner, tmp_path, monkeypatch):
    import attnviz.trainer.train as train_mod

    scores = iter([3.0, 40.0])  # learned, then collapsed
    real = train_mod.evaluate
    monkeypatch.setattr(train_mod, "evaluate", lambda m, b, *rest: {**real(m, b), "wrong_bits": next(scores)})
    small = ["--memory-size", "8", "--word-size", "4", "--controller-size", "8", "--trace-every", "0"]
    r = run(runner, "train", "--run-dir", tmp_path / "run", "--max-steps", "100", "--processes", "1", *small)
    assert r.exit_code == 0, r.output
    assert "step 100: held-out wrong bits jumped to 40.00 per sequence; rolled back to the best state" in r.stderr
    assert "best held-out wrong bits per sequence 3" in r.stdout


def test_parallel_batch_draws_the_same_bytes_and_groups_lengths(tmp_path):
    from attnviz.batch import _tasks, plan

    src = tmp_path / "in"
    src.mkdir()
    for i, L in enumerate([2, 3, 3, 5, 5, 5, 5]):
        save(Trace(copy_like_arrays(L=L, seed=i)), src / f"t{i}.h5")
    outs = {}
    for jobs in (1, 2):
        r = attnviz.plot_files([src], out_dir=tmp_path / f"out{jobs}", jobs=jobs, frame_cache=False)
        assert r.ok and len(r.written) == 7
        outs[jobs] = {p.name: p.read_bytes() for p in (tmp_path / f"out{jobs}").iterdir()}
    assert outs[1] == outs[2]
    jobs = sorted(plan([src]), key=lambda j: j.steps)
    tasks = _tasks([(j,) for j in jobs], size=3)
    assert [[w[0].steps for w in t] for t in tasks] == [[5], [7, 7], [11, 11, 11], [11]]


def test_a_batch_uses_every_core_unless_told(runner, tmp_path, monkeypatch):
    import attnviz.workers

    assert attnviz.workers.default_jobs() == len(os.sched_getaffinity(0))
    asked = []
    monkeypatch.setattr(attnviz.workers, "default_jobs", lambda: asked.append(1) or 2)
    for i in range(3):
        save(Trace(copy_like_arrays(seed=i)), tmp_path / f"t{i}.h5")
    assert run(runner, "plot", tmp_path, "--out-dir", tmp_path / "a").exit_code == 0 and asked == [1]
    assert run(runner, "plot", tmp_path, "--out-dir", tmp_path / "b", "--jobs", "1").exit_code == 0 and asked == [1]
    r = run(runner, "plot", tmp_path, "--out-dir", tmp_path / "c", "--jobs", "0")
    assert r.exit_code == 2 and "--jobs 0: give 1 or more worker processes" in r.stderr
    assert [p.read_bytes() for p in sorted((tmp_path / "a").glob("*.png"))] == [
        p.read_bytes() for p in sorted((tmp_path / "b").glob("*.png"))]


def test_help_keeps_its_text_and_usage_lines_read_plainly(runner):

    env = {**os.environ, "COLUMNS": "200"}
    plot = runner.invoke(app, ["plot", "--help"], env=env).output
    assert "Usage: attnviz plot [OPTIONS] FILES..." in plot
    assert "[default: $ATTNVIZ_MAX_BYTES or 4G]" in plot and "[default: attnviz, blue to red;" in plot
    train = runner.invoke(app, ["train", "--help"], env=env).output
    assert "[default: runs/TASK-seedSEED]" in train
    assert "Usage: attnviz convert [OPTIONS] SRC DST" in runner.invoke(app, ["convert", "--help"], env=env).output


def test_every_command_taking_files_and_folders_describes_them_alike():
    import typer

    group = typer.main.get_command(app)
    helps = {name: [p.help for p in group.commands[name].params if p.name == "files"]
             for name in ("inspect", "validate", "plot", "animate")}
    assert helps == dict.fromkeys(helps, ["Trace files (.h5, .hdf5, .npz) and folders (a folder: every trace file "
                                          "in it, recursively)."])


def test_help_at_80_columns_shows_every_option_whole_and_wraps_sentences(runner):
    """Rich cuts a cell that cannot wrap ('--no-phase-mark…') when its column is narrow; typer keeps a
    docstring's line breaks, which would break sentences mid-line."""
    import typer

    group = typer.main.get_command(app)
    for name, command in [("", group), *group.commands.items()]:
        text = runner.invoke(app, [name, "--help"] if name else ["--help"], env={**os.environ, "COLUMNS": "80"}).output
        assert "…" not in text, name
        assert max(map(len, text.splitlines())) <= 80
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), f"{name}: {opt}"
        description = text.split("╭")[0].split("Usage:")[1].splitlines()[2:]
        for line, after in zip(description, description[1:], strict=False):
            if line.strip() and after.strip():  # a line followed by more of its paragraph is full
                assert len(line.rstrip()) >= 65, f"{name}: {line!r}"
    plot = runner.invoke(app, ["plot", "--help"], env={**os.environ, "COLUMNS": "200"}).output
    assert "(PNG, SVG, PDF or HTML)" in plot
    train = runner.invoke(app, ["train", "--help"], env={**os.environ, "COLUMNS": "200"}).output
    assert "every N/10 steps up to step 2N, every N/5 up to 10N" in train
    assert "copy, repeat-copy, associative-recall, ngrams, priority-sort or" in train


def test_train_set_reaches_every_configuration_field(runner, tmp_path):
    import json

    r = run(runner, "train", "--run-dir", tmp_path / "s", "--max-steps", "2", "--quiet", "--word-size", "8",
            "--controller-size", "16", "--set", "model.read_first=false", "--set", "lr=0.002",
            "--set", "model.memory_size=16", "--set", "optimizer=rmsprop")
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["lr"] == 0.002 and cfg["optimizer"] == "rmsprop"
    assert cfg["model"]["read_first"] is False and cfg["model"]["memory_size"] == 16
    r = run(runner, "train", "--set", "seed=3")
    assert r.exit_code == 2 and "not KEY=VALUE with KEY one of" in r.stderr


def test_train_config_file_sets_a_run_and_given_options_win(runner, tmp_path):
    """--config FILE takes a JSON object of training options (a run folder's config.json is one);
    options given on the command line win over it, model options merging field by field; the same
    through attnviz.train(config=...)."""
    import json

    import attnviz

    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"task": "repeat-copy", "seed": 4, "max_steps": 2, "batch_size": 4, "trace_every": 0,
                                "model": {"controller_size": 16, "memory_size": 16}}))
    r = run(runner, "train", "--config", conf, "--run-dir", tmp_path / "a", "--quiet", "--batch-size", "8",
            "--set", "model.word_size=6")
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (cfg["task"], cfg["seed"], cfg["max_steps"], cfg["batch_size"]) == ("repeat-copy", 4, 2, 8)
    assert cfg["model"] == {"controller_size": 16, "memory_size": 16, "word_size": 6}
    # the run's own config.json starts the same run again
    again = attnviz.train(config=tmp_path / "a" / "config.json", run_dir=tmp_path / "b", max_steps=1)
    assert again["step"] == 1
    assert json.loads((tmp_path / "b" / "config.json").read_text()) == {**cfg, "max_steps": 1}
    for text, message in (('{"lr": 1, "bogus": 2}', "unknown training option 'bogus'"), ("[1]", "one JSON object"),
                          ("{", "not a JSON configuration"), ('{"model": 3}', '"model" an object')):
        conf.write_text(text)
        r = run(runner, "train", "--config", conf, "--run-dir", tmp_path / "x")
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and f"{conf}: " in r.stderr and message in r.stderr
    conf.write_text(" " * (2**20 + 1))
    r = run(runner, "train", "--config", conf)
    assert r.exit_code == 1 and "more than a configuration holds" in r.stderr
    os.mkfifo(tmp_path / "fifo")  # would block a plain read forever
    r = run(runner, "train", "--config", tmp_path / "fifo")
    assert r.exit_code == 1 and "not a regular file" in r.stderr
    r = run(runner, "train", "--resume", tmp_path / "a", "--config", conf)
    assert r.exit_code == 2 and "--config come from its folder" in r.stderr


def test_train_leaves_unset_options_to_the_task(runner, tmp_path):
    """An option not given on the command line is the library's to set, some per task: repeat-copy
    trains at 3e-3 with norm clipping and a curriculum from 1 repeat, copy at 1e-3 with elementwise
    clipping and none; --lr wins over both."""
    import json

    small = ("--max-steps", "1", "--quiet", "--controller-size", "8", "--memory-size", "8", "--trace-every", "0")
    for args, expected in ((("--task", "repeat-copy"), (3e-3, 1, 50.0)), (("--task", "copy"), (1e-3, 0, 0.0)),
                           (("--task", "repeat-copy", "--lr", "0.01"), (0.01, 1, 50.0))):
        r = run(runner, "train", *args, *small, "--run-dir", tmp_path / "r")
        assert r.exit_code == 0, r.output
        cfg = json.loads((tmp_path / "r" / "config.json").read_text())
        assert (cfg["lr"], cfg["curriculum_start"], cfg["clip_norm"]) == expected


def test_trains_size_options_name_every_tasks_own_default():
    """--controller-size, --memory-size and --word-size say the model's default and every task's own."""
    import typer

    from attnviz.trainer.models import model_classes
    from attnviz.trainer.tasks import TASKS

    params = {p.name: p.help for p in typer.main.get_command(app).commands["train"].params}
    for field in ("controller_size", "memory_size", "word_size"):
        helped = params[field]
        for model in ("ntm", "dnc"):
            config_class = model_classes(model)[0]
            default = next(f.default for f in dataclasses.fields(config_class) if f.name == field)
            assert f"{default} for the {model.upper()}" in helped, (field, model)
        for name, task in TASKS.items():
            for model, options in task.model_defaults.items():
                if field in options:
                    assert f"{name}: {options[field]}" in helped, (field, name, model)


def test_a_resumed_runs_line_shows_the_runs_best_not_this_processs(capsys):
    from attnviz.cli import _training_progress

    with _training_progress(quiet=False) as on_event:  # not a terminal: one plain line per evaluation
        on_event({"kind": "start", "task": "priority-sort", "step": 100, "max_steps": 0, "max_seconds": 0.0,
                  "best": 25.71})
        on_event({"kind": "step", "step": 101, "sequences": 3232, "seconds": 10.0, "loss": 20.0})
        on_event({"kind": "eval", "step": 101, "sequences": 3232, "seconds": 10.5, "wrong_bits": 9.0,
                  "bits": 27.3, "judge": "bits", "score": 27.3, "rolled_back": False})
    assert "held-out 27.3 bits/seq, wrong bits/seq 9.000 (best 25.7 bits/seq)" in capsys.readouterr().err
