"""The memory matrix both models share, as forward/backward pairs: content lookup (cosine similarity
and its softmax focus), reading, and writing (erase then add).

Shapes: B batch, N locations, M word width.
Outer products and row sums go through einsum: on these small (B, N, M) arrays it
is about twice as fast as broadcasting.
"""

from __future__ import annotations

import numpy as np

from .layers import sigmoid, softmax, softmax_backward, softplus

NORM_EPS = 1e-8  # inside the square root: a zero memory row has norm sqrt(eps), not 0


def read_forward(w, memory):
    """r = w^T memory. w: (B, N); memory: (B, N, M). Returns r (B, M) and a cache."""
    return (w[:, None, :] @ memory)[:, 0, :], (w, memory)


def read_backward(dr, cache):
    """Returns dw (B, N), dmemory (B, N, M)."""
    w, memory = cache
    return (memory @ dr[:, :, None])[:, :, 0], np.einsum("bn,bm->bnm", w, dr)


def write_forward(w, erase, add, memory):
    """Erase then add: memory * (1 - w e^T) + w a^T.

    w: (B, N); erase, add: (B, M); memory: (B, N, M). Returns the new memory and a cache.
    """
    we = np.einsum("bn,bm->bnm", w, erase)  # (B, N, M)
    new = memory - we * memory
    new += np.einsum("bn,bm->bnm", w, add)
    return new, (w, erase, add, memory, we)


def write_backward(dnew, cache):
    """Returns dw (B, N), derase (B, M), dadd (B, M), dmemory (B, N, M)."""
    w, erase, add, memory, we = cache
    dm_old = dnew * memory  # (B, N, M)
    dmemory = dnew - dnew * we
    dw = (dnew @ add[:, :, None] - dm_old @ erase[:, :, None])[:, :, 0]
    derase = -(w[:, None, :] @ dm_old)[:, 0, :]
    dadd = (w[:, None, :] @ dnew)[:, 0, :]
    return dw, derase, dadd, dmemory


def erase_add_forward(erase_raw, add_raw):
    """A write head's erase vector e = sigmoid(erase_raw), each element in (0, 1), and add vector
    a = tanh(add_raw), in (-1, 1). erase_raw, add_raw: (B, M). Returns e, a (B, M) and a cache."""
    e, a = sigmoid(erase_raw), np.tanh(add_raw)
    return e, a, (e, a)


def erase_add_backward(de, da, cache):
    """Returns derase_raw (B, M), dadd_raw (B, M)."""
    e, a = cache
    return de * e * (1.0 - e), da * (1.0 - a * a)


# ------------------------------------------------------------------ content lookup


def cosine_forward(key, memory):
    """Cosine similarity of a key with every memory row.

    key: (B, M); memory: (B, N, M). Returns K (B, N) and a cache.
    """
    dot = (memory @ key[:, :, None])[:, :, 0]  # (B, N)
    n_mem = np.sqrt(np.einsum("bnm,bnm->bn", memory, memory) + NORM_EPS)  # (B, N)
    n_key = np.sqrt((key * key).sum(axis=1) + NORM_EPS)  # (B,)
    K = dot / (n_mem * n_key[:, None])
    return K, (key, memory, K, n_mem, n_key)


def cosine_backward(dK, cache):
    """Returns dkey (B, M), dmemory (B, N, M)."""
    key, memory, K, n_mem, n_key = cache
    ddot = dK / (n_mem * n_key[:, None])  # (B, N)
    dn_mem = -dK * K / n_mem  # (B, N)
    dn_key = -(dK * K).sum(axis=1) / n_key  # (B,)
    dkey = (ddot[:, None, :] @ memory)[:, 0, :] + (dn_key / n_key)[:, None] * key
    # Both terms in one pass: [ddot, dn_mem / n_mem] weigh [key, row of memory].
    dmemory = np.einsum("bn,bm->bnm", ddot, key)
    dmemory += np.einsum("bn,bnm->bnm", dn_mem / n_mem, memory)
    return dkey, dmemory


def content_forward(K, beta_raw):
    """Focus by content: softmax(beta * K) with beta = softplus(beta_raw) >= 0.

    K: (B, N); beta_raw: (B,). Returns w_c (B, N) and a cache.
    """
    beta = softplus(beta_raw)
    wc = softmax(beta[:, None] * K)
    return wc, (K, beta, beta_raw, wc)


def content_backward(dwc, cache):
    """Returns dK (B, N), dbeta_raw (B,)."""
    K, beta, beta_raw, wc = cache
    dz = softmax_backward(dwc, wc)
    return dz * beta[:, None], (dz * K).sum(axis=1) * sigmoid(beta_raw)
