"""--layout dnc: the DNC's memory after the paper's Extended Data Figure 1 (inputs, outputs, weightings,
gates, read modes, usage) on one time axis, in every format; what an NTM trace lacks marked "not
recorded"; and the page's link matrix.

The traces are synthetic DNC copies made by the DNC's own equations (Graves et al. 2016, Methods), with
the gates and read modes that a learned DNC shows: every DNC dataset agrees with the others (usage
from the writes and the free gates, the allocation weighting from usage, the link matrix and
precedence from the writes, the read weightings from the read modes)."""

import numpy as np

from attnviz import Trace


def allocation(u: np.ndarray) -> np.ndarray:
    """a_t[phi_j] = (1 - u[phi_j]) * prod_{i<j} u[phi_i], phi: locations by usage, least used first."""
    phi = np.argsort(u, kind="stable")
    a = np.zeros_like(u)
    a[phi] = (1 - u[phi]) * np.cumprod(np.concatenate([[1.0], u[phi][:-1]]))
    return a


def one_hot(N: int, at: int, peak: float, rng) -> np.ndarray:
    """A sharp weighting: ``peak`` at ``at``, the rest spread thinly (sums to 1)."""
    rest = rng.random(N)
    rest[at] = 0
    w = rest / rest.sum() * (1 - peak)
    w[at] = peak
    return w


def dnc_copy_trace(L: int = 12, N: int = 32, seed: int = 0, read_order: str = "same", read_heads: int = 1,
                   links: bool = True, **meta) -> Trace:
    """A learned DNC copying L items through N locations with one write head.

    The memory starts partly used (as after an earlier sequence), so allocation hands out free
    locations scattered over the memory: item k is written to the k-th least used location. While
    the items come in, the write gate and the allocation gate are open and the free gates shut; after
    the delimiter the write gate shuts, the read heads go through the items by the forward mode (the
    first by content) and free each location as they read it. ``read_order``: "same" reads the items
    back in the order written; "reversed" and "shuffled" read the same locations in another order (and
    so output the wrong items)."""
    rng = np.random.default_rng(seed)
    T, width, R = 2 * L + 1, 6, read_heads
    seq = rng.integers(0, 2, (L, width)).astype(np.float64)
    x = np.zeros((T, width + 1))
    x[:L, :width], x[L, width] = seq, 1
    targets = np.zeros((T, width))
    targets[L + 1 :] = seq

    u = rng.uniform(0.3, 0.9, N)  # an earlier sequence's leftovers ...
    free = rng.choice(N, size=L + 4, replace=False)
    u[free] = rng.uniform(0.0, 0.002, free.size)  # ... and the locations it freed
    stored = np.zeros(L, int)  # where allocation put items 0..L-1
    reads = {"same": np.arange(L), "reversed": np.arange(L)[::-1],
             "shuffled": rng.permutation(L)}[read_order]

    write_gate = np.where(np.arange(T) < L, rng.uniform(0.993, 1.0, T), rng.uniform(0.0, 0.02, T))
    alloc_gate = np.where(np.arange(T) < L, rng.uniform(0.99, 1.0, T), rng.uniform(0.2, 0.8, T))
    free_gates = np.where(np.arange(T)[:, None] > L, rng.uniform(0.9, 1.0, (T, R)), rng.uniform(0.0, 0.05, (T, R)))
    modes = np.zeros((T, R, 3))
    for t in range(T):
        for i in range(R):
            if t <= L:  # nothing to read yet: mostly content, unsure
                modes[t, i] = rng.dirichlet([2, 6, 2])
            elif t == L + 1 or read_order != "same":  # find the first item (or any) by its content
                modes[t, i] = [0.02, 0.95, 0.03]
            else:
                modes[t, i] = rng.dirichlet([1, 6, 60])  # mostly forward: the item written after the last read

    ww, rw, us, aw, pw, lm = (np.zeros(s) for s in ((T, N), (T, R, N), (T, N), (T, N), (T, N), (T, N, N)))
    w_prev, r_prev, p, link = np.zeros(N), np.full((R, N), 1.0 / N), np.zeros(N), np.zeros((N, N))
    outputs = np.full((T, width), 0.5)
    for t in range(T):
        psi = np.prod(1 - free_gates[t][:, None] * r_prev, axis=0)
        u = (u + w_prev - u * w_prev) * psi
        a = allocation(u)
        content_w = one_hot(N, int(np.argmax(a)), 0.9, rng)  # (what the write key would match)
        w = write_gate[t] * (alloc_gate[t] * a + (1 - alloc_gate[t]) * content_w)
        if t < L:
            stored[t] = int(np.argmax(w))
        link = (1 - w[:, None] - w[None, :]) * link + w[:, None] * p[None, :]
        np.fill_diagonal(link, 0.0)
        p = (1 - w.sum()) * p + w
        r = np.zeros((R, N))
        for i in range(R):
            if t > L:
                k = reads[t - L - 1]
                content_r = one_hot(N, stored[k], 0.97, rng)
            else:
                content_r = np.full(N, 1.0 / N)
            forward, backward = link @ r_prev[i], link.T @ r_prev[i]
            r[i] = modes[t, i, 0] * backward + modes[t, i, 1] * content_r + modes[t, i, 2] * forward
        if t > L:
            item = reads[t - L - 1]
            outputs[t] = np.clip(seq[item] * 0.98 + 0.01 + rng.normal(0, 0.005, width), 0, 1)
        ww[t], rw[t], us[t], aw[t], pw[t], lm[t] = w, r, u, a, p, link
        w_prev, r_prev = w, r
    arrays = {"inputs": x, "outputs": outputs, "targets": targets, "output_mask": np.arange(T) > L,
              "write_weightings": ww, "read_weightings": rw[:, 0] if R == 1 else rw, "usage": us,
              "allocation_weightings": aw, "dnc_write_gates": write_gate, "allocation_gates": alloc_gate,
              "free_gates": free_gates[:, 0] if R == 1 else free_gates,
              "read_modes": modes[:, 0] if R == 1 else modes, "precedence_weightings": pw}
    if links:
        arrays["link_matrices"] = lm
    arrays = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in arrays.items()}
    return Trace(arrays, {"task": "copy", "model": "dnc", "sequence_length": L, **meta}), stored
