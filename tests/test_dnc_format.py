"""The DNC's datasets in the trace format: shapes, ranges, the recorder, the debug outputs of three DNC
implementations mapped onto them (docs/trace-format.md), and what inspect says of them."""

import json

import h5py
import numpy as np
import pytest

import attnviz
from attnviz import Trace, TraceError, TraceRecorder
from attnviz.recorder import reorder_read_modes
from attnviz.trace import DNC, check_values

from conftest import copy_like_arrays, run

# ------------------------------------------------------------------------- a DNC, step by step


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _allocation(usage):
    """a[phi[j]] = (1 - u[phi[j]]) * prod_{k<j} u[phi[k]], phi the locations by ascending usage (Graves et al.
    2016, methods), per row."""
    u = 1e-6 + (1 - 1e-6) * usage
    order = np.argsort(u, axis=-1, kind="stable")
    su = np.take_along_axis(u, order, -1)
    prod = np.cumprod(np.concatenate([np.ones_like(su[..., :1]), su[..., :-1]], -1), -1)
    a = np.empty_like(u)
    np.put_along_axis(a, order, (1 - su) * prod, -1)
    return a


def _linkage(link, prec, ww):
    """The link matrices and precedence weightings after a write of ww (..., W, N): L[i, j] grows with
    w[i] * p[j], the weight written to i times the precedence of j; the diagonal stays 0."""
    w_i, w_j = ww[..., :, None], ww[..., None, :]
    link = ((1 - w_i - w_j) * link + w_i * prec[..., None, :]) * (1 - np.eye(ww.shape[-1]))
    return link, (1 - ww.sum(-1, keepdims=True)) * prec + ww


# Where each implementation keeps backward (one per write head), content and forward in its read-mode
# vector of 2W + 1: deepmind/dnc and ixaxaar/pytorch-dnc [backward x W, forward x W, content],
# RobertCsordas/dnc (one write head) [backward, content, forward], as the trace does.
BFC = "backward, forward, content"
BCF = "backward, content, forward"


def simulate(T=9, N=6, W=1, R=2, B=2, M=3, modes=BFC, seed=0):
    """A DNC's memory over T steps for a batch of B, after Graves et al. 2016 (methods), with random interface
    values: per step a dict of batch-major arrays named after our datasets, the read modes in the order
    ``modes`` (the one the read weightings are made with)."""
    rng = np.random.default_rng(seed)
    sig = lambda *shape: 1 / (1 + np.exp(-2 * rng.standard_normal(shape)))  # noqa: E731
    mem, usage = np.zeros((B, N, M)), np.zeros((B, N))
    ww, rw = np.zeros((B, W, N)), np.zeros((B, R, N))
    link, prec = np.zeros((B, W, N, N)), np.zeros((B, W, N))
    steps = []
    for _ in range(T):
        free, alloc_gate, write_gate = sig(B, R), sig(B, W), sig(B, W)
        read_modes = _softmax(2 * rng.standard_normal((B, R, 2 * W + 1)))
        write_content = _softmax(3 * rng.standard_normal((B, W, N)))
        read_content = _softmax(3 * rng.standard_normal((B, R, N)))
        usage = (usage + (1 - usage) * (1 - np.prod(1 - ww, 1))) * np.prod(1 - free[..., None] * rw, 1)
        alloc, simulated = np.zeros((B, W, N)), usage.copy()
        for i in range(W):  # each write head allocates from the usage its predecessors left
            alloc[:, i] = _allocation(simulated)
            simulated = simulated + (1 - simulated) * (alloc_gate[:, i] * write_gate[:, i])[:, None] * alloc[:, i]
        ww = write_gate[..., None] * (alloc_gate[..., None] * alloc + (1 - alloc_gate[..., None]) * write_content)
        erase, add = sig(B, W, M), rng.standard_normal((B, W, M))
        mem = mem * np.prod(1 - ww[..., None] * erase[:, :, None], 1) + np.einsum("bwn,bwm->bnm", ww, add)
        link, prec = _linkage(link, prec, ww)
        forward = np.einsum("bwij,brj->brwi", link, rw)  # L w: on to the location written after
        backward = np.einsum("bwji,brj->brwi", link, rw)  # L^T w: back to the one written before
        if modes == BFC:
            b, f, c = read_modes[..., :W], read_modes[..., W : 2 * W], read_modes[..., 2 * W]
        else:
            assert W == 1
            b, c, f = read_modes[..., :1], read_modes[..., 1], read_modes[..., 2:]
        rw = (np.einsum("brw,brwn->brn", b, backward) + c[..., None] * read_content
              + np.einsum("brw,brwn->brn", f, forward))
        steps.append({"write_weightings": ww, "read_weightings": rw, "memory": mem, "usage": usage,
                      "allocation_weightings": alloc, "dnc_write_gates": write_gate, "allocation_gates": alloc_gate,
                      "free_gates": free, "read_modes": read_modes, "precedence_weightings": prec,
                      "link_matrices": link, "read_content_weightings": read_content,
                      "write_content_weightings": write_content, "adds": add, "erases": erase})
    return steps


