"""Every hand-derived backward pass of the DNC against centred finite differences, in float64, and
the whole model's gradient through time. The allocation's sort is a constant of the gradient: its
checks draw usages far from ties."""

import numpy as np
import pytest

from attnviz.trainer.dnc import DNC, DNCConfig
from attnviz.trainer.dnc import memory as dnc
from attnviz.trainer.loss import bce_loss

from .test_gradients import check, distribution, numeric_grad, r, rel_error

B, N, R = 3, 6, 2
rng = np.random.default_rng(7)


def spread_usage():
    """Usages in (0.05, 0.95), at least 0.1 apart within a sequence: no ties within reach of h."""
    return np.stack([rng.permutation(np.linspace(0.05, 0.95, N)) for _ in range(B)])


CASES = {
    "retention": (lambda f, w: dnc.retention_forward(f, w)[::2], dnc.retention_backward,
                  lambda: [r(B, R, lo=-2, hi=2), distribution(B, R, N)]),
    "usage": (dnc.usage_forward, dnc.usage_backward, lambda: [r(B, N, lo=0, hi=1), distribution(B, N),
                                                              r(B, N, lo=0, hi=1)]),
    "allocation": (dnc.allocation_forward, lambda da, cache: (dnc.allocation_backward(da, cache),),
                   lambda: [spread_usage()]),
    "precedence": (dnc.precedence_forward, dnc.precedence_backward,
                   lambda: [distribution(B, N) * 0.7, distribution(B, N) * 0.9]),
    "link": (dnc.link_forward, dnc.link_backward, lambda: [r(B, N, N, lo=0, hi=0.3), distribution(B, N) * 0.9,
                                                           distribution(B, N) * 0.8]),
}


@pytest.mark.parametrize("name", CASES)
def test_backward_matches_finite_differences(name):
    forward, backward, inputs = CASES[name]
    check(forward, backward, inputs())


def test_write_weighting():
    def forward(a, cw, gw, ga):
        ww, _, _, cache = dnc.write_weighting_forward(a, cw, gw, ga)
        return ww, cache

    check(forward, dnc.write_weighting_backward, [distribution(B, N), distribution(B, N), r(B), r(B)])


def test_directions_take_both_upstream_gradients():
    def forward(L, w):
        f, b, cache = dnc.directions_forward(L, w)
        return f, b, cache

    check(forward, dnc.directions_backward, [r(B, N, N, lo=0, hi=0.5), distribution(B, R, N)], n_out=2)


def test_read_weighting():
    def forward(b, c, f, modes):
        wr, _, cache = dnc.read_weighting_forward(b, c, f, modes)
        return wr, cache

    check(forward, dnc.read_weighting_backward,
          [distribution(B, R, N), distribution(B, R, N), distribution(B, R, N), r(B, R, 3, lo=-2, hi=2)])


def test_allocation_gives_the_least_used_location_the_most_and_survives_zeros():
    u = np.array([[0.9, 0.1, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    a, cache = dnc.allocation_forward(u)
    assert a[0].argmax() == 3 and a[0, 3] == 1.0 and a[0].sum() <= 1.0  # an unused location takes it all
    assert a[1].tolist() == [1.0, 0.0, 0.0, 0.0]  # ties: the lowest index first
    assert np.isfinite(dnc.allocation_backward(np.ones_like(u), cache)).all()
    u = np.array([[0.2, 0.6, 0.4]])
    a, _ = dnc.allocation_forward(u)
    np.testing.assert_allclose(a, [[0.8, (1 - 0.6) * 0.2 * 0.4, (1 - 0.4) * 0.2]])


def test_link_matrix_records_the_order_of_writes():
    """Writing location 2, then 0, then 1 (one-hot): L[0, 2] and L[1, 0] are 1, the rest 0."""
    L, p = np.zeros((1, 3, 3)), np.zeros((1, 3))
    for loc in (2, 0, 1):
        ww = np.eye(3)[None, loc]
        L, _ = dnc.link_forward(L, ww, p)
        p, _ = dnc.precedence_forward(p, ww)
    np.testing.assert_allclose(L[0], [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    f, b, _ = dnc.directions_forward(L, np.eye(3)[None, None, 2])  # having read location 2
    np.testing.assert_allclose(f[0, 0], [1, 0, 0])  # forward: the next one written, 0
    np.testing.assert_allclose(b[0, 0], [0, 0, 0])  # backward: nothing was written before 2


def dnc_check(cfg: DNCConfig, T=5, rtol=1e-5, seed=3):
    """The whole model's gradient (BPTT through every op) against finite differences, for every parameter.
    The usages of locations not yet written are tied exactly (the memory starts at zero, so such
    locations are interchangeable, and a nudge keeps them so); the allocation's sort, whose order is a
    constant of the gradient, is the same at every nudge as without (checked)."""
    model = DNC.create(cfg, seed=seed, dtype=np.float64)
    for k in model.params:  # larger weights than at the start of training: every path carries gradient
        model.params[k] *= 2.0
    g = np.random.default_rng(seed)
    x = g.random((T, 2, cfg.input_size))
    y = (g.random((T, 2, cfg.output_size)) > 0.5).astype(float)
    mask = np.ones((T, 2))
    logits, cache = model.forward(x)
    grads = model.backward(bce_loss(logits, y, mask)[1], cache)
    assert set(grads) == set(model.params)
    order = np.stack([st["allocation"][0] for st in cache["steps"]])

    def loss():
        logits, nudged = model.forward(x)
        assert np.array_equal(np.stack([st["allocation"][0] for st in nudged["steps"]]), order)
        return bce_loss(logits, y, mask)[0]

    for k, p in model.params.items():
        err = rel_error(grads[k], numeric_grad(loss, p, h=1e-5))
        assert err < rtol, f"{k}: relative error {err:.2e}"


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
@pytest.mark.parametrize("read_heads", [1, 2])
def test_every_model_parameter(controller, read_heads):
    dnc_check(DNCConfig(3, 2, controller=controller, controller_size=5, memory_size=5, word_size=3,
                        read_heads=read_heads))


def test_the_interface_blocks_each_carry_their_own_gradient():
    """Each part of the interface vector on its own, relative to its own largest gradient: a small block's
    error cannot hide behind a large one's."""
    cfg = DNCConfig(3, 2, controller_size=5, memory_size=5, word_size=3, read_heads=2)
    model = DNC.create(cfg, seed=4, dtype=np.float64)
    g = np.random.default_rng(4)
    x, y, mask = g.random((5, 2, 3)), (g.random((5, 2, 2)) > 0.5).astype(float), np.ones((5, 2))
    logits, cache = model.forward(x)
    grads = model.backward(bce_loss(logits, y, mask)[1], cache)
    numeric = numeric_grad(lambda: bce_loss(model.forward(x)[0], y, mask)[0], model.params["iface_b"], h=1e-5)
    for name, s in cfg.interface_layout().items():
        assert np.abs(numeric[s]).max() > 1e-9, f"{name}: no gradient reaches it"
        err = rel_error(grads["iface_b"][s], numeric[s])
        assert err < 1e-4, f"{name}: relative error {err:.2e}"
