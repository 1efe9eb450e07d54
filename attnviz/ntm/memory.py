"""Reading and writing the memory matrix, as forward/backward pairs.

Shapes: B batch, N locations, M word width.
Outer products and row sums go through einsum: on these small (B, N, M) arrays it
is about twice as fast as broadcasting.
"""

from __future__ import annotations

import numpy as np

from .layers import sigmoid


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
