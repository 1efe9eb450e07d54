"""The addressing stages in the trace format: shapes, ranges, conversion, the recorder, and the check
that the recorded stages recombine into the recorded weightings."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import attnviz
from attnviz import Trace, TraceError, TraceRecorder
from attnviz.trace import RECOMBINE_TOL, STAGES, Recombination, check_values, stage_name

from conftest import copy_like_arrays, run

# ------------------------------------------------------------------------------------ format


def test_the_stages_of_every_head_kind_are_optional_datasets_and_attributes():
    full, bare = Trace(copy_like_arrays(full=True)), Trace(copy_like_arrays())
    for kind in ("write", "read"):
        for stage in STAGES:
            name = stage_name(kind, stage)
            assert getattr(full, name) is full[name] and getattr(bare, name) is None
    assert full.read_shifts.shape == (11, 3) and full.write_gates.shape == (11,)


@pytest.mark.parametrize("mutate, dataset, words", [
    (lambda a: a.update(read_content_weightings=a["read_content_weightings"][:, :-1]), "read_content_weightings",
     "has N = 15 (memory locations) but read_weightings has N = 16"),
    (lambda a: a.update(write_shifted_weightings=np.zeros((11, 2, 16))), "write_shifted_weightings",
     "has 2 head(s) but write_weightings has 1"),
    (lambda a: a.update(read_gates=np.zeros((11, 2))), "read_gates", "has 2 head(s) but read_weightings has 1"),
    (lambda a: a.update(write_shifts=np.full((11, 4), 0.25)), "write_shifts",
     "has 4 shift offsets; expected an odd number, S = 2R + 1 (offsets -R..R)"),
    (lambda a: a.update(read_sharpenings=np.ones((11, 1, 1))), "read_sharpenings",
     "has shape (11, 1, 1) (rank 3); expected (T,) or (T, heads)"),
    (lambda a: a.update(write_key_strengths=np.ones(10)), "write_key_strengths", "has 10 time steps"),
])
def test_stages_of_the_wrong_shape_are_named(mutate, dataset, words, tmp_path):
    arrays = copy_like_arrays(full=True)
    mutate(arrays)
    with pytest.raises(TraceError) as exc:
        Trace(arrays, name="s")
    assert exc.value.dataset == dataset and words in str(exc.value)
    with h5py.File(tmp_path / "t.h5", "w") as f:  # a file holding them: validate names them too
        for k, v in arrays.items():
            f[k] = v
    assert any(f"dataset '{dataset}': {words}" in line for line in attnviz.validate_file(tmp_path / "t.h5"))


def test_the_heads_axis_may_be_left_out_for_one_head_either_way():
    arrays = copy_like_arrays(full=True)
    arrays["write_weightings"] = arrays["write_weightings"][:, None]  # (T, 1, N), stages (T, N) and (T,)
    arrays["read_gates"] = arrays["read_gates"][:, None]  # (T, 1), weightings (T, N)
    arrays["read_shifts"] = arrays["read_shifts"][:, None]
    t = Trace(arrays)
    check = Recombination({k: v.shape for k, v in t.arrays.items()})
    check.add(0, t.arrays)
    assert check.problems() == []
    two = copy_like_arrays(full=True, heads=2)
    for k in ("adds", "erases", "reads"):
        two[k] = np.repeat(two[k][:, None], 2, axis=1)
    assert Trace(two).read_gates.shape == (11, 2) and Trace(two).write_shifts.shape == (11, 2, 3)


@pytest.mark.parametrize("dataset, row, words", [
    ("read_gates", 1.5, "has gate 1.5 at step 3; gates lie in [0, 1]"),
    ("write_gates", -0.2, "has gate -0.2 at step 3; gates lie in [0, 1]"),
    ("read_key_strengths", -1.0, "has key strength -1 at step 3; key strengths are >= 0"),
    ("write_sharpenings", 0.5, "has sharpening 0.5 at step 3; sharpenings are >= 1"),
    ("read_shifts", [0.5, 0.2, 0.2], "sums to 0.9 over offsets at step 3; expected 1 within 0.001"),
    ("read_shifts", [1.2, -0.2, 0.0], "has shift probability 1.2 at step 3, offset -1; shift probabilities lie"),
    ("write_content_weightings", "half", "sums to 0.5 over locations at step 3; expected 1 within 0.001"),
])
def test_stages_out_of_range_are_named_by_validate(dataset, row, words, tmp_path):
    arrays = copy_like_arrays(full=True)
    arrays[dataset][3] = arrays[dataset][3] / 2 if isinstance(row, str) else row
    t = Trace(arrays)  # a Trace holds them, as it holds weightings out of range
    attnviz.save(t, tmp_path / "t.h5")
    (line,) = attnviz.validate_file(tmp_path / "t.h5")  # the relations it takes part in are not checked
    assert f"trace '/': dataset '{dataset}': {words}" in line
    assert check_values(dataset, arrays[dataset], 0) is None  # only with a tolerance


def test_stage_ranges_allow_the_tolerance_and_name_head_and_location():
    gates = np.array([[0.5, 1.0005]])
    assert check_values("read_gates", gates, 0, stage_tol=1e-3) is None
    assert check_values("read_gates", gates, 7, stage_tol=1e-4) == (
        "has gate 1.0005 at step 7, head 1; gates lie in [0, 1]")
    w = np.full((2, 3, 4), 0.25)
    w[1, 2] = [0.5, 0.5, 0.5, -0.5]
    assert check_values("write_gated_weightings", w, 10, stage_tol=1e-3) == (
        "has weight -0.5 at step 11, head 2, location 3; weights lie in [0, 1]")
    from attnviz.trace import _stage_range

    assert _stage_range("sharpenings", np.array([np.nan, 2.0]), 0, 1e-3) is None  # NaN: reported as not finite


def test_stages_convert_losslessly_between_hdf5_and_npz(tmp_path, runner):
    arrays = copy_like_arrays(full=True, heads=2, seed=3)
    for k in ("adds", "erases", "reads"):
        arrays[k] = np.repeat(arrays[k][:, None], 2, axis=1)
    arrays["read_key_strengths"] = np.random.default_rng(0).random((11, 2)) * 30  # float64: any dtype is kept
    t = Trace(arrays, {"task": "copy"}, "run/a")
    attnviz.save(t, tmp_path / "t.h5")
    assert run(runner, "convert", tmp_path / "t.h5", tmp_path / "t.npz").exit_code == 0
    attnviz.convert(tmp_path / "t.npz", tmp_path / "back.h5")
    for name in ("t.h5", "t.npz", "back.h5"):
        back = attnviz.load(tmp_path / name)
        assert back == t and back.read_key_strengths.dtype == np.float64
        assert attnviz.validate_file(tmp_path / name) == []


# ---------------------------------------------------------------------------------- recorder


class _Torch:
    """What the recorder sees of a torch.Tensor that requires grad, on a GPU."""

    def __init__(self, a):
        self.a, self.detached = a, False

    def detach(self):
        self.detached = True
        return self

    def cpu(self):
        return self

    def __array__(self, dtype=None, copy=None):
        assert self.detached
        return np.asarray(self.a)


class _Jax:
    """A JAX array: numpy reads it through __array__."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.a)