def check_reads_follow_the_trace_order(t: Trace, link=None, content=None):
    """The trace's read weightings are its read modes, taken in the trace's order (backward x W, content,
    forward x W), times the backward, content and forward weightings, from step 1 on."""
    modes, rw = t.heads("read_modes"), t.heads("read_weightings")
    L = t["link_matrices"] if link is None else link
    L = L[:, None] if L.ndim == 3 else L  # (T, W, N, N)
    c = t.heads("read_content_weightings") if content is None else content
    W = L.shape[1]
    for s in range(1, t.steps):
        forward = np.einsum("wij,rj->rwi", L[s], rw[s - 1])
        backward = np.einsum("wji,rj->rwi", L[s], rw[s - 1])
        expected = (np.einsum("rw,rwn->rn", modes[s, :, :W], backward) + modes[s, :, W, None] * c[s]
                    + np.einsum("rw,rwn->rn", modes[s, :, W + 1 :], forward))
        np.testing.assert_allclose(rw[s], expected, atol=1e-5)


def dnc_arrays(T=9, N=6, W=1, R=2, seed=0) -> dict[str, np.ndarray]:
    """A whole DNC trace (batch element 0 of ``simulate``), in the trace's layout and float32."""
    steps = simulate(T, N, W, R, seed=seed)
    arrays = {k: np.stack([s[k][0] for s in steps]).astype(np.float32) for k in steps[0]}
    arrays["read_modes"] = reorder_read_modes(arrays["read_modes"])
    arrays["inputs"], arrays["outputs"] = np.zeros((T, 3), np.float32), np.zeros((T, 2), np.float32)
    if W == 1:  # one write head: stored without its axis, as the NTM's weightings are
        for k in ("write_weightings", "allocation_weightings", "dnc_write_gates", "allocation_gates",
                  "precedence_weightings", "link_matrices", "write_content_weightings", "adds", "erases"):
            arrays[k] = arrays[k][:, 0]
    return arrays


def test_a_simulated_dnc_trace_is_valid_with_weightings_summing_to_at_most_one(tmp_path):
    for W in (1, 2):
        t = Trace(dnc_arrays(W=W))
        attnviz.save(t, tmp_path / "t.h5")
        assert attnviz.validate_file(tmp_path / "t.h5", weighting_tol=1e-3) == []
        check_reads_follow_the_trace_order(t)
        assert t.usage.shape == (9, 6) and t.read_modes.shape == (9, 2, 2 * W + 1)
        assert t.write_weightings.sum(-1).min() < 0.9  # the write gate lets weight go
        assert np.all(np.diagonal(t.link_matrices, axis1=-2, axis2=-1) == 0)


