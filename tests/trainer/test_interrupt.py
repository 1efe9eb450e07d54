"""Interrupted training: a killed run leaves a checkpoint, no process, and resumes as if never stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import attnviz
from attnviz.trainer.checkpoint import load_checkpoint

SMALL = {"model": {"memory_size": 16, "word_size": 8, "controller_size": 16}, "task_options": {"max_length": 5},
         "eval_every": 10, "trace_every": 40, "checkpoint_every": 10**6}
STEPS = 400


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_for(condition, seconds=30.0):
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > seconds:
            return False
        time.sleep(0.05)
    return True


def metric_rows(run: Path) -> list[list[str]]:
    """metrics.csv without its seconds column (the only one that depends on the machine)."""
    return [line.split(",")[:-1] for line in (run / "metrics.csv").read_text().splitlines()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc to find the workers")
def test_sigkill_after_a_timed_checkpoint_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    script = (f"import attnviz; attnviz.train(task='copy', run_dir={str(killed)!r}, seed=5, max_steps={STEPS}, "
              f"processes=2, checkpoint_seconds=0.5, **{SMALL!r})")
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    assert wait_for(lambda: (killed / "checkpoint.npz").exists()), proc.stderr.read()
    workers = children(proc.pid)
    assert workers, "a gradient worker process runs beside the main one"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_for(lambda: not any(alive(w) for w in workers), 10), "a worker outlived its killed parent"
    step = load_checkpoint(killed / "checkpoint.npz")[1]["progress"]["step"]
    assert 0 < step < STEPS

    result = attnviz.train(resume=killed, max_steps=STEPS, processes=1)
    assert result["reason"] == "max_steps" and result["step"] == STEPS
    whole = tmp_path / "whole"
    attnviz.train(task="copy", run_dir=whole, seed=5, max_steps=STEPS, processes=1, **SMALL)

    a, _ = load_checkpoint(killed / "checkpoint.npz")
    b, _ = load_checkpoint(whole / "checkpoint.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # bit for bit
    assert metric_rows(killed) == metric_rows(whole)  # no repeated or missing steps
    snapshots = [t.name for t in attnviz.iter_traces(killed / "traces.h5")]
    assert snapshots == sorted(set(snapshots)) and attnviz.validate_file(killed / "traces.h5") == []
    assert set(snapshots) >= {t.name for t in attnviz.iter_traces(whole / "traces.h5")}


def test_sigterm_stops_after_a_checkpoint_with_exit_143(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "attnviz", "train", "--run-dir", str(run), "--max-steps", "100000",
            "--memory-size", "16", "--word-size", "8", "--controller-size", "16", "--processes", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert wait_for(lambda: (run / "metrics.csv").exists() and len(metric_rows(run)) > 1)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert out.startswith("interrupted: step ")
    step = load_checkpoint(run / "checkpoint.npz")[1]["progress"]["step"]
    assert f"step {step}," in out
    assert wait_for(lambda: not any(alive(w) for w in workers), 10)


def test_resume_keeps_the_runs_options_and_stops_at_once_when_done(tmp_path, runner):
    from conftest import run

    small = ["--memory-size", "16", "--word-size", "8", "--controller-size", "16", "--processes", "1"]
    r = run(runner, "train", "--run-dir", tmp_path / "r", "--max-steps", "20", *small)
    assert r.exit_code == 0, r.output
    before = (tmp_path / "r" / "checkpoint.npz").read_bytes()
    r = run(runner, "train", "--resume", tmp_path / "r", "--max-steps", "20")
    assert r.exit_code == 0 and r.stdout.startswith("already at max_steps: step 20,")
    r = run(runner, "train", "--resume", tmp_path / "r", "--max-steps", "10")
    assert r.exit_code == 0 and r.stdout.startswith("already at max_steps: step 20,")
    assert (tmp_path / "r" / "checkpoint.npz").read_bytes() == before  # nothing to do: nothing written
    r = run(runner, "train", "--resume", tmp_path / "r", "--max-steps", "30", "--lr", "0.01")
    assert r.exit_code == 1 and "lr is 0.001 there, not 0.01" in r.stderr
    r = run(runner, "train", "--resume", tmp_path / "r", "--max-steps", "30", "--memory-size", "32")
    assert r.exit_code == 1 and "model is {'memory_size': 16} there" in r.stderr
    r = run(runner, "train", "--resume", tmp_path / "r", "--max-steps", "30", "--seed", "3")
    assert r.exit_code == 2 and "--seed" in r.stderr
    assert (tmp_path / "r" / "checkpoint.npz").read_bytes() == before  # refused: nothing written
    r = run(runner, "train", "--resume", tmp_path / "r", "--max-steps", "30", "--memory-size", "16")
    assert r.exit_code == 0 and r.stdout.startswith("max_steps: step 30,")


def test_checkpoints_are_checked_before_they_are_read(tmp_path, runner):
    import zipfile

    from conftest import run

    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("meta.npy", "w") as fp:
            np.lib.format.write_array(fp, np.array(json.dumps({"checkpoint_version": 1})))
        with z.open("param/out_W.npy", "w") as fp:  # declares 4.7 GiB, holds nothing
            np.lib.format.write_array_header_1_0(fp, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (25_000, 25_000)})
    r = run(runner, "record", bomb, "-o", tmp_path / "t.h5")
    assert r.exit_code == 1 and "declares 4,768 MiB of arrays" in r.stderr
    trace = tmp_path / "trace.h5"
    from conftest import copy_like_arrays

    attnviz.save(attnviz.Trace(copy_like_arrays()), trace)
    r = run(runner, "record", trace, "-o", tmp_path / "t.h5")
    assert r.exit_code == 1 and "not an attnviz checkpoint (not an NPZ file" in r.stderr
    assert "pickle" not in r.stderr
    r = run(runner, "record", Path(__file__).parents[2] / "sample_traces" / "copy_checkpoint.npz",
            "--length", "100000", "-o", tmp_path / "t.h5")
    assert r.exit_code == 1 and "too long to record" in r.stderr and not (tmp_path / "t.h5").exists()


def _group_run(args, run_dir: Path, rows=1):
    """Start `attnviz ARGS` in a process group of its own; return it once run_dir has metrics rows."""
    proc = subprocess.Popen([sys.executable, "-m", "attnviz", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"}, start_new_session=True)
    assert wait_for(lambda: any(len(metric_rows(m.parent)) > rows for m in run_dir.rglob("metrics.csv")), 60)
    return proc


SMALL_ARGS = ["--memory-size", "16", "--word-size", "8", "--controller-size", "16", "--max-steps", "100000"]


def test_sigterm_to_the_whole_process_group_stops_after_a_checkpoint(tmp_path):
    """A batch system's SIGTERM reaches the gradient worker too: it leaves the stopping to the main process."""
    run = tmp_path / "run"
    proc = _group_run(["train", "--run-dir", str(run), "--processes", "2", *SMALL_ARGS], run)
    workers = children(proc.pid)
    assert workers
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert out.startswith("interrupted: step ") and "error" not in err
    assert load_checkpoint(run / "checkpoint.npz")[1]["progress"]["step"] > 0
    assert wait_for(lambda: not any(alive(w) for w in workers), 10)


def test_a_killed_gradient_worker_stops_the_run_in_one_line_with_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = _group_run(["train", "--run-dir", str(run), "--processes", "2", "--checkpoint-every", "10",
                       *SMALL_ARGS], run, rows=2)
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith(f"attnviz: error: {run}: the gradient worker process ended (killed?) at step ")
    assert last.endswith(f"continue with attnviz train --resume {run}") and "Traceback" not in err
    assert load_checkpoint(run / "checkpoint.npz")[1]["progress"]["step"] > 0
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"


def test_sigterm_stops_a_sweep_of_seeds_side_by_side_after_their_checkpoints(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _group_run(["train", "--seeds", "0-3", "--parallel", "2", "--run-dir", str(sweep), *SMALL_ARGS], sweep)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "seeds done" in out and "error" not in err
    started = sorted(p.name for p in sweep.iterdir())
    assert started == ["seed0", "seed1"]  # no seed started after the signal
    for name in started:
        assert json.loads((sweep / name / "status.json").read_text())["reason"] == "interrupted"
        assert load_checkpoint(sweep / name / "checkpoint.npz")[1]["progress"]["step"] > 0
