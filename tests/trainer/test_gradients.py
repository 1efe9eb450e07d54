"""Every hand-derived backward pass against centred finite differences, in float64."""

import numpy as np
import pytest

from attnviz.trainer import layers, memory
from attnviz.trainer.loss import bce_loss
from attnviz.trainer.ntm import addressing
from attnviz.trainer.ntm.config import NTMConfig
from attnviz.trainer.ntm.model import NTM

RTOL = 1e-6  # max |analytic - numeric| relative to the largest gradient


def numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def rel_error(a, b):
    return np.abs(a - b).max() / max(1e-12, np.abs(a).max(), np.abs(b).max())


def check(forward, backward, inputs, n_out=1, h=1e-6, rtol=RTOL):
    """forward(*inputs) -> (*outs, cache); backward(*douts, cache) -> grads in input order."""
    rng = np.random.default_rng(0)
    res = forward(*inputs)
    outs = res[:n_out]
    weights = [rng.standard_normal(o.shape) for o in outs]

    def loss():
        r = forward(*inputs)
        return sum(float((o * w).sum()) for o, w in zip(r[:n_out], weights, strict=True))

    grads = backward(*weights, res[n_out])
    assert len(grads) == len(inputs)
    for i, (x, g) in enumerate(zip(inputs, grads, strict=True)):
        err = rel_error(g, numeric_grad(loss, x, h))
        assert err < rtol, f"input {i}: relative error {err:.2e}"


B, N, M, S = 3, 7, 5, 3
rng = np.random.default_rng(42)


def r(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape)


def distribution(*shape):
    x = rng.random(shape) + 0.1
    return x / x.sum(axis=-1, keepdims=True)


