import json

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attnviz
from attnviz import Trace, TraceError, TraceRecorder
from attnviz.io import open_traces, save

from conftest import copy_like_arrays

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.float16, np.float32, np.float64]


@st.composite
def traces(draw):
    T = draw(st.integers(1, 6))
    N = draw(st.integers(1, 5))
    heads = draw(st.sampled_from([None, 1, 2]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def arr(shape):
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        if dtype.kind == "b":
            return rng.random(shape) > 0.5
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        return (rng.standard_normal(shape) * 10).astype(dtype)

    wshape = (T, heads, N) if heads else (T, N)
    arrays = {"inputs": arr((T, draw(st.integers(1, 4)))), "outputs": arr((T, 3)),
              "write_weightings": arr(wshape), "read_weightings": arr(wshape)}
    if draw(st.booleans()):
        arrays["targets"] = arr((T, 3))
        arrays["memory"] = arr((T, N, 2))
    text = st.characters(exclude_categories=("Cs",), exclude_characters="\x00/")
    meta = draw(st.dictionaries(
        st.text(text, min_size=1, max_size=8).filter(lambda k: k != "attnviz_format"),
        st.one_of(st.text(text, max_size=10), st.integers(-2**62, 2**62), st.booleans(),
                  st.floats(allow_nan=False, allow_infinity=False)), max_size=4))
    name = draw(st.sampled_from(["/", "step_000500", "run/a"]))
    return Trace(arrays, meta, name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ts=st.lists(traces(), min_size=1, max_size=3, unique_by=lambda t: t.name))
def test_round_trip_h5_npz_h5_is_lossless(tmp_path, ts):
    h5, npz, h5b = tmp_path / "a.h5", tmp_path / "b.npz", tmp_path / "c.h5"
    save(ts, h5)
    attnviz.convert(h5, npz)
    attnviz.convert(npz, h5b)
    for path in (h5, npz, h5b):
        back = {t.name: t for t in attnviz.iter_traces(path)}
        assert set(back) == {t.name for t in ts}
        for t in ts:
            assert back[t.name] == t  # names, metadata, dtypes and values


def test_hand_written_hdf5_with_several_groups(tmp_path):
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        for step in (500, 1000):
            g = f.create_group(f"step_{step:06d}")
            for k, v in copy_like_arrays(seed=step).items():
                g.create_dataset(k, data=v)
            g.attrs["task"] = "copy"
            g.attrs["step"] = step
    infos = attnviz.list_traces(path)
    assert [i.name for i in infos] == ["step_000500", "step_001000"]
    assert infos[1].metadata == {"task": "copy", "step": 1000}
    assert infos[0].datasets["inputs"][0] == (11, 9)
    t = attnviz.load(path, "/step_001000")
    assert t.metadata["step"] == 1000
    with pytest.raises(TraceError, match="holds 2 traces"):
        attnviz.load(path)


def test_hand_written_npz_single_and_multi(tmp_path):
    arrays = copy_like_arrays()
    single = tmp_path / "one.npz"
    np.savez(single, **arrays, attrs=np.array(json.dumps({"task": "copy", "synthetic": True})))
    t = attnviz.load(single)
    assert t.name == "/" and t.metadata == {"task": "copy", "synthetic": True}
    multi = tmp_path / "many.npz"
    np.savez_compressed(multi, **{f"s{i}/{k}": v for i in range(3) for k, v in arrays.items()},
                        **{"s1/attrs": np.array('{"seed": 1}')})
    assert [i.name for i in attnviz.list_traces(multi)] == ["s0", "s1", "s2"]
    assert attnviz.load(multi, "s1").metadata == {"seed": 1}


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "v2.npz"
    np.savez(path, **copy_like_arrays(), attrs=np.array('{"attnviz_format": 2}'))
    with pytest.raises(TraceError, match="version 2"):
        attnviz.load(path)


def test_size_limit_refuses_before_reading(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        for k, v in copy_like_arrays().items():
            f.create_dataset(k, data=v)
        # 11 x 16 x 10^10 float64 = 14 TB, declared but never written
        f.create_dataset("memory", shape=(11, 16, 10**10), dtype="f8", chunks=(1, 16, 10**4))
    with pytest.raises(TraceError, match=r"dataset 'memory'.*above the 1.0 GiB limit"):
        attnviz.load(path, max_bytes=2**30)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "t.h5"
    save(Trace(copy_like_arrays()), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("attnviz.io._write_hdf5", boom)
    with pytest.raises(RuntimeError):
        save(Trace(copy_like_arrays(seed=1)), path)
    assert path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]  # no temporary left behind


def test_unknown_suffix(tmp_path):
    with pytest.raises(attnviz.AttnvizError, match="unknown suffix"):
        save(Trace(copy_like_arrays()), tmp_path / "t.txt")


def test_recorder_step_by_step_equals_whole_sequence(tmp_path):
    arrays = copy_like_arrays(full=True)
    rec = TraceRecorder(task="copy")
    for t in range(arrays["inputs"].shape[0]):
        rec.step(**{k: v[t] for k, v in arrays.items()})
    whole = TraceRecorder(task="copy")
    whole.record(**arrays)
    assert rec.trace() == whole.trace()
    assert len(rec) == 11
    path = rec.save(tmp_path / "r.npz")
    assert attnviz.load(path) == whole.trace()


@pytest.mark.parametrize("stream", [False, True])
def test_recorder_refuses_a_step_whose_shape_changes_when_it_comes(tmp_path, stream):
    arrays = copy_like_arrays(N=16)
    rec = TraceRecorder(stream_to=tmp_path / "s.h5" if stream else None, chunk_steps=2)
    for t in range(4):
        rec.step(**{k: v[t] for k, v in arrays.items()})
    with pytest.raises(TraceError) as exc:
        rec.step(inputs=arrays["inputs"][4], outputs=arrays["outputs"][4], write_weightings=np.zeros(20),
                 read_weightings=arrays["read_weightings"][4])
    assert str(exc.value).endswith("trace '/': dataset 'write_weightings': step 4 has shape (20,) but the earlier "
                                   "steps have (16,)")
    assert exc.value.dataset == "write_weightings"
    assert len(rec) == 4  # nothing of the refused step was kept
    assert not (tmp_path / "s.h5").exists()  # streaming: no file under its name before it is complete
    for t in range(4, 11):
        rec.step(**{k: v[t] for k, v in arrays.items()})
    assert len(rec) == 11
    saved = attnviz.load(rec.save(tmp_path / "r.h5"))
    assert saved == Trace(arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5" if stream else "r.h5"]
    fresh = TraceRecorder()
    fresh.step(inputs=np.zeros(3))
    with pytest.raises(TraceError, match="dataset 'inputs'"):
        fresh.step(inputs=np.zeros(4), adds=np.zeros(2))
    fresh.step(inputs=np.zeros(3), adds=np.zeros(5))  # the refused step's adds left no shape behind
    whole = TraceRecorder()
    whole.record(write_weightings=np.zeros((3, 16)))
    with pytest.raises(TraceError, match="steps 3 to 4 have shape \\(2, 16\\) but the earlier steps have \\(16,\\)"):
        whole.record(write_weightings=np.zeros((2, 2, 16)))


def test_recorder_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset"):
        TraceRecorder().step(weights=np.zeros(3))


def test_blocks_cover_the_dataset(tmp_path):
    path = tmp_path / "t.h5"
    arrays = copy_like_arrays(L=20)
    save(Trace(arrays), path)
    with open_traces(path) as f:
        blocks = list(f.blocks("/", "write_weightings", block_bytes=16 * 4 * 3))
    assert [s for s, _ in blocks] == list(range(0, 41, 3))
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), arrays["write_weightings"])
