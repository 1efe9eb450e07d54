"""NTM addressing (Graves et al. 2014, section 3.3), one forward/backward pair per step: the content
lookup (shared with the DNC, in ..memory), then interpolation, shift and sharpening.

Shapes: B batch, N memory locations, M word width, S = 2 * shift_range + 1 offsets.
The raw head outputs (key strength, gate, shift logits, sharpening) arrive unsquashed;
each forward applies its own squashing so that its backward returns the gradient of
the raw value, which is what the controller's output layer needs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..layers import sigmoid, softmax, softmax_backward, softplus
from ..memory import content_backward, content_forward, cosine_backward, cosine_forward

SHARPEN_EPS = 1e-12  # keeps log(w) finite when a shifted weighting has exact zeros


def interpolate_forward(wc, w_prev, g_raw):
    """w_g = g * w_c + (1 - g) * w_prev with g = sigmoid(g_raw).

    wc, w_prev: (B, N); g_raw: (B,). Returns w_g (B, N) and a cache.
    """
    g = sigmoid(g_raw)
    wg = g[:, None] * wc + (1.0 - g[:, None]) * w_prev
    return wg, (wc, w_prev, g)


def interpolate_backward(dwg, cache):
    """Returns dwc (B, N), dw_prev (B, N), dg_raw (B,)."""
    wc, w_prev, g = cache
    dg = (dwg * (wc - w_prev)).sum(axis=1)
    return g[:, None] * dwg, (1.0 - g[:, None]) * dwg, dg * g * (1.0 - g)


@lru_cache(maxsize=64)
def _shift_index(S: int, N: int, sign: int) -> np.ndarray:
    """idx[j, i] = (i - sign * k_j) mod N for the offsets k_j = -R..R: gathering wg[:, idx]
    gives every rolled copy of wg at once (faster than S calls to np.roll)."""
    R = (S - 1) // 2
    return (np.arange(N)[None, :] - sign * np.arange(-R, R + 1)[:, None]) % N  # (S, N)


def shift_forward(wg, s_raw):
    """Circular convolution with a shift distribution s = softmax(s_raw).

    Offset k (from -R to R) moves weight from location i to i + k:
    ws[i] = sum_k s[k] * wg[i - k].
    wg: (B, N); s_raw: (B, S). Returns w_s (B, N) and a cache.
    """
    s = softmax(s_raw)
    rolled = wg[:, _shift_index(s.shape[1], wg.shape[1], 1)]  # (B, S, N)
    ws = (s[:, None, :] @ rolled)[:, 0, :]
    return ws, (s, rolled)


def shift_backward(dws, cache):
    """Returns dwg (B, N), ds_raw (B, S)."""
    s, rolled = cache
    ds = (rolled @ dws[:, :, None])[:, :, 0]  # (B, S)
    unrolled = dws[:, _shift_index(s.shape[1], dws.shape[1], -1)]  # (B, S, N)
    dwg = (s[:, None, :] @ unrolled)[:, 0, :]
    return dwg, softmax_backward(ds, s)


def sharpen_forward(ws, gamma_raw):
    """w = ws^gamma / sum(ws^gamma) with gamma = 1 + softplus(gamma_raw) >= 1.

    Computed as softmax(gamma * log ws), which cannot overflow.
    ws: (B, N); gamma_raw: (B,). Returns w (B, N) and a cache.
    """
    gamma = 1.0 + softplus(gamma_raw)
    log_ws = np.log(ws + SHARPEN_EPS)
    w = softmax(gamma[:, None] * log_ws)
    return w, (ws, log_ws, gamma, gamma_raw, w)


def sharpen_backward(dw, cache):
    """Returns dws (B, N), dgamma_raw (B,)."""
    ws, log_ws, gamma, gamma_raw, w = cache
    dz = softmax_backward(dw, w)
    dgamma = (dz * log_ws).sum(axis=1)
    return dz * gamma[:, None] / (ws + SHARPEN_EPS), dgamma * sigmoid(gamma_raw)


def address_forward(key, beta_raw, g_raw, s_raw, gamma_raw, w_prev, memory):
    """The whole addressing pipeline: content, interpolation, shift, sharpening.

    Returns the weighting w (B, N) and a cache.
    """
    K, c1 = cosine_forward(key, memory)
    wc, c2 = content_forward(K, beta_raw)
    wg, c3 = interpolate_forward(wc, w_prev, g_raw)
    ws, c4 = shift_forward(wg, s_raw)
    w, c5 = sharpen_forward(ws, gamma_raw)
    return w, (c1, c2, c3, c4, c5)


def address_backward(dw, cache):
    """Returns dkey, dbeta_raw, dg_raw, ds_raw, dgamma_raw, dw_prev, dmemory."""
    c1, c2, c3, c4, c5 = cache
    dws, dgamma_raw = sharpen_backward(dw, c5)
    dwg, ds_raw = shift_backward(dws, c4)
    dwc, dw_prev, dg_raw = interpolate_backward(dwg, c3)
    dK, dbeta_raw = content_backward(dwc, c2)
    dkey, dmemory = cosine_backward(dK, c1)
    return dkey, dbeta_raw, dg_raw, ds_raw, dgamma_raw, dw_prev, dmemory