@pytest.mark.parametrize("wrap", [np.asarray, _Torch, _Jax])
def test_the_recorder_takes_stages_from_any_framework(wrap, tmp_path):
    arrays = copy_like_arrays(full=True, heads=2)
    for k in ("adds", "erases", "reads"):
        arrays[k] = np.repeat(arrays[k][:, None], 2, axis=1)
    rec = TraceRecorder(task="copy")
    for t in range(11):
        rec.step(**{k: wrap(v[t]) for k, v in arrays.items()})
    assert rec.trace() == Trace(arrays, {"task": "copy"})
    one = copy_like_arrays(full=True)
    rec = TraceRecorder()
    for t in range(11):  # one head: (N,), (), (S,) per step
        rec.step(**{k: wrap(v[t]) for k, v in one.items()})
    assert rec.trace() == Trace(one)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dataset, value, words", [
    ("read_gates", np.zeros(2), "step 4: has 2 head(s) but read_weightings has 1"),
    ("write_content_weightings", np.full(15, 1 / 15), "step 4: has N = 15 (memory locations) but write_weightings "
                                                      "has N = 16"),
    ("read_shifts", np.full(4, 0.25), "step 4: has 4 shift offsets; expected an odd number"),
    ("write_sharpenings", np.ones((1, 1)), "step 4: has shape (1, 1, 1) (rank 3); expected (T,) or (T, heads)"),
])
def test_the_recorder_refuses_a_stage_of_the_wrong_shape_when_it_comes(dataset, value, words, stream, tmp_path):
    arrays = copy_like_arrays(full=True)
    arrays.pop(dataset)
    rec = TraceRecorder(stream_to=tmp_path / "s.h5" if stream else None, chunk_steps=2)
    for t in range(4):  # a dataset may start late: its first step is checked against the others'
        rec.step(**{k: v[t] for k, v in arrays.items()})
    with pytest.raises(TraceError) as exc:
        rec.step(**{k: v[4] for k, v in arrays.items()}, **{dataset: value})
    assert exc.value.dataset == dataset and words in str(exc.value)
    assert len(rec) == 4  # nothing of the refused step was kept
    whole = TraceRecorder()
    whole.record(**{k: v for k, v in copy_like_arrays(full=True).items() if k != "read_gates"})
    with pytest.raises(TraceError, match=r"steps 0 to 10: has 2 head\(s\) but read_weightings has 1"):
        whole.record(read_gates=np.zeros((11, 2)))


