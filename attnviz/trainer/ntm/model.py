"""The Neural Turing Machine: parameters, forward pass over a sequence, and BPTT.

Shapes: T time steps, B batch, X input width, Y output width, H controller units,
N memory locations, M word width, W write heads, R read heads.

One step: the controller reads [x_t, r_{t-1}] and emits every head's parameters (laid out
by NTMConfig.head_layout); the read heads address and read the memory as the previous step
left it, then the write heads address and write (erase then add) in turn (read_first, the
default; the other order with read_first=False); the output is sigmoid([h_t, r_t] W_out + b_out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import layers, memory
from ..recorded import Recorded
from . import addressing
from .config import NTMConfig


@dataclass
class HeadOutput:
    """What one head did at one step (kept for traces)."""

    weighting: np.ndarray  # (B, N)
    erase: np.ndarray | None = None  # (B, M), write heads only
    add: np.ndarray | None = None  # (B, M), write heads only
    read: np.ndarray | None = None  # (B, M), read heads only


def init_params(cfg: NTMConfig, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Glorot-uniform weights, zero biases (LSTM forget gate bias 1; the heads' from the config)."""

    def glorot(n_in, n_out):
        return layers.glorot(rng, n_in, n_out, dtype)

    H, RM = cfg.controller_size, cfg.read_heads * cfg.word_size
    p = layers.controller_params(cfg.controller, cfg.input_size + RM, H, rng, dtype)
    offsets = cfg.head_offsets
    p["head_W"] = glorot(H, offsets[-1])
    p["head_b"] = np.zeros(offsets[-1], dtype)
    if cfg.shift_init not in ("zero", "random"):
        raise ValueError(f"unknown shift_init {cfg.shift_init!r}: expected 'zero' or 'random'")
    for j, start in enumerate(offsets[:-1]):
        is_write = j < cfg.write_heads
        part = {name: slice(start + s.start, start + s.stop) for name, s in cfg.head_layout(is_write).items()}
        p["head_b"][part["g"]] = cfg.gate_bias if is_write or cfg.read_gate_bias is None else cfg.read_gate_bias
        p["head_b"][part["gamma"]] = cfg.sharpen_bias
        p["head_b"][part["shift"]] = shift_bias(cfg, is_write)
        if cfg.shift_init == "zero":  # every head's first moves come from its shift bias alone
            p["head_W"][:, part["shift"]] = 0
    p["out_W"] = glorot(H + RM, cfg.output_size)
    p["out_b"] = np.zeros(cfg.output_size, dtype)
    if cfg.learn_memory:
        s = 1.0 / np.sqrt(cfg.memory_size + cfg.word_size)
        p["memory0"] = rng.uniform(-s, s, (cfg.memory_size, cfg.word_size)).astype(dtype)
    return p


def shift_bias(cfg: NTMConfig, is_write: bool) -> np.ndarray:
    """Initial bias of a head's shift logits, one per offset -R..R (see NTMConfig.shift_bias)."""
    k = np.arange(-cfg.shift_range, cfg.shift_range + 1)
    if cfg.shift_bias == "none":
        return np.zeros(k.size)
    if cfg.shift_bias != "forward":
        raise ValueError(f"unknown shift_bias {cfg.shift_bias!r}: expected 'forward' or 'none'")
    favourite, second = (1, 0) if is_write else (0, 1)  # write heads move on, read heads stay
    return np.where(k == favourite, 1.0, np.where(k == second, 0.0, -1.0))


def initial_state(cfg: NTMConfig, B: int, dtype=np.float32, memory0: np.ndarray | None = None):
    """The initial memory (``memory0`` in every sequence when it is learned, else the constant
    init_memory), head weightings, read vectors and controller state."""
    N, M, H = cfg.memory_size, cfg.word_size, cfg.controller_size
    if memory0 is None:
        mem = np.full((B, N, M), cfg.init_memory, dtype)
    else:
        mem = np.repeat(memory0[None].astype(dtype, copy=False), B, axis=0)
    if cfg.init_weighting == "onehot":
        w0 = np.zeros((B, N), dtype)
        w0[:, 0] = 1.0
    elif cfg.init_weighting == "uniform":
        # Removed: with a constant initial memory every weighting would stay exactly 1/N and every
        # addressing gradient exactly 0, so no head could ever learn to address.
        raise ValueError("init_weighting 'uniform' cannot learn to address (with a constant initial memory "
                         "every weighting stays 1/N and every addressing gradient is 0); use 'onehot'")
    else:
        raise ValueError(f"unknown init_weighting {cfg.init_weighting!r}; the only one is 'onehot'")
    n_heads = cfg.write_heads + cfg.read_heads
    weights = [w0.copy() for _ in range(n_heads)]
    reads = [memory.read_forward(w0, mem)[0] for _ in range(cfg.read_heads)]
    h = np.zeros((B, H), dtype)
    c = np.zeros((B, H), dtype)
    return mem, weights, reads, h, c