def test_the_link_matrix_reads_location_i_written_right_after_location_j():
    link, prec = np.zeros((1, 4, 4)), np.zeros((1, 4))
    for loc in (2, 0, 3):  # writes to 2, then 0, then 3, by the rule the three implementations share
        link, prec = _linkage(link, prec, np.eye(4)[None, loc])
    assert link[0, 0, 2] == 1 and link[0, 3, 0] == 1 and link.sum() == 2  # L[i, j]: i written right after j
    assert (link[0] @ np.eye(4)[2]).argmax() == 0  # forward from 2 (L w) is 0, backward from 0 (L^T w) is 2
    assert (link[0].T @ np.eye(4)[0]).argmax() == 2


# ----------------------------------------------------------------------------------- structure


@pytest.mark.parametrize("dataset, value, words", [
    ("usage", np.zeros((9, 5)), "has N = 5 (memory locations) but write_weightings has N = 6"),
    ("allocation_weightings", np.zeros((9, 7)), "has N = 7 (memory locations) but write_weightings has N = 6"),
    ("precedence_weightings", np.zeros((9, 1, 5)), "has N = 5 (memory locations) but write_weightings has N = 6"),
    ("link_matrices", np.zeros((9, 6, 5)), "has 6 x 5 link matrices but write_weightings has N = 6; a link matrix "
                                           "is N x N (memory locations)"),
    ("link_matrices", np.zeros((9, 5, 5)), "has 5 x 5 link matrices but write_weightings has N = 6"),
    ("link_matrices", np.zeros((9, 2, 6, 6)), "has 2 write head(s) but write_weightings has 1"),
    ("allocation_weightings", np.zeros((9, 2, 6)), "has 2 write head(s) but write_weightings has 1"),
    ("dnc_write_gates", np.zeros((9, 3)), "has 3 write head(s) but write_weightings has 1"),
    ("allocation_gates", np.zeros((9, 2)), "has 2 write head(s) but write_weightings has 1"),
    ("precedence_weightings", np.zeros((9, 2, 6)), "has 2 write head(s) but write_weightings has 1"),
    ("free_gates", np.zeros(9), "has 1 read head(s) but read_weightings has 2"),
    ("free_gates", np.zeros((9, 3)), "has 3 read head(s) but read_weightings has 2"),
    ("read_modes", np.full((9, 3), 1 / 3), "has 1 read head(s) but read_weightings has 2"),
    ("read_modes", np.full((9, 2, 5), 0.2), "has 5 read modes; expected 2 x write heads + 1 = 3 (backward for each "
                                            "write head, content, forward for each write head)"),
    ("usage", np.zeros((9, 2, 6)), "has shape (9, 2, 6) (rank 3); expected (T, N)"),
    ("link_matrices", np.zeros((9, 6)), "has shape (9, 6) (rank 2); expected (T, N, N) or (T, write heads, N, N)"),
    ("read_modes", np.zeros((9, 2, 3), complex), "has dtype complex128 (complex)"),
    ("free_gates", np.zeros((8, 2)), "has 8 time steps but inputs has 9"),
])
def test_dnc_datasets_of_the_wrong_shape_are_named_in_one_line_by_every_command(dataset, value, words, tmp_path,
                                                                              runner):
    arrays = dnc_arrays()
    arrays[dataset] = value
    with pytest.raises(TraceError) as exc:
        Trace(arrays, name="s")
    assert exc.value.dataset == dataset and words in str(exc.value)
    with h5py.File(tmp_path / "t.h5", "w") as f:  # a file holding them
        for k, v in arrays.items():
            f[k] = v
    for command in ("validate", "plot", "inspect"):
        result = run(runner, command, tmp_path / "t.h5")
        assert result.exit_code == 1, (command, result.output)
        (line,) = result.stderr.strip().splitlines()
        assert f"t.h5: trace '/': dataset '{dataset}': {words}" in line and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("dataset, value, words", [
    ("read_modes", np.full((9, 2, 3), 1 / 3), "has 3 read modes; expected 2 x write heads + 1 = 5"),
    ("allocation_gates", np.zeros(9), "has 1 write head(s) but write_weightings has 2"),
    ("link_matrices", np.zeros((9, 6, 6)), "has 1 write head(s) but write_weightings has 2"),
    ("usage", np.zeros((9, 6)), None),  # usage is one vector for every head
])
def test_with_two_write_heads_their_axis_must_be_there(dataset, value, words):
    arrays = dnc_arrays(W=2)
    arrays[dataset] = value
    if words is None:
        assert Trace(arrays).usage.shape == (9, 6)
        return
    with pytest.raises(TraceError) as exc:
        Trace(arrays)
    assert exc.value.dataset == dataset and words in str(exc.value)