# ------------------------------------------------------------------------------ recombination


def addressed(kind, content, gates, shifts, sharpenings, before) -> dict[str, np.ndarray]:
    """The stages and weightings of heads that address as docs/trace-format.md says, from their content
    weightings (T, heads, N), gates (T, heads), shifts (T, heads, S), sharpenings (T, heads) and the
    weighting before step 0 (heads, N): a reference written apart from attnviz's own check."""
    T, H, N = content.shape
    R = (shifts.shape[-1] - 1) // 2
    out = {k: [] for k in ("gated_weightings", "shifted_weightings", "weightings")}
    w = before
    for t in range(T):
        wg = gates[t, :, None] * content[t] + (1 - gates[t, :, None]) * w
        ws = np.stack([[sum(shifts[t, h, k + R] * wg[h, (i - k) % N] for k in range(-R, R + 1)) for i in range(N)]
                       for h in range(H)])
        w = ws ** sharpenings[t, :, None] / (ws ** sharpenings[t, :, None]).sum(axis=-1, keepdims=True)
        for key, value in zip(out, (wg, ws, w), strict=True):
            out[key].append(value)
    arrays = {f"{kind}_{k}": np.array(v, np.float32) for k, v in out.items()}
    arrays.update({f"{kind}_content_weightings": content, f"{kind}_gates": gates, f"{kind}_shifts": shifts,
                   f"{kind}_sharpenings": sharpenings, f"{kind}_key_strengths": np.ones((T, H))})
    return {k: np.asarray(v, np.float32) for k, v in arrays.items()}


def random_addressing(T=12, H=2, N=10, S=3, seed=0) -> dict[str, np.ndarray]:
    """A trace whose write and read heads address with random stages, recorded as float32."""
    rng = np.random.default_rng(seed)

    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    arrays = {"inputs": np.zeros((T, 2), np.float32), "outputs": np.zeros((T, 2), np.float32)}
    for kind in ("write", "read"):
        arrays.update(addressed(kind, softmax(rng.normal(0, 2, (T, H, N))), rng.random((T, H)),
                                softmax(rng.normal(0, 1, (T, H, S))), 1 + 3 * rng.random((T, H)),
                                softmax(rng.normal(0, 2, (H, N)))))
    return arrays


def test_random_stages_recombine_whole_and_in_blocks():
    arrays = random_addressing(T=12, H=2, N=10, S=5)
    check = Recombination({k: v.shape for k, v in arrays.items()})
    assert len(check.checks) == 6 and set(check.datasets) == set(arrays) - {"inputs", "outputs", "write_key_strengths",
                                                                          "read_key_strengths"}
    for start in range(0, 12, 5):
        check.add(start, {k: arrays[k][start : start + 5] for k in check.datasets})
    assert check.problems() == []
    one = {k: v[:, 0] for k, v in random_addressing(H=1).items() if v.ndim > 1 and k not in ("inputs", "outputs")}
    one |= {"inputs": np.zeros((12, 2)), "outputs": np.zeros((12, 2))}  # no heads axis
    check = Recombination({k: v.shape for k, v in one.items()})
    check.add(0, one)
    assert check.problems() == [] and Trace(one).read_gates.shape == (12,)


