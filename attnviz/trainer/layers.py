"""Elementwise activations and the two controllers, as forward/backward pairs.

Every ``*_forward`` returns ``(out, cache)``; every ``*_backward`` takes the
upstream gradient and the cache and returns gradients in the order of the inputs.
B is the batch size throughout.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    # The tanh form never overflows and is one vectorised call.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softplus(x):
    """log(1 + exp(x)) without overflow; its derivative is sigmoid(x)."""
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    ez = np.exp(z)
    return ez / ez.sum(axis=axis, keepdims=True)


def softmax_backward(dy, y, axis=-1):
    """Gradient of softmax given its output y."""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


# ------------------------------------------------------------------ parameters


def glorot(rng: np.random.Generator, n_in: int, n_out: int, dtype=np.float32) -> np.ndarray:
    """Glorot-uniform weights (n_in, n_out)."""
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)


def controller_params(kind: str, n_in: int, H: int, rng: np.random.Generator, dtype=np.float32) -> dict:
    """A controller's ``ctrl_W`` and ``ctrl_b``: an LSTM's (its forget gate's bias 1: remember by default)
    or a feed-forward layer's, for ``n_in`` inputs and ``H`` units."""
    if kind == "lstm":
        b = np.zeros(4 * H, dtype)
        b[H : 2 * H] = 1.0
        return {"ctrl_W": glorot(rng, n_in + H, 4 * H, dtype), "ctrl_b": b}
    if kind == "feedforward":
        return {"ctrl_W": glorot(rng, n_in, H, dtype), "ctrl_b": np.zeros(H, dtype)}
    raise ValueError(f"unknown controller {kind!r}: expected 'lstm' or 'feedforward'")


# --------------------------------------------------------------------------- LSTM


def lstm_forward(u, h_prev, c_prev, W, b):
    """One LSTM step.

    u: (B, I) input; h_prev, c_prev: (B, H); W: (I + H, 4H); b: (4H,).
    Gate order in W's columns: input, forget, output, candidate.
    Returns h (B, H), c (B, H) and a cache.
    """
    H = h_prev.shape[1]
    x = np.concatenate([u, h_prev], axis=1)  # (B, I+H)
    z = x @ W + b  # (B, 4H)
    ifo = sigmoid(z[:, : 3 * H])
    i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 2 * H :]
    g = np.tanh(z[:, 3 * H :])
    c = f * c_prev + i * g  # (B, H)
    tc = np.tanh(c)
    h = o * tc  # (B, H)
    return h, c, (x, W, c_prev, i, f, o, g, tc)


def lstm_backward(dh, dc, cache):
    """Returns du (B, I), dh_prev (B, H), dc_prev (B, H), dW, db."""
    x, W, c_prev, i, f, o, g, tc = cache
    H = dh.shape[1]
    do = dh * tc
    dc = dc + dh * o * (1.0 - tc * tc)
    di = dc * g
    df = dc * c_prev
    dg = dc * i
    dz = np.concatenate(
        [di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g * g)], axis=1
    )  # (B, 4H)
    dW = x.T @ dz
    db = dz.sum(axis=0)
    dx = dz @ W.T
    I = x.shape[1] - H
    return dx[:, :I], dx[:, I:], dc * f, dW, db


# ------------------------------------------------------------------ feed-forward


def feedforward_forward(u, W, b):
    """One tanh layer. u: (B, I); W: (I, H); b: (H,). Returns h (B, H) and a cache."""
    h = np.tanh(u @ W + b)
    return h, (u, W, h)


def feedforward_backward(dh, cache):
    """Returns du (B, I), dW, db."""
    u, W, h = cache
    dz = dh * (1.0 - h * h)
    return dz @ W.T, u.T @ dz, dz.sum(axis=0)