CASES = {
    "cosine": (addressing.cosine_forward, addressing.cosine_backward, lambda: [r(B, M), r(B, N, M)]),
    "cosine_zero_row": (addressing.cosine_forward, addressing.cosine_backward,
                        lambda: [r(B, M), np.concatenate([np.zeros((B, 1, M)), r(B, N - 1, M)], axis=1)]),
    "content": (addressing.content_forward, addressing.content_backward, lambda: [r(B, N), r(B, lo=-2, hi=2)]),
    "interpolate": (addressing.interpolate_forward, addressing.interpolate_backward,
                    lambda: [distribution(B, N), distribution(B, N), r(B, lo=-2, hi=2)]),
    "shift": (addressing.shift_forward, addressing.shift_backward, lambda: [distribution(B, N), r(B, S)]),
    "shift_range2": (addressing.shift_forward, addressing.shift_backward, lambda: [distribution(B, N), r(B, 5)]),
    "sharpen": (addressing.sharpen_forward, addressing.sharpen_backward,
                lambda: [distribution(B, N), r(B, lo=-2, hi=2)]),
    "address": (addressing.address_forward, addressing.address_backward,
                lambda: [r(B, M), r(B), r(B), r(B, S), r(B), distribution(B, N), r(B, N, M)]),
    "read": (memory.read_forward, memory.read_backward, lambda: [distribution(B, N), r(B, N, M)]),
    "write": (memory.write_forward, memory.write_backward,
              lambda: [distribution(B, N), r(B, M, lo=0, hi=1), r(B, M), r(B, N, M)]),
    "feedforward": (layers.feedforward_forward, layers.feedforward_backward, lambda: [r(B, 4), r(4, 6), r(6)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_finite_differences(name):
    forward, backward, make = CASES[name]
    if name == "cosine_zero_row":  # the norm of a zero row is sqrt(1e-8): probe it with a finer step
        check(forward, backward, make(), h=1e-9, rtol=1e-5)
    else:
        check(forward, backward, make())


def test_lstm_backward_matches_finite_differences():
    H = 4
    check(layers.lstm_forward, layers.lstm_backward, [r(B, 3), r(B, H), r(B, H), r(3 + H, 4 * H), r(4 * H)],
          n_out=2)


def test_erase_add_backward_takes_both_upstream_gradients():
    check(memory.erase_add_forward, memory.erase_add_backward, [r(B, M, lo=-3, hi=3), r(B, M, lo=-3, hi=3)], n_out=2)


def test_sharpen_survives_exact_zeros_and_large_gamma():
    ws = np.zeros((2, 6))
    ws[:, 2] = 1.0
    w, cache = addressing.sharpen_forward(ws, np.array([50.0, -50.0]))
    dws, dg = addressing.sharpen_backward(np.ones_like(w), cache)
    assert np.isfinite(w).all() and np.isfinite(dws).all() and np.isfinite(dg).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def model_check(cfg: NTMConfig, mask=None, T=4, rtol=1e-5, seed=1, blocks=False):
    """The whole model's gradient (BPTT through every op) against finite differences, for every
    parameter; with ``blocks``, also each part of each head's raw output (key, beta, g, shift,
    gamma, erase, add) on its own, relative to its own largest gradient, so that a small block's
    error cannot hide behind a large one's."""
    model = NTM.create(cfg, seed=seed, dtype=np.float64)
    g = np.random.default_rng(seed)
    x = g.random((T, 2, cfg.input_size))
    y = (g.random((T, 2, cfg.output_size)) > 0.5).astype(float)
    mask = np.ones((T, 2)) if mask is None else mask
    logits, cache = model.forward(x)
    _, dlogits = bce_loss(logits, y, mask)
    grads = model.backward(dlogits, cache)
    assert set(grads) == set(model.params)

    def loss():
        return bce_loss(model.forward(x)[0], y, mask)[0]

    numeric = {k: numeric_grad(loss, p, h=1e-5) for k, p in model.params.items()}
    for k in model.params:
        err = rel_error(grads[k], numeric[k])
        assert err < rtol, f"{k}: relative error {err:.2e}"
    if blocks:
        # Some blocks' gradients are 1e-6 of the largest (beta while the memory rows are still alike):
        # at h=1e-5 rounding in the loss limits them, at 1e-3 truncation limits the key's. Each block
        # is checked at both steps and must match at one; a wrong derivative matches at neither.
        coarse = [{k: numeric_grad(loss, model.params[k], h=h) for k in ("head_b", "head_W")} for h in (1e-3, 1e-4)]
        offsets = cfg.head_offsets
        for j in range(cfg.write_heads + cfg.read_heads):
            for part, sl in cfg.head_layout(j < cfg.write_heads).items():
                cols = slice(offsets[j] + sl.start, offsets[j] + sl.stop)
                for k in ("head_b", "head_W"):
                    a = grads[k][..., cols]
                    assert np.abs(a).max() > 1e-12, f"head {j} {part}: no gradient reaches {k}"
                    err = min(rel_error(a, n[k][..., cols]) for n in coarse)
                    assert err < rtol, f"head {j} {part} ({k}): relative error {err:.2e}"
    return grads


@pytest.mark.parametrize("read_first", [False, True])
@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
@pytest.mark.parametrize("heads", [(1, 1), (2, 1), (2, 3)])
def test_every_model_parameter(controller, heads, read_first):
    W, R = heads
    model_check(NTMConfig(input_size=4, output_size=3, controller=controller, controller_size=6, memory_size=5,
                          word_size=4, write_heads=W, read_heads=R, init_memory=0.1, read_first=read_first))


@pytest.mark.parametrize("read_first", [False, True])
def test_every_head_parameter_block(read_first):
    """key, strength (beta), gate (g), shift, sharpening (gamma), erase and add of every head, each
    checked on its own scale."""
    model_check(NTMConfig(input_size=4, output_size=3, controller_size=6, memory_size=6, word_size=4,
                          write_heads=1, read_heads=2, init_memory=0.1, read_first=read_first), T=5, blocks=True)


SMALL = {"input_size": 4, "output_size": 3, "controller_size": 6, "memory_size": 7, "word_size": 4}


@pytest.mark.parametrize("shift_bias", ["none", "forward"])
@pytest.mark.parametrize("shift_init", ["zero", "random"])
def test_every_shift_start(shift_bias, shift_init):
    model_check(NTMConfig(**SMALL, shift_bias=shift_bias, shift_init=shift_init, init_memory=0.1), blocks=True)


def test_shift_range_2():
    cfg = NTMConfig(**SMALL, shift_range=2, init_memory=0.1, shift_init="random")
    assert cfg.head_layout(True)["shift"].stop - cfg.head_layout(True)["shift"].start == 5
    model_check(cfg, blocks=True)


@pytest.mark.parametrize("read_first", [False, True])
def test_a_learned_initial_memory(read_first):
    """memory0 reaches the loss through the first step's addressing, reads and writes and through the
    first read vectors (row 0, where the heads start)."""
    cfg = NTMConfig(**SMALL, write_heads=1, read_heads=2, learn_memory=True, read_first=read_first)
    grads = model_check(cfg, T=5, blocks=True)
    assert np.abs(grads["memory0"]).min() > 0  # every cell: the content lookup sees every row


def test_the_default_memory_of_1e_6():
    """The default initial memory: every row's norm sits near the cosine's epsilon at first."""
    cfg = NTMConfig(**{**SMALL, "memory_size": 5})
    assert cfg.init_memory == 1e-6
    model_check(cfg, T=5, blocks=True)


def test_a_copy_style_partial_mask():
    """Outputs scored only after the delimiter, as in copy: gradients reach the input phase
    through the memory and the controller alone."""
    T = 7
    mask = np.zeros((T, 2))
    mask[4:] = 1.0
    grads = model_check(NTMConfig(**SMALL, init_memory=0.1), mask=mask, T=T, blocks=True)
    assert np.abs(grads["out_b"]).max() > 0


def test_read_first_reads_the_memory_the_previous_step_left():
    """With read_first a read at step t sees the memory as step t-1 left it; writing first, as step t
    left it."""
    from attnviz.trainer.ntm.model import initial_state

    x = rng.random((3, 1, 4))
    for read_first in (False, True):
        cfg = NTMConfig(input_size=4, output_size=3, controller_size=6, memory_size=5, word_size=4,
                        read_first=read_first)
        model = NTM.create(cfg, seed=1, dtype=np.float64)
        _, cache = model.forward(x, keep_memory=True)
        for t in range(3):
            out = cache["steps"][t]["out"][1]  # the read head
            before = cache["steps"][t - 1]["memory"][0] if t else initial_state(cfg, 1, np.float64)[0][0]
            seen = before if read_first else cache["steps"][t]["memory"][0]
            np.testing.assert_allclose(out.read[0], out.weighting[0] @ seen)


def test_loss_gradient():
    logits = r(3, 2, 4, lo=-30, hi=30)
    y = (rng.random((3, 2, 4)) > 0.5).astype(float)
    mask = np.array([[0, 1], [1, 1], [1, 0]], float)
    loss, d = bce_loss(logits, y, mask)
    assert np.isfinite(loss)
    num = numeric_grad(lambda: bce_loss(logits, y, mask)[0], logits)
    assert rel_error(d, num) < 1e-6