@pytest.mark.parametrize("dataset, relation, recorded", [
    ("read_content_weightings", "interpolation", "read_gated_weightings"),
    ("read_gates", "interpolation", "read_gated_weightings"),
    ("read_gated_weightings", "interpolation", "read_gated_weightings"),  # and the shift, which uses it
    ("read_shifts", "shift", "read_shifted_weightings"),
    ("read_shifted_weightings", "shift", "read_shifted_weightings"),  # and the sharpening
    ("read_sharpenings", "sharpening", "read_weightings"),
    ("read_weightings", "sharpening", "read_weightings"),  # and the interpolation of the next step
])
def test_a_wrong_stage_is_named_with_its_step_head_and_relation(dataset, relation, recorded, tmp_path):
    arrays = random_addressing()
    a = arrays[dataset]
    a[9, 1] = a[9, 1] + 0.4 if a.ndim == 2 else np.roll(a[9, 1], 1)  # a gate stays in [0, 1.4]: range checks are
    attnviz.save(Trace(arrays, name="r"), tmp_path / "t.h5")  # left out of this test
    lines = [line for line in attnviz.validate_file(tmp_path / "t.h5") if "recombine" in line]
    assert lines and all("read head 1" in line for line in lines), lines
    line = next(line for line in lines if f"the {relation} does not recombine" in line)
    assert f"trace 'r': dataset '{recorded}': read head 1: the {relation} does not recombine, first at step 9: " in line
    assert f"(tolerance {RECOMBINE_TOL:g}); off at 1 of the 1" in line


def test_a_gated_weighting_off_at_one_step_fails_its_relation_and_the_shift_that_uses_it(tmp_path, runner):
    arrays = copy_like_arrays(full=True, L=6, N=16)
    arrays["write_gated_weightings"][4] = np.roll(arrays["write_gated_weightings"][4], 2)
    attnviz.save(Trace(arrays), tmp_path / "t.npz")
    assert [line.split(": ", 2)[2] for line in attnviz.validate_file(tmp_path / "t.npz")] == [
        "dataset 'write_gated_weightings': write head 0: the interpolation does not recombine, first at step 4: "
        "write_gated_weightings at location 3 is 1 away from write_gates * write_content_weightings + (1 - "
        "write_gates) * the write_weightings of the step before (tolerance 0.0001); off at 1 of the 12 steps checked",
        "dataset 'write_shifted_weightings': write head 0: the shift does not recombine, first at step 4: "
        "write_shifted_weightings at location 4 is 1 away from write_gated_weightings shifted by write_shifts "
        "(tolerance 0.0001); off at 1 of the 13 steps checked",
    ]
    result = run(runner, "validate", tmp_path / "t.npz")
    assert result.exit_code == 1 and result.stderr.count("does not recombine") == 2


