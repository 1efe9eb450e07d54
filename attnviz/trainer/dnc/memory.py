"""The DNC's memory management (Graves et al. 2016, Methods: "Dynamic memory allocation" and
"Temporal memory linkage"), one forward/backward pair per operation, as in ..memory.

Shapes: B batch, N locations, R read heads. One write head (DNCConfig). Gates and modes arrive
raw; each forward squashes its own, so that its backward returns the gradient of the raw value.
"""

from __future__ import annotations

import numpy as np

from ..layers import sigmoid, softmax, softmax_backward

# ------------------------------------------------------------------ allocation


def retention_forward(free_raw, wr_prev):
    """psi = prod_i (1 - f_i * wr_prev_i), how much of each location the reads leave allocated, with
    free gates f = sigmoid(free_raw). free_raw: (B, R); wr_prev: (B, R, N). Returns psi (B, N), f, a cache."""
    f = sigmoid(free_raw)
    keep = 1.0 - f[:, :, None] * wr_prev  # (B, R, N)
    return keep.prod(axis=1), f, (f, wr_prev, keep)


def retention_backward(dpsi, cache):
    """Returns dfree_raw (B, R), dwr_prev (B, R, N)."""
    f, wr_prev, keep = cache
    R = keep.shape[1]
    others = np.stack([np.prod(np.delete(keep, i, axis=1), axis=1) for i in range(R)], axis=1)  # (B, R, N)
    dkeep = dpsi[:, None, :] * others
    df = -(dkeep * wr_prev).sum(axis=2)
    return df * f * (1.0 - f), -dkeep * f[:, :, None]


def usage_forward(u_prev, ww_prev, psi):
    """u = (u_prev + ww_prev - u_prev * ww_prev) * psi: the last write raises usage, freed reads lower it.
    All (B, N). Returns u and a cache."""
    v = u_prev + ww_prev - u_prev * ww_prev
    return v * psi, (u_prev, ww_prev, psi, v)


def usage_backward(du, cache):
    """Returns du_prev, dww_prev, dpsi (B, N)."""
    u_prev, ww_prev, psi, v = cache
    dv = du * psi
    return dv * (1.0 - ww_prev), dv * (1.0 - u_prev), du * v


def allocation_forward(u):
    """The allocation weighting: locations in ascending order of usage, phi; then
    a[phi_j] = (1 - u[phi_j]) * prod_{i<j} u[phi_i], so the least used location gets the most weight.

    The order is a constant of the gradient (the sort's jumps at ties are ignored, as the paper does).
    u: (B, N). Returns a (B, N) and a cache."""
    phi = np.argsort(u, axis=1, kind="stable")
    su = np.take_along_axis(u, phi, axis=1)
    before = np.cumprod(np.concatenate([np.ones_like(su[:, :1]), su[:, :-1]], axis=1), axis=1)  # exclusive
    a = np.empty_like(u)
    np.put_along_axis(a, phi, (1.0 - su) * before, axis=1)
    return a, (phi, su, before)


def allocation_backward(da, cache):
    """Returns du (B, N)."""
    phi, su, before = cache
    B, N = su.shape
    dsa = np.take_along_axis(da, phi, axis=1)  # the gradient of the sorted allocation
    # without[b, j, k] = prod_{i<k, i != j} su[b, i]: the exclusive products with su_j taken out (no division,
    # which a usage of exactly 0 would break).
    taken = np.broadcast_to(su[:, None, :], (B, N, N)).copy()
    taken[:, np.arange(N), np.arange(N)] = 1.0
    without = np.cumprod(np.concatenate([np.ones((B, N, 1), su.dtype), taken[:, :, :-1]], axis=2), axis=2)
    later = np.triu(np.ones((N, N), bool), k=1)  # k > j: sorted_a_k depends on su_j through its product
    dsu = -before * dsa + (later * without * ((1.0 - su) * dsa)[:, None, :]).sum(axis=2)
    du = np.empty_like(dsu)
    np.put_along_axis(du, phi, dsu, axis=1)
    return du