def test_one_write_head_may_keep_its_axis():
    arrays = dnc_arrays()
    for k in ("allocation_weightings", "precedence_weightings", "link_matrices", "dnc_write_gates", "allocation_gates"):
        arrays[k] = arrays[k][:, None]
    t = Trace(arrays)
    assert t.link_matrices.shape == (9, 1, 6, 6) and t.dnc_write_gates.shape == (9, 1)
    arrays["write_weightings"] = arrays["write_weightings"][:, None]
    arrays["read_modes"] = arrays["read_modes"][:, :1]  # (T, 1, 3): one read head with its axis, ...
    arrays["read_weightings"] = arrays["read_weightings"][:, 0]  # ... read weightings (T, N) without
    arrays["free_gates"] = arrays["free_gates"][:, 0]
    arrays["read_content_weightings"] = arrays["read_content_weightings"][:, 0]
    assert Trace(arrays).read_modes.shape == (9, 1, 3)


# -------------------------------------------------------------------------------------- values


def _set(dataset, index, value):
    def change(a):
        a[dataset][index] = value
    return change


def _scale(dataset, step, factor):
    def change(a):
        a[dataset][step] *= factor
    return change


def _diagonal(a):
    a["link_matrices"][4, 2, 2] = 0.25


VALUE_CASES = [
    # (change, dataset, words, only with --weightings)
    (_set("usage", (3, 1), 1.5), "usage", "has usage 1.5 at step 3, location 1; usage lies in [0, 1]", False),
    (_set("dnc_write_gates", 2, -0.1), "dnc_write_gates", "has gate -0.1 at step 2; gates lie in [0, 1]", False),
    (_set("allocation_gates", 5, 1.01), "allocation_gates", "has gate 1.01 at step 5; gates lie in [0, 1]", False),
    (_set("free_gates", (6, 1), 2.0), "free_gates", "has gate 2 at step 6, read head 1; gates lie in [0, 1]", False),
    (_set("allocation_weightings", (1, 4), -0.5), "allocation_weightings",
     "has weight -0.5 at step 1, location 4; weights lie in [0, 1]", False),
    (_set("allocation_weightings", 7, 0.3), "allocation_weightings",
     "sums to 1.8 over locations at step 7; expected at most 1 within 0.001", False),
    (_set("precedence_weightings", 8, 0.25), "precedence_weightings",
     "sums to 1.5 over locations at step 8; expected at most 1 within 0.001", False),
    (_set("link_matrices", (2, 0, 5), 1.5), "link_matrices",
     "has link weight 1.5 at step 2, L[0, 5]; link weights lie in [0, 1]", False),
    (_diagonal, "link_matrices", "has link weight 0.25 at step 4, L[2, 2], on the diagonal; a link matrix's "
                                 "diagonal is 0 (no location is written right after itself), within 0.001", False),
    (_set("read_modes", (3, 0), [1.5, -0.25, -0.25]), "read_modes",
     "has read mode 1.5 at step 3, read head 0, mode 0 (backward); read modes lie in [0, 1]", False),
    (_scale("read_modes", 5, 0.5), "read_modes",
     "sums to 0.5 over modes at step 5, read head 0; expected 1 within 0.001", True),
    (_set("write_weightings", 4, 0.3), "write_weightings",
     "sums to 1.8 over locations at step 4; expected at most 1 (a trace with DNC datasets) within 0.001", True),
    (_set("usage", (2, 3), np.nan), "usage", "contains nan at step 2, location 3; values must be finite", False),
    (_set("link_matrices", (1, 4, 0), np.inf), "link_matrices",
     "contains inf at step 1, L[4, 0]; values must be finite", False),
]