def test_step_zero_is_not_checked_against_a_weighting_the_trace_does_not_hold(tmp_path):
    arrays = random_addressing(T=12)  # step 0 interpolates with a weighting from before it, not in the trace
    attnviz.save(Trace(arrays), tmp_path / "t.h5")
    assert attnviz.validate_file(tmp_path / "t.h5") == []
    arrays["write_gated_weightings"][0] = np.roll(arrays["write_gated_weightings"][0], 1, axis=-1)
    attnviz.save(Trace(arrays), tmp_path / "t.h5")
    lines = attnviz.validate_file(tmp_path / "t.h5")
    assert len(lines) == 2 and all("the shift does not recombine, first at step 0" in line for line in lines)
    assert "write head 0" in lines[0] and "write head 1" in lines[1] and "1 of the 12 steps" in lines[0]


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_recombination_is_checked_block_by_block_and_reads_each_member_once(suffix, tmp_path, monkeypatch):
    from attnviz.io import NPZFile, TraceInfo, open_traces, recombination_problems

    arrays = copy_like_arrays(full=True, L=3000, N=16)
    arrays["read_shifts"][4321] = arrays["read_shifts"][4321, ::-1]
    attnviz.save(Trace(arrays), tmp_path / f"t{suffix}")
    opened = []
    original = NPZFile._open
    monkeypatch.setattr(NPZFile, "_open", lambda self, member: opened.append(member) or original(self, member))
    with open_traces(tmp_path / f"t{suffix}") as f:
        info = f.info("/")
        whole = recombination_problems(f, "/", info)
        opened.clear()
        starts = []
        blocks = f.step_blocks

        def spy(*args, **kw):
            for start, block in blocks(*args, **kw):
                starts.append(start)
                yield start, block

        monkeypatch.setattr(f, "step_blocks", spy)
        row = 2 * (4 * 16 + 3 + 2) * 8  # bytes of a step: 2 kinds x (4 x N + S + 2 scalars) float64 values
        small = recombination_problems(f, "/", info, block_bytes=100 * row)
    assert isinstance(info, TraceInfo) and small == whole and len(whole) == 1
    assert "first at step 4321" in whole[0] and "off at 1 of the 6001 steps checked" in whole[0]
    assert starts == list(range(0, 6001, 100))
    if suffix == ".npz":
        assert sorted(opened) == sorted(f"{k}.npy" for k in Recombination(
            {k: v.shape for k, v in arrays.items()}).datasets)  # each once, read as a stream


# ------------------------------------------------------------------------------ the trainer's


SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"


def test_the_shipped_checkpoint_records_every_stage_and_they_recombine(tmp_path):
    attnviz.record(SAMPLES / "copy_checkpoint.npz", 20, tmp_path / "t.h5")
    t = attnviz.load(tmp_path / "t.h5")
    shapes = {"content_weightings": (41, 128), "key_strengths": (41,), "gates": (41,), "gated_weightings": (41, 128),
              "shifts": (41, 3), "shifted_weightings": (41, 128), "sharpenings": (41,)}
    for kind in ("write", "read"):
        for stage in STAGES:
            a = t[stage_name(kind, stage)]
            assert a.shape == shapes[stage] and a.dtype == np.float32
    assert attnviz.validate_file(tmp_path / "t.h5") == []
    check = Recombination({k: a.shape for k, a in t.arrays.items()}, tol=RECOMBINE_TOL / 100)
    check.add(0, t.arrays)
    assert check.problems() == []  # float32 storage recombines a hundred times within the tolerance
    arrays = dict(t.arrays, read_shifts=t.read_shifts.copy())
    arrays["read_shifts"][25] = arrays["read_shifts"][25, ::-1]  # a recorder that took the offsets backwards
    attnviz.save(Trace(arrays, t.metadata), tmp_path / "wrong.npz")
    (line,) = attnviz.validate_file(tmp_path / "wrong.npz")
    assert ("dataset 'read_shifted_weightings': read head 0: the shift does not recombine, first at step 25: "
            "read_shifted_weightings at location 126 is") in line and "off at 1 of the 41 steps checked" in line


def test_the_trainer_names_the_stages_as_the_format_does():
    from attnviz.trainer.ntm import recording

    assert recording.STAGES == STAGES  # written out there: attnviz.trainer imports nothing of attnviz outside it


def test_every_head_of_a_model_with_several_records_its_stages():
    from attnviz.trainer.config import TrainConfig
    from attnviz.trainer.models import make_model_config
    from attnviz.trainer.ntm.model import NTM
    from attnviz.trainer.record import record
    from attnviz.trainer.tasks import get_task

    task = get_task("copy")
    model = {"controller_size": 16, "memory_size": 12, "word_size": 6, "read_heads": 2, "write_heads": 3,
             "shift_range": 2}
    cfg = make_model_config(TrainConfig(task="copy", model=model), task)
    arrays, meta = record(NTM.create(cfg, seed=1), task, 4)
    t = Trace(arrays, meta)
    assert t.write_content_weightings.shape == (9, 3, 12) and t.read_shifts.shape == (9, 2, 5)
    assert t.write_gates.shape == (9, 3) and t.read_sharpenings.shape == (9, 2)
    check = Recombination({k: a.shape for k, a in arrays.items()})
    check.add(0, arrays)
    assert len(check.checks) == 6 and check.problems() == []


# ------------------------------------------------------------------------- how heads addressed


