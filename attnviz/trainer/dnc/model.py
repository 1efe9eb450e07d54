"""The Differentiable Neural Computer (Graves et al. 2016): parameters, the forward pass over a
sequence, and backpropagation through time, by hand.

Shapes: T time steps, B batch, X input width, Y output width, H controller units, N memory
locations, W word width, R read heads; one write head.

One step: the controller reads [x_t, r_{t-1}] and emits the interface vector (laid out by
DNCConfig.interface_layout). Usage rises where the last step wrote and falls where the free gates
release what the read heads read (memory.py); the write weighting mixes the allocation weighting
(the least used locations) with a content lookup, under the allocation and write gates; the memory is
written (erase then add), then the temporal link matrix and precedence record the order of writes.
Each read head reads the new memory by a mix of three modes: backward and forward along the links
from where it read last, and content. The output is [h_t, r_t] W_out + b_out.
"""

from __future__ import annotations

import numpy as np

from .. import layers
from .. import memory as mem_ops
from ..recorded import Recorded
from . import memory as dnc
from .config import DNCConfig

SCALARS = ("write_strength", "allocation_gate", "write_gate")  # one value per sequence: (B,)


def init_params(cfg: DNCConfig, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Glorot-uniform weights, zero biases (LSTM forget gate bias 1; the gates' biases from the config)."""

    def glorot(n_in, n_out):
        return layers.glorot(rng, n_in, n_out, dtype)

    H, RW = cfg.controller_size, cfg.read_heads * cfg.word_size
    p = layers.controller_params(cfg.controller, cfg.input_size + RW, H, rng, dtype)
    layout = cfg.interface_layout()
    p["iface_W"] = glorot(H, cfg.interface_size)
    p["iface_b"] = np.zeros(cfg.interface_size, dtype)
    p["iface_b"][layout["write_gate"]] = cfg.write_gate_bias
    p["iface_b"][layout["allocation_gate"]] = cfg.allocation_gate_bias
    p["iface_b"][layout["free_gates"]] = cfg.free_gate_bias
    p["out_W"] = glorot(H + RW, cfg.output_size)
    p["out_b"] = np.zeros(cfg.output_size, dtype)
    return p


def split_interface(cfg: DNCConfig, raw: np.ndarray) -> dict[str, np.ndarray]:
    """Cut the raw interface vector (B, P) into its named parts, read-head parts with a heads axis."""
    B, R, W = raw.shape[0], cfg.read_heads, cfg.word_size
    out = {}
    for name, s in cfg.interface_layout().items():
        part = raw[:, s]
        if name in SCALARS:
            part = part[:, 0]
        elif name == "read_keys":
            part = part.reshape(B, R, W)
        elif name == "read_modes":
            part = part.reshape(B, R, cfg.modes)
        out[name] = part
    return out


def join_interface(cfg: DNCConfig, parts: dict[str, np.ndarray], out: np.ndarray) -> None:
    """The reverse of split_interface: each part's gradient into its place in ``out`` (B, P)."""
    B = out.shape[0]
    for name, s in cfg.interface_layout().items():
        out[:, s] = parts[name][:, None] if name in SCALARS else parts[name].reshape(B, -1)


def initial_state(cfg: DNCConfig, B: int, dtype=np.float32) -> dict[str, np.ndarray]:
    """An empty memory: nothing written, used, linked or read."""
    N, W, R, H = cfg.memory_size, cfg.word_size, cfg.read_heads, cfg.controller_size
    z = np.zeros
    return {"memory": z((B, N, W), dtype), "usage": z((B, N), dtype), "link": z((B, N, N), dtype),
            "precedence": z((B, N), dtype), "write_weighting": z((B, N), dtype),
            "read_weightings": z((B, R, N), dtype), "reads": z((B, R, W), dtype), "h": z((B, H), dtype),
            "c": z((B, H), dtype)}


class DNC(Recorded):
    """A Differentiable Neural Computer with hand-derived backpropagation through time."""

    name, recording = "dnc", "attnviz.trainer.dnc.recording"  # what it records of itself: Recorded

    @classmethod
    def create(cls, cfg: DNCConfig, seed: int = 0, dtype=np.float32) -> DNC:
        return cls(cfg, init_params(cfg, np.random.default_rng(seed), dtype))

    # ------------------------------------------------------------------ forward

    def forward(self, x: np.ndarray, keep_memory: bool = False, cache: bool = True):
        """Run the model over a batch of sequences. x: (T, B, X). Returns logits (T, B, Y) and a cache
        for ``backward`` whose ``steps`` hold one dict per step (empty with ``cache=False``: the logits
        alone, in the memory of one step). The memory after each step is kept (it is needed by backward
        anyway); ``keep_memory`` is accepted for the shared interface."""
        cfg, p = self.cfg, self.params
        T, B, _ = x.shape
        R = cfg.read_heads
        x = x.astype(self.dtype, copy=False)
        s = initial_state(cfg, B, self.dtype)
        logits = np.empty((T, B, cfg.output_size), self.dtype)
        steps = []
        for t in range(T):
            st = {}
            u_in = np.concatenate([x[t], s["reads"].reshape(B, -1)], axis=1)
            if cfg.controller == "lstm":
                h, c, st["ctrl"] = layers.lstm_forward(u_in, s["h"], s["c"], p["ctrl_W"], p["ctrl_b"])
            else:  # no cell state: c stays as it started
                h, st["ctrl"] = layers.feedforward_forward(u_in, p["ctrl_W"], p["ctrl_b"])
                c = s["c"]
            xi = split_interface(cfg, h @ p["iface_W"] + p["iface_b"])
            # allocation: free what was read, add what was written, allocate the least used
            psi, free, st["retention"] = dnc.retention_forward(xi["free_gates"], s["read_weightings"])
            usage, st["usage"] = dnc.usage_forward(s["usage"], s["write_weighting"], psi)
            alloc, st["allocation"] = dnc.allocation_forward(usage)
            # write: where allocation and the content lookup say, under the gates
            K, st["write_cosine"] = mem_ops.cosine_forward(xi["write_key"], s["memory"])
            cw, st["write_content"] = mem_ops.content_forward(K, xi["write_strength"])
            ww, gw, ga, st["write_weighting"] = dnc.write_weighting_forward(alloc, cw, xi["write_gate"],
                                                                            xi["allocation_gate"])
            erase, vec, st["erase_add"] = mem_ops.erase_add_forward(xi["erase"], xi["write_vector"])
            memory, st["write"] = mem_ops.write_forward(ww, erase, vec, s["memory"])
            link, st["link"] = dnc.link_forward(s["link"], ww, s["precedence"])
            prec, st["precedence"] = dnc.precedence_forward(s["precedence"], ww)
            # read: along the links from where each head read last, or by content
            fwd, bwd, st["directions"] = dnc.directions_forward(link, s["read_weightings"])
            content, cr = [], []
            for i in range(R):
                K, c1 = mem_ops.cosine_forward(xi["read_keys"][:, i], memory)
                wc, c2 = mem_ops.content_forward(K, xi["read_strengths"][:, i])
                content.append(wc)
                cr.append((c1, c2))
            st["read_content"], content = cr, np.stack(content, axis=1)
            wr, modes, st["read_weighting"] = dnc.read_weighting_forward(bwd, content, fwd, xi["read_modes"])
            reads = wr @ memory  # (B, R, W)
            o_in = np.concatenate([h, reads.reshape(B, -1)], axis=1)
            logits[t] = o_in @ p["out_W"] + p["out_b"]
            if cache:
                # what recording.py reads (the key strengths: from the content lookups' caches)
                st.update(h=h, o_in=o_in, memory=memory, read_weightings=wr, write_weightings=ww, usage_now=usage,
                          alloc=alloc, gates=(gw, ga), free=free, modes=modes, link_now=link, precedence_now=prec,
                          erase=erase, vector=vec, reads=reads, read_content_now=content, write_content_now=cw)
                steps.append(st)
            s = {"memory": memory, "usage": usage, "link": link, "precedence": prec, "write_weighting": ww,
                 "read_weightings": wr, "reads": reads, "h": h, "c": c}
        return logits, {"x_shape": x.shape, "steps": steps}

    # ----------------------------------------------------------------- backward

    def backward(self, dlogits: np.ndarray, cache) -> dict[str, np.ndarray]:
        """Backpropagation through time. dlogits: (T, B, Y). Returns a gradient per parameter."""
        cfg, p = self.cfg, self.params
        T, B, _ = cache["x_shape"]
        X, W, R, N, H = cfg.input_size, cfg.word_size, cfg.read_heads, cfg.memory_size, cfg.controller_size
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        dt = self.dtype
        # the gradients of the state a step hands to the next, arriving from that next step
        d = {"memory": np.zeros((B, N, W), dt), "usage": np.zeros((B, N), dt), "link": np.zeros((B, N, N), dt),
             "precedence": np.zeros((B, N), dt), "write_weighting": np.zeros((B, N), dt),
             "read_weightings": np.zeros((B, R, N), dt), "reads": np.zeros((B, R, W), dt),
             "h": np.zeros((B, H), dt), "c": np.zeros((B, H), dt)}
        for t in reversed(range(T)):
            st = cache["steps"][t]
            grads["out_W"] += st["o_in"].T @ dlogits[t]
            grads["out_b"] += dlogits[t].sum(axis=0)
            do_in = dlogits[t] @ p["out_W"].T
            dh = do_in[:, :H] + d["h"]
            dreads = do_in[:, H:].reshape(B, R, W) + d["reads"]
            parts = {}
            # read
            dwr = dreads @ np.swapaxes(st["memory"], 1, 2) + d["read_weightings"]
            dmemory = d["memory"] + np.swapaxes(st["read_weightings"], 1, 2) @ dreads
            dbwd, dcontent, dfwd, parts["read_modes"] = dnc.read_weighting_backward(dwr, st["read_weighting"])
            dkeys, dstrengths = np.empty((B, R, W), dt), np.empty((B, R), dt)
            for i in range(R):
                c1, c2 = st["read_content"][i]
                dK, dstrengths[:, i] = mem_ops.content_backward(dcontent[:, i], c2)
                dkeys[:, i], dm = mem_ops.cosine_backward(dK, c1)
                dmemory += dm
            parts["read_keys"], parts["read_strengths"] = dkeys, dstrengths
            dlink, dwr_prev = dnc.directions_backward(dfwd, dbwd, st["directions"])
            dlink += d["link"]
            # link and precedence, then the write
            dp_prev, dww = dnc.precedence_backward(d["precedence"], st["precedence"])
            dlink_prev, dww_link, dp_link = dnc.link_backward(dlink, st["link"])
            dww += dww_link + d["write_weighting"]  # the last: through the next step's usage
            dp_prev += dp_link
            dww_w, derase, dvec, dmemory_prev = mem_ops.write_backward(dmemory, st["write"])
            dww += dww_w
            parts["erase"], parts["write_vector"] = mem_ops.erase_add_backward(derase, dvec, st["erase_add"])
            dalloc, dcw, parts["write_gate"], parts["allocation_gate"] = dnc.write_weighting_backward(
                dww, st["write_weighting"])
            dK, parts["write_strength"] = mem_ops.content_backward(dcw, st["write_content"])
            parts["write_key"], dm = mem_ops.cosine_backward(dK, st["write_cosine"])
            dmemory_prev += dm
            # usage and allocation
            dusage = d["usage"] + dnc.allocation_backward(dalloc, st["allocation"])
            du_prev, dww_prev, dpsi = dnc.usage_backward(dusage, st["usage"])
            parts["free_gates"], dwr_free = dnc.retention_backward(dpsi, st["retention"])
            dwr_prev += dwr_free
            # the controller
            draw = np.empty((B, cfg.interface_size), dt)
            join_interface(cfg, parts, draw)
            grads["iface_W"] += st["h"].T @ draw
            grads["iface_b"] += draw.sum(axis=0)
            dh += draw @ p["iface_W"].T
            if cfg.controller == "lstm":
                du_in, dh_prev, dc_prev, dW, db = layers.lstm_backward(dh, d["c"], st["ctrl"])
            else:  # no state of its own: nothing flows back through h or c
                du_in, dW, db = layers.feedforward_backward(dh, st["ctrl"])
                dh_prev, dc_prev = np.zeros_like(dh), d["c"]
            grads["ctrl_W"] += dW
            grads["ctrl_b"] += db
            d = {"memory": dmemory_prev, "usage": du_prev, "link": dlink_prev, "precedence": dp_prev,
                 "write_weighting": dww_prev, "read_weightings": dwr_prev,
                 "reads": du_in[:, X:].reshape(B, R, W), "h": dh_prev, "c": dc_prev}
        return grads