@pytest.mark.parametrize("change, dataset, words, weightings", VALUE_CASES)
def test_dnc_values_out_of_range_fail_validate_in_one_line_and_are_drawn(change, dataset, words, weightings,
                                                                         tmp_path, runner):
    arrays = dnc_arrays()
    change(arrays)
    t = Trace(arrays)  # a Trace holds them, as it holds weightings out of range and values not finite
    attnviz.save(t, tmp_path / "t.h5")
    result = run(runner, "validate", tmp_path / "t.h5", *(["--weightings"] if weightings else []))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"t.h5: trace '/': dataset '{dataset}': {words}" in line, line
    if weightings:  # only under --weightings
        assert run(runner, "validate", tmp_path / "t.h5").exit_code == 0
    assert run(runner, "plot", tmp_path / "t.h5", "-o", tmp_path / "t.png").exit_code == 0
    assert (tmp_path / "t.png").is_file()


def test_the_tolerance_applies_to_every_dnc_range():
    a = np.zeros((2, 4, 4))
    a[1, 0, 0], a[1, 1, 0] = 5e-4, 1.0005
    assert check_values("link_matrices", a, 0, stage_tol=1e-3) is None
    assert check_values("link_matrices", a, 0, stage_tol=1e-4).startswith("has link weight 1.0005 at step 1, L[1, 0]")
    assert check_values("link_matrices", a, 0) is None  # no tolerance, no range: a Trace keeps what it is given
    modes = np.array([[[0.2, 0.3, 0.1, 0.2, 0.2]]])  # two write heads
    modes[0, 0, 3] = -0.2
    assert check_values("read_modes", modes, 4, stage_tol=1e-3) == (
        "has read mode -0.2 at step 4, read head 0, mode 3 (forward, write head 0); read modes lie in [0, 1]")
    assert check_values("read_modes", np.array([[0.3, 0.3, 0.3]]), 0, 0.2, stage_tol=0.2) is None


# ------------------------------------------------------------------------------------ recorder


@pytest.mark.parametrize("stream", [False, True])
def test_the_recorder_takes_every_dnc_dataset_step_by_step_and_streams_link_matrices(stream, tmp_path):
    arrays = dnc_arrays(T=40, N=32, W=2, R=2, seed=4)
    rec = TraceRecorder(stream_to=tmp_path / "s.h5" if stream else None, chunk_steps=1024, model="dnc")
    for t in range(40):
        rec.step(**{k: v[t] for k, v in arrays.items()})
    trace = rec.trace()
    assert trace == Trace(arrays, {"model": "dnc"})
    if stream:  # a chunk of whole steps, 1 MiB at most: 8 KiB a step of link matrices, 128 steps
        with h5py.File(tmp_path / "s.h5") as f:
            assert f["link_matrices"].chunks == (128, 2, 32, 32) and f["usage"].chunks == (1024, 32)
        assert attnviz.validate_file(tmp_path / "s.h5", weighting_tol=1e-3) == []
        assert attnviz.load(tmp_path / "s.h5", max_bytes=16 * 2**20) == trace  # chunks within max_bytes / 16