def write_weighting_forward(a, cw, gw_raw, ga_raw):
    """ww = g^w * (g^a * a + (1 - g^a) * c^w), with the write gate g^w and allocation gate g^a sigmoids
    of their raw values. a, cw: (B, N); gw_raw, ga_raw: (B,). Returns ww (B, N), gw, ga and a cache."""
    gw, ga = sigmoid(gw_raw), sigmoid(ga_raw)
    mix = ga[:, None] * a + (1.0 - ga[:, None]) * cw
    return gw[:, None] * mix, gw, ga, (a, cw, gw, ga, mix)


def write_weighting_backward(dww, cache):
    """Returns da, dcw (B, N), dgw_raw, dga_raw (B,)."""
    a, cw, gw, ga, mix = cache
    dmix = gw[:, None] * dww
    dgw = (dww * mix).sum(axis=1)
    dga = (dmix * (a - cw)).sum(axis=1)
    return ga[:, None] * dmix, (1.0 - ga[:, None]) * dmix, dgw * gw * (1.0 - gw), dga * ga * (1.0 - ga)


# --------------------------------------------------------------------- linkage


def link_forward(L_prev, ww, p_prev):
    """L[i, j] = (1 - ww_i - ww_j) * L_prev[i, j] + ww_i * p_prev[j], with a zero diagonal: how much
    location i was written right after location j. L_prev: (B, N, N); ww, p_prev: (B, N)."""
    scale = 1.0 - ww[:, :, None] - ww[:, None, :]
    L = scale * L_prev + ww[:, :, None] * p_prev[:, None, :]
    N = ww.shape[1]
    L[:, np.arange(N), np.arange(N)] = 0.0
    return L, (L_prev, ww, p_prev, scale)


def link_backward(dL, cache):
    """Returns dL_prev (B, N, N), dww (B, N), dp_prev (B, N)."""
    L_prev, ww, p_prev, scale = cache
    N = ww.shape[1]
    g = dL.copy()
    g[:, np.arange(N), np.arange(N)] = 0.0  # the diagonal is set, not computed
    gl = g * L_prev
    dww = -gl.sum(axis=2) - gl.sum(axis=1) + (g * p_prev[:, None, :]).sum(axis=2)
    dp_prev = (g * ww[:, :, None]).sum(axis=1)
    return g * scale, dww, dp_prev


def precedence_forward(p_prev, ww):
    """p = (1 - sum(ww)) * p_prev + ww: where the last write went. (B, N) each."""
    s = ww.sum(axis=1, keepdims=True)
    return (1.0 - s) * p_prev + ww, (p_prev, s)


def precedence_backward(dp, cache):
    """Returns dp_prev, dww (B, N)."""
    p_prev, s = cache
    return (1.0 - s) * dp, dp - (dp * p_prev).sum(axis=1, keepdims=True)


def directions_forward(L, wr_prev):
    """Each read head's forward weighting f = L wr_prev (the locations written after the ones it read)
    and backward weighting b = L^T wr_prev. L: (B, N, N); wr_prev: (B, R, N). Returns f, b (B, R, N)."""
    return wr_prev @ np.swapaxes(L, 1, 2), wr_prev @ L, (L, wr_prev)


def directions_backward(df, db, cache):
    """Returns dL (B, N, N), dwr_prev (B, R, N)."""
    L, wr_prev = cache
    dL = np.swapaxes(df, 1, 2) @ wr_prev + np.swapaxes(wr_prev, 1, 2) @ db
    return dL, df @ L + db @ np.swapaxes(L, 1, 2)


def read_weighting_forward(b, c, f, modes_raw):
    """wr = pi_backward * b + pi_content * c + pi_forward * f, the read modes pi = softmax(modes_raw)
    in that order. b, c, f: (B, R, N); modes_raw: (B, R, 3). Returns wr (B, R, N), pi and a cache."""
    pi = softmax(modes_raw)
    wr = pi[..., 0:1] * b + pi[..., 1:2] * c + pi[..., 2:3] * f
    return wr, pi, (b, c, f, pi)


def read_weighting_backward(dwr, cache):
    """Returns db, dc, df (B, R, N), dmodes_raw (B, R, 3)."""
    b, c, f, pi = cache
    dpi = np.stack([(dwr * b).sum(-1), (dwr * c).sum(-1), (dwr * f).sum(-1)], axis=-1)
    return pi[..., 0:1] * dwr, pi[..., 1:2] * dwr, pi[..., 2:3] * dwr, softmax_backward(dpi, pi)