def test_inspect_says_how_the_shipped_copy_models_heads_addressed(tmp_path, runner):
    attnviz.record(SAMPLES / "copy_checkpoint.npz", 20, tmp_path / "copy.h5")
    (trace,) = attnviz.summarize(tmp_path / "copy.h5")["traces"]
    write, read = trace["addressing"]
    assert write["head"] == "write:0" and read["head"] == "read:0"
    assert read["steps"] == 40 and read["output_steps"] == 20  # steps 1-40: step 0 has no weighting before it
    assert read["content_lookup"] == {"count": 0, "steps": [], "output_steps": 0}
    assert read["shifts"] == {"-1": {"count": 19, "steps": [[22, 40]], "output_steps": 19}}
    assert read["stay"] == {"count": 21, "steps": [[1, 21]], "output_steps": 1}  # waiting, then at the first item
    assert write["shifts"]["-1"]["steps"] == [[2, 40]] and write["content_lookup"]["count"] == 0
    result = run(runner, "inspect", tmp_path / "copy.h5")
    assert result.exit_code == 0
    assert ("  read head: content lookup at none; shifts by -1 at 19 steps (22-40), 19 of the 20 output steps; "
            "stays at 21 steps (1-21), 1 of the 20 output steps\n") in result.stdout
    result = run(runner, "inspect", tmp_path / "copy.h5", "--json")
    assert json.loads(result.stdout)[0]["traces"][0]["addressing"] == [write, read]
    assert attnviz.addressing_summary(attnviz.load(tmp_path / "copy.h5")) == [write, read]


def peak(N, i, height):
    """A content weighting over N locations peaking at i, the rest spread evenly."""
    return np.where(np.arange(N) == i, height, (1 - height) / (N - 1))


def _recall_trace() -> Trace:
    """An associative-recall sequence of 3 items (task layout) whose heads address as a trained model's do:
    the write head walks +1 a step; the read head is diffuse until the second query delimiter (step 16),
    where its content weighting finds the query's location (4) and a shift of +1 takes it to the next
    item's (5), which it then reads out, moving +1 a step."""
    from attnviz.trainer.tasks import get_task

    b = get_task("associative-recall").make(np.random.default_rng(0), 1, 3)
    T, N = b.x.shape[0], 16
    up, spread, uniform = [0.02, 0.03, 0.95], [1 / 3] * 3, np.full(N, 1 / N)
    arrays = {"inputs": b.x[:, 0], "outputs": b.y[:, 0], "targets": b.y[:, 0], "output_mask": b.mask[:, 0] > 0}
    arrays.update(addressed("write", np.tile(uniform, (T, 1, 1)), np.zeros((T, 1)), np.tile(up, (T, 1, 1)),
                            np.full((T, 1), 30.0), np.eye(N)[[0]]))
    content, gates = np.tile(uniform, (T, 1, 1)), np.full((T, 1), 0.5)
    shifts, gammas = np.tile(spread, (T, 1, 1)), np.ones((T, 1))
    content[16], gates[16], shifts[16], gammas[16] = peak(N, 4, 0.85), 0.9, up, 30
    gates[17:], shifts[17:], gammas[17:] = 0, up, 30
    arrays.update(addressed("read", content, gates, shifts, gammas, uniform[None]))
    return Trace({k: v[:, 0] if k.startswith(("write_", "read_")) else v for k, v in arrays.items()},
                 {"task": "associative-recall"})


def test_inspect_finds_the_content_lookup_of_associative_recall_at_the_query(tmp_path, runner):
    t = _recall_trace()
    assert t.inputs[16, -1] == 1 and t.output_mask.tolist() == [False] * 17 + [True] * 3  # the query's delimiter
    write, read = attnviz.addressing_summary(t)
    assert read["content_lookup"] == {"count": 1, "steps": [[16, 16]], "output_steps": 0}
    assert read["shifts"] == {"+1": {"count": 3, "steps": [[17, 19]], "output_steps": 3}}
    assert read["diffuse"]["steps"] == [[1, 15]] and read["stay"]["count"] == 0
    assert write["shifts"] == {"+1": {"count": 19, "steps": [[1, 19]], "output_steps": 3}}
    attnviz.save(t, tmp_path / "recall.npz")
    assert attnviz.validate_file(tmp_path / "recall.npz") == []  # the stages are consistent
    result = run(runner, "inspect", tmp_path / "recall.npz")
    assert ("  read head: content lookup at 1 step (16); shifts by +1 at 3 steps (17-19), 3 of the 3 output steps; "
            "diffuse at 15 steps (1-15)\n") in result.stdout
    assert "  write head: content lookup at none; shifts by +1 at 19 steps (1-19), 3 of the 3 output steps\n" in (
        result.stdout)


