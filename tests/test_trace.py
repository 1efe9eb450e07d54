import numpy as np
import pytest

from attnviz import Trace, TraceError
from attnviz.trace import check_structure, check_values

from conftest import copy_like_arrays


def test_valid_trace_builds_and_exposes_shapes():
    t = Trace(copy_like_arrays(L=4, N=10), {"task": "copy", "step": 3}, name="/a/b/")
    assert t.name == "a/b"
    assert t.steps == 9 and t.locations == 10
    assert t.heads("write_weightings").shape == (9, 1, 10)
    assert t.metadata == {"task": "copy", "step": 3}


def test_every_dataset_a_trace_may_hold_is_an_attribute():
    from attnviz.trace import DATASETS

    full = Trace(copy_like_arrays(full=True) | {"output_mask": np.ones(11, bool)})
    bare = Trace(copy_like_arrays())
    for key in DATASETS:
        assert getattr(full, key) is (full[key] if key in full else None)
        assert getattr(bare, key) is (bare[key] if key in bare else None)
    assert bare.adds is None and "adds=(11, 4)" in repr(full) and full.adds.shape == (11, 4)


@pytest.mark.parametrize("mutate, dataset, words", [
    (lambda a: a.pop("outputs"), "outputs", "missing required"),
    (lambda a: a.update(inputs=a["inputs"][:, :, None]), "inputs", "rank 3"),
    (lambda a: a.update(outputs=a["outputs"][:-1]), "outputs", "time steps"),
    (lambda a: a.update(read_weightings=a["read_weightings"][:, :-1]), "read_weightings", "N (memory locations)"),
    (lambda a: a.update(inputs=a["inputs"].astype(np.complex64)), "inputs", "complex"),
    (lambda a: a.update(inputs=a["inputs"].astype(str)), "inputs", "string"),
    (lambda a: a.update(inputs=a["inputs"].astype(object)), "inputs", "object"),
    (lambda a: a.update(memory=np.zeros((9, 7, 3))), "memory", "N (memory locations)"),
    (lambda a: a.update(targets=np.zeros((9, 3))), "targets", "output_width"),
])
def test_structure_problems_name_the_dataset(mutate, dataset, words):
    arrays = copy_like_arrays(L=4, N=10)
    mutate(arrays)
    with pytest.raises(TraceError) as exc:
        Trace(arrays, name="s")
    assert exc.value.dataset == dataset
    assert words in str(exc.value)
    assert "trace 's'" in str(exc.value)


def test_zero_steps_is_refused():
    arrays = {k: v[:0] for k, v in copy_like_arrays().items()}
    with pytest.raises(TraceError, match="0 time steps"):
        Trace(arrays)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_a_trace_holds_non_finite_values_and_validation_names_the_first(bad, suffix, tmp_path):
    import attnviz

    arrays = copy_like_arrays(L=4, N=10)
    arrays["write_weightings"][3, 7] = bad
    arrays["write_weightings"][5, 2] = bad
    trace = Trace(arrays)  # a model that diverged: kept, to be looked at
    assert np.array_equal(trace.write_weightings, arrays["write_weightings"], equal_nan=True)
    assert check_values("write_weightings", arrays["write_weightings"], start=10) == (
        f"contains {bad} at step 13, location 7; values must be finite")
    assert check_values("write_weightings", arrays["write_weightings"], finite=False) is None
    path = attnviz.save(trace, tmp_path / f"t{suffix}")
    back = attnviz.load(path)
    assert np.array_equal(back.write_weightings, arrays["write_weightings"], equal_nan=True)
    assert [line.split(": ", 3)[3] for line in attnviz.validate_file(path)] == [
        f"contains {bad} at step 3, location 7; values must be finite"]
    other = attnviz.convert(path, tmp_path / ("u.npz" if suffix == ".h5" else "u.h5"))
    assert np.array_equal(attnviz.load(other).write_weightings, arrays["write_weightings"], equal_nan=True)


def test_an_output_mask_of_nan_is_still_refused():
    arrays = copy_like_arrays(L=4, N=10)
    arrays["output_mask"] = np.ones(len(arrays["inputs"]))
    arrays["output_mask"][2] = np.nan
    with pytest.raises(TraceError, match="has value nan at step 2; an output mask holds 0 or 1"):
        Trace(arrays)


def test_weighting_checks_are_optional_and_exact():
    w = np.full((4, 5), 0.2)
    assert check_values("write_weightings", w, weighting_tol=1e-6) is None
    w[2, 1] = 0.3
    msg = check_values("write_weightings", w, start=10, weighting_tol=1e-3)
    assert "step 12" in msg and "sums to 1.1" in msg
    w[2, 1] = 1.5
    assert "[0, 1]" in check_values("write_weightings", w, weighting_tol=1e-3)
    assert check_values("write_weightings", w) is None  # off by default


def test_heads_must_agree():
    arrays = copy_like_arrays(L=3, N=8, M=4, full=True, heads=2)
    with pytest.raises(TraceError, match="head"):
        Trace(arrays)  # adds are (T, M): one head, write weightings have two
    arrays["adds"] = np.repeat(arrays["adds"][:, None], 2, axis=1)
    arrays["erases"] = np.repeat(arrays["erases"][:, None], 2, axis=1)
    arrays["reads"] = np.repeat(arrays["reads"][:, None], 2, axis=1)
    Trace(arrays)


def test_metadata_must_be_flat():
    with pytest.raises(TraceError, match="metadata 'x' is a list"):
        Trace(copy_like_arrays(), {"x": [1, 2]})


def test_structure_check_works_from_shapes_alone():
    specs = {"inputs": ((5, 3), np.float32), "outputs": ((5, 2), np.float32),
             "write_weightings": ((5, 8), np.float32), "read_weightings": ((6, 8), np.float32)}
    (problem,) = check_structure(specs)
    assert problem[0] == "read_weightings" and "6 time steps" in problem[1]


def test_torch_like_objects_are_detached():
    class FakeTensor:
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def __array__(self, dtype=None, copy=None):
            return self.a

    arrays = {k: FakeTensor(v) for k, v in copy_like_arrays().items()}
    t = Trace(arrays)
    assert isinstance(t.inputs, np.ndarray)
