"""Seed sweeps: one run folder per seed, sharded, resumed, side by side."""

import json

import pytest

import attnviz
from attnviz.errors import OptionError
from attnviz.sweep import parse_seeds, shard_seeds, sweep
from attnviz.training import run_state, write_status

from conftest import run

TINY = ["--max-steps", "10", "--trace-every", "0", "--set", "eval_every=5", "--set", "heldout_per_length=2",
        "--controller-size", "16", "--memory-size", "16"]


def test_seeds_are_ranges_and_lists_and_shards_slice_them_disjointly():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("0,2,5-7,2") == [0, 2, 5, 6, 7]
    for bad, says in [("3-1", "counts down"), ("x", "give seeds as"), ("", "give seeds as"), ("1-", "give seeds")]:
        with pytest.raises(OptionError, match=says):
            parse_seeds(bad)
    seeds = list(range(10))
    slices = [shard_seeds(seeds, (k, 3)) for k in (1, 2, 3)]
    assert sorted(s for part in slices for s in part) == seeds and slices[0] == [0, 3, 6, 9]


def test_two_shards_train_the_whole_sweep_once(runner, tmp_path):
    folder = tmp_path / "sweep"
    firsts = []
    for k in (1, 2):
        r = run(runner, "train", "--seeds", "0-4", "--shard", f"{k}/2", "--run-dir", folder, *TINY)
        assert r.exit_code == 0, r.output
        firsts.append(sorted(int(line.split()[1].rstrip(":")) for line in r.stderr.splitlines()
                             if "started in" in line))
    assert firsts == [[0, 2, 4], [1, 3]]
    assert sorted(p.name for p in folder.iterdir()) == [f"seed{s}" for s in range(5)]
    for s in range(5):
        assert json.loads((folder / f"seed{s}" / "config.json").read_text())["seed"] == s
        assert len((folder / f"seed{s}" / "metrics.csv").read_text().splitlines()) == 3  # header, steps 5, 10
        assert run_state(folder / f"seed{s}") == {"state": "finished", "reason": "max_steps"}


def test_running_a_sweep_again_continues_the_unfinished_and_skips_the_converged(runner, tmp_path):
    folder = tmp_path / "sweep"
    assert run(runner, "train", "--seeds", "0-2", "--run-dir", folder, *TINY).exit_code == 0
    write_status(folder / "seed1", "finished", "converged")
    more = [a if a != "10" else "20" for a in TINY]
    r = run(runner, "train", "--seeds", "0-2", "--run-dir", folder, *more)
    assert r.exit_code == 0, r.output
    assert "seed 1: skipped, converged" in r.stderr
    assert "seed 0: resumed" in r.stderr and "seed 2: resumed" in r.stderr
    steps = {s: (folder / f"seed{s}" / "metrics.csv").read_text().splitlines()[-1].split(",")[0] for s in range(3)}
    assert steps == {0: "20", 1: "10", 2: "20"}
    assert "3 of 3 seeds done, 1 converged" in r.stdout

    # a sweep's options must be the runs' own
    r = run(runner, "train", "--seeds", "0-2", "--run-dir", folder, *more, "--lr", "0.01")
    assert r.exit_code == 1 and "lr is 0.001 there, not 0.01" in r.stderr


def test_seeds_side_by_side_learn_the_same_numbers_as_one_after_another(tmp_path):
    opts = {"task": "copy", "max_steps": 10, "trace_every": 0, "eval_every": 5, "heldout_per_length": 2,
            "model": {"controller_size": 16, "memory_size": 16}}
    events = []
    alone = sweep("0-2", tmp_path / "a", parallel=1, **opts)
    both = sweep("0-2", tmp_path / "b", parallel=2, on_event=events.append, **opts)
    assert [r["seed"] for r in alone] == [r["seed"] for r in both] == [0, 1, 2]
    assert max(e["running"] for e in events if e["kind"] == "sweep") == 2

    def numbers(folder, s):  # every column but the seconds
        return [line.rsplit(",", 1)[0] for line in (folder / f"seed{s}" / "metrics.csv").read_text().splitlines()]

    for s in range(3):
        assert numbers(tmp_path / "a", s) == numbers(tmp_path / "b", s)


def test_sweep_usage_errors(runner, tmp_path):
    for args, says in [(["--seeds", "3-1"], "counts down"), (["--seeds", "x"], "give seeds as"),
                       (["--seeds", "0-1", "--shard", "3/2"], "K must be between 1 and N"),
                       (["--shard", "1/2"], "--shard is for a sweep"),
                       (["--seeds", "0-1", "--seed", "3"], "--seed has no place"),
                       (["--seeds", "0-1", "--parallel", "0"], "--parallel 0")]:
        r = run(runner, "train", *args, "--run-dir", tmp_path / "x", *TINY)
        assert r.exit_code == 2, (args, r.output)
        assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_run_that_was_killed_is_stopped_not_running(tmp_path):
    r = attnviz.train(run_dir=tmp_path / "r", max_steps=5, trace_every=0, eval_every=5, heldout_per_length=2,
                      model={"controller_size": 16, "memory_size": 16})
    assert r["reason"] == "max_steps" and run_state(tmp_path / "r")["state"] == "finished"
    write_status(tmp_path / "r", "running")  # this process is alive: running
    assert run_state(tmp_path / "r")["state"] == "running"
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    (tmp_path / "r" / "status.json").write_text(json.dumps({**status, "pid": 2**22 + 12345}))
    assert run_state(tmp_path / "r") == {"state": "stopped", "reason": "killed"}
    assert run_state(tmp_path / "nothing") == {"state": "new", "reason": None}


def test_a_seed_that_diverges_is_reported_the_sweep_goes_on_and_a_rerun_skips_it(runner, tmp_path):
    folder = tmp_path / "sweep"
    fast = [a if a != "10" else "40" for a in TINY] + ["--set", "clip=0"]
    r = run(runner, "train", "--seeds", "0-1", "--run-dir", folder, *fast, "--lr", "1e38")
    assert r.exit_code == 4, r.output
    for s in (0, 1):  # seed 1 was trained after seed 0 diverged
        line = next(line for line in r.stderr.splitlines() if line.startswith(f"seed {s}: diverged at step 2: "))
        assert "no checkpoint had been written" in line and f"{folder / f'seed{s}' / 'diverged.h5'}" in line
        assert run_state(folder / f"seed{s}") == {"state": "stopped", "reason": "diverged"}
    assert "2 of 2 seeds done, 0 converged, 2 diverged" in r.stdout
    r = run(runner, "train", "--seeds", "0-2", "--run-dir", folder, *fast, "--lr", "1e38")
    assert r.exit_code == 4 and "seed 0: skipped, diverged" in r.stderr and "seed 1: skipped, diverged" in r.stderr
    assert "seed 2: diverged at step 2" in r.stderr and "3 of 3 seeds done, 0 converged, 3 diverged" in r.stdout
    write_status(folder / "seed2", "stopped", "killed")  # a worse error wins the exit code: a failed seed
    (folder / "seed2" / "checkpoint.npz").write_bytes(b"damaged")
    r = run(runner, "train", "--seeds", "0-2", "--run-dir", folder, *fast, "--lr", "1e38")
    assert r.exit_code == 1 and "seed 2: failed: " in r.stderr and "2 diverged" in r.stdout