@pytest.mark.parametrize("dataset, value, words", [
    ("link_matrices", np.zeros((6, 5)), "step 3: has 6 x 5 link matrices but write_weightings has N = 6"),
    ("read_modes", np.full((2, 5), 0.2), "step 3: has 5 read modes; expected 2 x write heads + 1 = 3"),
    ("free_gates", np.zeros(3), "step 3: has 3 read head(s) but read_weightings has 2"),
    ("usage", np.zeros(7), "step 3: has N = 7 (memory locations) but write_weightings has N = 6"),
])
def test_the_recorder_refuses_a_dnc_dataset_of_the_wrong_shape_when_it_comes(dataset, value, words, tmp_path):
    arrays = dnc_arrays()
    arrays.pop(dataset)
    rec = TraceRecorder(stream_to=tmp_path / "s.h5", chunk_steps=2)
    for t in range(3):
        rec.step(**{k: v[t] for k, v in arrays.items()})
    with pytest.raises(TraceError) as exc:
        rec.step(**{k: v[3] for k, v in arrays.items()}, **{dataset: value})
    assert exc.value.dataset == dataset and words in str(exc.value)
    assert len(rec) == 3


def test_reorder_read_modes_moves_content_between_backward_and_forward():
    assert reorder_read_modes([0.2, 0.3, 0.5]).tolist() == [0.2, 0.5, 0.3]
    two = np.arange(2 * 3 * 5).reshape(2, 3, 5)  # (T, read heads, 2 x 2 + 1)
    assert reorder_read_modes(two)[1, 2].tolist() == [25, 26, 29, 27, 28]
    for bad in ([0.5, 0.5], 0.3, np.zeros((3, 4))):
        with pytest.raises(ValueError, match="2 x write heads \\+ 1 modes"):
            reorder_read_modes(bad)


# ------------------------------------------- the debug outputs of three implementations, mapped


def deepmind_steps(W=2, R=2, B=3):
    """deepmind/dnc: per step, MemoryAccess's AccessState (memory, read_weights, write_weights, linkage =
    (link, precedence_weights), usage) and its interface (free_gate, allocation_gate, write_gate, read_mode,
    [backward x W, forward x W, content]) with the write_allocation_weights it computes, batch first."""
    for s in simulate(W=W, R=R, B=B, modes=BFC, seed=1):
        yield ({"memory": s["memory"], "read_weights": s["read_weightings"], "write_weights": s["write_weightings"],
                "linkage": {"link": s["link_matrices"], "precedence_weights": s["precedence_weightings"]},
                "usage": s["usage"]},
               {"free_gate": s["free_gates"], "allocation_gate": s["allocation_gates"], "write_gate":
                s["dnc_write_gates"], "read_mode": s["read_modes"], "write_allocation_weights":
                s["allocation_weightings"]}, s["read_content_weightings"])


def test_deepmind_dnc_state_and_interface_record_as_documented():
    b = 1  # the batch element recorded
    rec, content, own_order = TraceRecorder(model="deepmind/dnc"), [], []
    for state, interface, read_content in deepmind_steps():
        rec.step(inputs=np.zeros(2), outputs=np.zeros(2), memory=state["memory"][b],
                 write_weightings=state["write_weights"][b], read_weightings=state["read_weights"][b],
                 usage=state["usage"][b], link_matrices=state["linkage"]["link"][b],
                 precedence_weightings=state["linkage"]["precedence_weights"][b],
                 allocation_weightings=interface["write_allocation_weights"][b],
                 dnc_write_gates=interface["write_gate"][b], allocation_gates=interface["allocation_gate"][b],
                 free_gates=interface["free_gate"][b], read_modes=reorder_read_modes(interface["read_mode"][b]))
        content.append(read_content[b])
        own_order.append(interface["read_mode"][b])
    t = rec.trace()
    assert t.link_matrices.shape == (9, 2, 6, 6) and t.read_modes.shape == (9, 2, 5)
    check_reads_follow_the_trace_order(t, content=np.stack(content))
    with pytest.raises(AssertionError):  # its own order, as it is, is not ours
        check_reads_follow_the_trace_order(Trace(t.arrays | {"read_modes": np.stack(own_order)}),
                                           content=np.stack(content))
    assert _problems(t) == []


def _problems(t: Trace) -> list[str]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        attnviz.save(t, Path(d) / "t.h5")
        return attnviz.validate_file(Path(d) / "t.h5", weighting_tol=1e-3)