def test_a_content_jump_of_a_focused_head_is_a_lookup_and_a_closed_gate_never_is():
    N, T = 16, 10
    content, gates = np.tile(peak(N, 12, 0.9), (T, 1, 1)), np.zeros((T, 1))
    gates[6] = 1.0  # at step 6 only, the content weighting (12, shifted +1) takes the head from 6 to 13
    arrays = addressed("read", content, gates, np.tile([0.0, 0.0, 1.0], (T, 1, 1)), np.full((T, 1), 30.0),
                       np.eye(N)[[0]])
    arrays = {k: v[:, 0] for k, v in arrays.items()} | {"inputs": np.zeros((T, 1)), "outputs": np.zeros((T, 1))}
    arrays |= {k.replace("read", "write"): v for k, v in arrays.items() if k.startswith("read")}
    arrays["write_gates"] = np.full(T, 0.2)  # the same jump behind a gate below GATE_OPEN: not a lookup
    kinds, moves = addressing_steps_of(arrays, "read")
    assert kinds.tolist() == ["shift"] * 5 + ["content"] + ["shift"] * 3 and moves[5] == 7
    write, read = attnviz.addressing_summary(Trace(arrays))
    assert write["content_lookup"]["count"] == 0 and read["content_lookup"]["steps"] == [[6, 6]]
    two = {k: np.stack([v, v], axis=1) if k.startswith("read") else v for k, v in arrays.items()}
    from attnviz.analysis import describe_addressing

    lines = describe_addressing(attnviz.addressing_summary(Trace(two)))
    assert [line.split(":")[0] for line in lines] == ["write head", "read head 0", "read head 1"]


def addressing_steps_of(arrays, kind):
    from attnviz.analysis import addressing_steps

    return addressing_steps(*(arrays[f"{kind}_{s}"] for s in ("weightings", "content_weightings", "gates", "shifts")))


def test_the_summary_block_by_block_is_the_summary_whole():
    from attnviz.analysis import Addressing

    arrays = random_addressing(T=40, H=2, N=6, seed=5)  # random: every kind of step, ranges cut by blocks
    arrays["output_mask"] = np.arange(40) % 3 == 0
    whole = attnviz.addressing_summary(Trace(arrays))
    blocks = Addressing(arrays)
    for start in range(0, 40, 7):
        blocks.add(start, {k: arrays[k][start : start + 7] for k in blocks.datasets})
    assert blocks.summary() == whole
    kinds = {k for head in whole for k in ("content_lookup", "stay", "diffuse") if head[k]["count"]}
    assert kinds == {"content_lookup", "stay", "diffuse"} and all(head["shifts"] for head in whole)
    assert all(sum(h[k]["count"] for k in ("content_lookup", "stay", "diffuse"))
               + sum(s["count"] for s in h["shifts"].values()) == 39 for h in whole)


def test_steps_with_values_that_are_not_finite_are_counted_apart(tmp_path):
    from attnviz.analysis import Addressing, describe_addressing

    t = attnviz.load(SAMPLES / "copy_len20.h5")
    arrays = dict(t.arrays, read_weightings=t.read_weightings.copy(), read_gates=t.read_gates.copy())
    arrays["read_weightings"][30, 5] = np.nan  # a model that diverged: a Trace may not hold it, a file may
    arrays["read_gates"][35] = np.inf
    summary = Addressing(arrays)
    summary.add(0, arrays)
    write, read = summary.summary()
    assert read["non_finite"] == {"count": 3, "steps": [[30, 31], [35, 35]], "output_steps": 3}  # 31: NaN before it
    assert read["shifts"]["-1"]["count"] == 19 - 3 and "non_finite" not in write
    assert describe_addressing([read])[0].endswith("; not finite at 3 steps (30-31, 35), 3 of the 20 output steps")