SCALARS = ("beta", "g", "gamma")  # head parts of one value per sequence: (B,), not (B, 1)


def _split_head(layout: dict[str, slice], raw: np.ndarray) -> dict[str, np.ndarray]:
    """Cut one head's raw outputs (B, P) into its named parts (layout: NTMConfig.head_layout)."""
    return {name: raw[:, s.start] if name in SCALARS else raw[:, s] for name, s in layout.items()}


def _join_head(layout: dict[str, slice], parts: dict[str, np.ndarray], out: np.ndarray) -> None:
    """The reverse of _split_head: write each part's gradient into its place in ``out`` (B, P)."""
    for name, s in layout.items():
        out[:, s] = parts[name][:, None] if name in SCALARS else parts[name]


class NTM(Recorded):
    """A Neural Turing Machine with hand-derived backpropagation through time."""

    name, recording = "ntm", "attnviz.trainer.ntm.recording"  # what it records of itself: Recorded

    @classmethod
    def create(cls, cfg: NTMConfig, seed: int = 0, dtype=np.float32) -> NTM:
        initial_state(cfg, 1, dtype)  # an impossible start fails here, not at the first step
        return cls(cfg, init_params(cfg, np.random.default_rng(seed), dtype))


    # ------------------------------------------------------------------ forward

    def forward(self, x: np.ndarray, keep_memory: bool = False, cache: bool = True):
        """Run the model over a batch of sequences.

        x: (T, B, X). Returns logits (T, B, Y) and a cache for ``backward``; the cache's
        ``heads`` list holds per step the HeadOutput of every head, and ``memories``
        the memory after each step (B, N, M) when keep_memory or always (it is needed
        by backward anyway). With ``cache=False`` no step is kept (the cache's ``steps`` is
        empty): the logits alone, in the memory of one step, for long sequences.
        """
        cfg, p = self.cfg, self.params
        T, B, _ = x.shape
        x = x.astype(self.dtype, copy=False)
        mem, weights, reads, h, c = initial_state(cfg, B, self.dtype, p.get("memory0"))
        offsets, W = cfg.head_offsets, cfg.write_heads
        layouts = [cfg.head_layout(j < W) for j in range(W + cfg.read_heads)]
        order = head_order(cfg)
        logits = np.empty((T, B, cfg.output_size), self.dtype)
        steps = []
        for t in range(T):
            u = np.concatenate([x[t], *reads], axis=1)  # (B, X + R*M)
            if cfg.controller == "lstm":
                h, c, ctrl_cache = layers.lstm_forward(u, h, c, p["ctrl_W"], p["ctrl_b"])
            else:
                h, ctrl_cache = layers.feedforward_forward(u, p["ctrl_W"], p["ctrl_b"])
            raw = h @ p["head_W"] + p["head_b"]  # (B, P)
            head_caches, outs = [None] * len(weights), [None] * len(weights)
            for j in order:
                is_write = j < W
                hp = _split_head(layouts[j], raw[:, offsets[j] : offsets[j + 1]])
                w, a_cache = addressing.address_forward(
                    hp["key"], hp["beta"], hp["g"], hp["shift"], hp["gamma"], weights[j], mem)
                weights[j] = w
                if is_write:
                    e, a, v_cache = memory.erase_add_forward(hp["erase"], hp["add"])
                    mem, m_cache = memory.write_forward(w, e, a, mem)
                    outs[j] = HeadOutput(w, erase=e, add=a)
                    head_caches[j] = (a_cache, m_cache, v_cache)
                else:
                    r, m_cache = memory.read_forward(w, mem)
                    reads[j - W] = r
                    outs[j] = HeadOutput(w, read=r)
                    head_caches[j] = (a_cache, m_cache, None)
            o_in = np.concatenate([h, *reads], axis=1)  # (B, H + R*M)
            logits[t] = o_in @ p["out_W"] + p["out_b"]
            if cache:
                steps.append({"ctrl": ctrl_cache, "h": h, "heads": head_caches, "o_in": o_in,
                              "out": outs, "memory": mem if keep_memory else None})
        return logits, {"x_shape": x.shape, "steps": steps}

    # ----------------------------------------------------------------- backward

    def backward(self, dlogits: np.ndarray, cache) -> dict[str, np.ndarray]:
        """Backpropagation through time. dlogits: (T, B, Y). Returns a gradient per parameter."""
        cfg, p = self.cfg, self.params
        T, B, _ = cache["x_shape"]
        X, M, W, R = cfg.input_size, cfg.word_size, cfg.write_heads, cfg.read_heads
        H, offsets = cfg.controller_size, cfg.head_offsets
        layouts = [cfg.head_layout(j < W) for j in range(W + R)]
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        dh_next = np.zeros((B, H), self.dtype)
        dc_next = np.zeros((B, H), self.dtype)
        dmem = np.zeros((B, cfg.memory_size, M), self.dtype)
        dw_next = [np.zeros((B, cfg.memory_size), self.dtype) for _ in range(W + R)]
        dr_next = [np.zeros((B, M), self.dtype) for _ in range(R)]
        for t in reversed(range(T)):
            st = cache["steps"][t]
            grads["out_W"] += st["o_in"].T @ dlogits[t]
            grads["out_b"] += dlogits[t].sum(axis=0)
            do_in = dlogits[t] @ p["out_W"].T  # (B, H + R*M)
            dh = do_in[:, :H] + dh_next
            draw = np.empty((B, offsets[-1]), self.dtype)  # the gradient of every head's raw outputs
            # The heads in reverse order of the forward pass; dmem is always the gradient of the
            # memory as the head being undone left it.
            for j in reversed(head_order(cfg)):
                a_cache, m_cache, v_cache = st["heads"][j]
                parts = {}
                if j >= W:  # a read head
                    dr = do_in[:, H + (j - W) * M : H + (j - W + 1) * M] + dr_next[j - W]
                    dw, dm = memory.read_backward(dr, m_cache)
                    dmem += dm
                else:  # a write head: dmem turns into the gradient of the memory before its write
                    dw, de, da, dmem = memory.write_backward(dmem, m_cache)
                    parts["erase"], parts["add"] = memory.erase_add_backward(de, da, v_cache)
                (parts["key"], parts["beta"], parts["g"], parts["shift"], parts["gamma"], dw_next[j], dm
                 ) = addressing.address_backward(dw + dw_next[j], a_cache)
                dmem += dm
                _join_head(layouts[j], parts, draw[:, offsets[j] : offsets[j + 1]])
            grads["head_W"] += st["h"].T @ draw
            grads["head_b"] += draw.sum(axis=0)
            dh += draw @ p["head_W"].T
            if cfg.controller == "lstm":
                du, dh_next, dc_next, dW, db = layers.lstm_backward(dh, dc_next, st["ctrl"])
            else:
                du, dW, db = layers.feedforward_backward(dh, st["ctrl"])
            grads["ctrl_W"] += dW
            grads["ctrl_b"] += db
            for k in range(R):
                dr_next[k] = du[:, X + k * M : X + (k + 1) * M]
        if "memory0" in grads:  # the memory before the first step, and the first read vectors (row 0)
            grads["memory0"] += dmem.sum(axis=0)
            grads["memory0"][0] += sum(dr.sum(axis=0) for dr in dr_next)
        return grads

def head_order(cfg: NTMConfig) -> list[int]:
    """The order heads act in within a step (write heads are 0..W-1, read heads W..W+R-1)."""
    writes, reads = list(range(cfg.write_heads)), list(range(cfg.write_heads, cfg.write_heads + cfg.read_heads))
    return reads + writes if cfg.read_first else writes + reads