def pytorch_dnc_debug_memory(version: str, layers=2, T=9, N=6, R=2):
    """ixaxaar/pytorch-dnc with debug=True: debug_memory, batch element 0, one entry per step and layer
    (step t, layer l at t * layers + l); 1.x stacks each key into one array of (layers x T, everything else
    flattened), 2.x keeps a list of per-step arrays of (rows, -1). Its interface's read modes (B, R, 3) are
    [backward, forward, content]."""
    runs = [simulate(T=T, N=N, R=R, modes=BFC, seed=10 + layer) for layer in range(layers)]
    shapes = {"memory": lambda s: s["memory"][0], "link_matrix": lambda s: s["link_matrices"][0, 0],
              "precedence": lambda s: s["precedence_weightings"][0], "read_weights": lambda s: s["read_weightings"][0],
              "write_weights": lambda s: s["write_weightings"][0], "usage_vector": lambda s: s["usage"][0][None]}
    entries = {k: [get(runs[layer][t]) for t in range(T) for layer in range(layers)] for k, get in shapes.items()}
    if version == "1.x":
        debug = {k: np.array(v).reshape(len(v), -1) for k, v in entries.items()}
    else:
        debug = {k: [v.reshape(v.shape[0], -1) for v in vs] for k, vs in entries.items()}
    read_modes = [[runs[layer][t]["read_modes"] for t in range(T)] for layer in range(layers)]
    content = [np.stack([runs[layer][t]["read_content_weightings"][0] for t in range(T)]) for layer in range(layers)]
    return debug, read_modes, content


def from_pytorch_dnc(debug_memory, N: int, layer: int = 0, layers: int = 1) -> dict[str, np.ndarray]:
    """docs/trace-format.md's mapping of pytorch-dnc's debug_memory onto the trace: one layer's rows, each
    key reshaped to its shape (either version)."""
    def rows(key, shape):
        a = np.asarray(debug_memory[key])
        return a.reshape((len(a),) + shape)[layer::layers]

    return {"memory": rows("memory", (N, -1)), "link_matrices": rows("link_matrix", (N, N)),
            "precedence_weightings": rows("precedence", (N,)), "read_weightings": rows("read_weights", (-1, N)),
            "write_weightings": rows("write_weights", (N,)), "usage": rows("usage_vector", (N,))}


@pytest.mark.parametrize("version", ["1.x", "2.x"])
def test_pytorch_dnc_debug_memory_records_as_documented(version):
    debug, read_modes, content = pytorch_dnc_debug_memory(version)
    for layer in (0, 1):
        arrays = from_pytorch_dnc(debug, N=6, layer=layer, layers=2)
        rec = TraceRecorder(model="ixaxaar/pytorch-dnc")
        for t in range(9):
            rec.step(inputs=np.zeros(2), outputs=np.zeros(2), **{k: v[t] for k, v in arrays.items()},
                     read_modes=reorder_read_modes(read_modes[layer][t][0]))
        trace = rec.trace()
        assert trace.link_matrices.shape == (9, 6, 6) and trace.read_weightings.shape == (9, 2, 6)
        check_reads_follow_the_trace_order(trace, content=content[layer])
        assert _problems(trace) == []


def csordas_debug(B=2, T=9, batch_first=True):
    """RobertCsordas/dnc: the debug dict DNC.forward(x, debug={}) fills, tensors stacked over time (batch
    first, as its main.py runs it): write_head (alloc_dist, write_dist, mem_usages, free_gates, write_gate,
    alloc_gate, ...), temporal_links (precedence_weights, forward_dists, backward_dists), read_head (balance
    [backward, content, forward], read_dist, content_dist, ...). The link matrix is not in it."""
    steps = simulate(T=T, B=B, modes=BCF, seed=3)
    axis = 1 if batch_first else 0

    def stack(key, get=lambda a: a):
        return np.stack([get(s[key]) for s in steps], axis)

    debug = {"write_head": {"alloc_dist": stack("allocation_weightings", lambda a: a[:, 0]),
                            "write_dist": stack("write_weightings", lambda a: a[:, 0]),
                            "mem_usages": stack("usage"), "free_gates": stack("free_gates"),
                            "write_gate": stack("dnc_write_gates"), "alloc_gate": stack("allocation_gates")},
             "temporal_links": {"precedence_weights": stack("precedence_weightings", lambda a: a[:, 0])},
             "read_head": {"balance": stack("read_modes"), "read_dist": stack("read_weightings"),
                           "content_dist": stack("read_content_weightings")}}
    return debug, np.stack([s["link_matrices"] for s in steps], axis)


@pytest.mark.parametrize("batch_first", [True, False])
def test_csordas_dnc_debug_dict_records_as_documented(batch_first):
    debug, link = csordas_debug(batch_first=batch_first)
    b = 1
    pick = (lambda a, t: a[b, t]) if batch_first else (lambda a, t: a[t, b])
    w, r, tl = debug["write_head"], debug["read_head"], debug["temporal_links"]
    rec = TraceRecorder(model="RobertCsordas/dnc")
    for t in range(9):
        rec.step(inputs=np.zeros(2), outputs=np.zeros(2), write_weightings=pick(w["write_dist"], t),
                 read_weightings=pick(r["read_dist"], t), usage=pick(w["mem_usages"], t),
                 allocation_weightings=pick(w["alloc_dist"], t), dnc_write_gates=pick(w["write_gate"], t)[0],
                 allocation_gates=pick(w["alloc_gate"], t)[0], free_gates=pick(w["free_gates"], t),
                 read_modes=pick(r["balance"], t), precedence_weightings=pick(tl["precedence_weights"], t),
                 read_content_weightings=pick(r["content_dist"], t))
    trace = rec.trace()
    assert trace.dnc_write_gates.shape == (9,) and trace.read_modes.shape == (9, 2, 3)
    link_b = link[b] if batch_first else link[:, b]
    check_reads_follow_the_trace_order(trace, link=link_b[:, 0])  # its order is ours: nothing to reorder
    assert _problems(trace) == []


# ------------------------------------------------------------------------------------- inspect


def test_inspect_names_the_layouts_a_trace_can_fill_and_the_dnc_datasets(tmp_path, runner):
    arrays = dnc_arrays(W=2)
    arrays.pop("precedence_weightings")
    attnviz.save(Trace(arrays), tmp_path / "dnc.h5")
    attnviz.save(Trace(copy_like_arrays()), tmp_path / "ntm.h5")
    attnviz.save(Trace(copy_like_arrays(full=True)), tmp_path / "stages.h5")
    result = run(runner, "inspect", tmp_path / "dnc.h5", tmp_path / "ntm.h5", tmp_path / "stages.h5")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "layouts: grid, paper (reads not recorded), addressing, dnc" in text  # write content weightings
    assert ("dnc: 2 write heads, 2 read heads; recorded: usage, allocation_weightings, dnc_write_gates, "
            "allocation_gates, free_gates, read_modes, link_matrices (6 x 6 a step, one per write head); not "
            "recorded: precedence_weightings") in text
    assert "layouts: grid, paper (adds, reads not recorded)\n" in text and "layouts: grid, paper, addressing\n" in text
    (dnc,) = json.loads(run(runner, "inspect", tmp_path / "dnc.h5", "--json").stdout)[0]["traces"]
    assert dnc["layouts"] == ["grid", "paper", "addressing", "dnc"]
    assert dnc["dnc"] == {"recorded": [k for k in DNC if k != "precedence_weightings"],
                          "not_recorded": ["precedence_weightings"], "write_heads": 2, "read_heads": 2,
                          "link_matrix": [6, 6]}
    assert dnc["datasets"]["link_matrices"]["shape"] == [9, 2, 6, 6]
    ntm = attnviz.summarize(tmp_path / "ntm.h5")["traces"][0]
    assert ntm["layouts"] == ["grid", "paper"] and "dnc" not in ntm
