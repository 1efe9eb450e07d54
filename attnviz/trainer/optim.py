"""Optimisers over a dict of parameter arrays, updated in place."""

from __future__ import annotations

import numpy as np


class Adam:
    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.state = {"t": np.zeros((), np.int64)}
        for k, v in params.items():
            self.state[f"m/{k}"] = np.zeros_like(v)
            self.state[f"v/{k}"] = np.zeros_like(v)

    def step(self, params, grads):
        self.state["t"] += 1
        t = int(self.state["t"])
        scale = self.lr * np.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        for k, g in grads.items():
            m, v = self.state[f"m/{k}"], self.state[f"v/{k}"]
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            params[k] -= (scale * m / (np.sqrt(v) + self.eps)).astype(params[k].dtype, copy=False)


class RMSProp:
    """Graves' centred RMSProp with momentum (Graves 2013, eq. 38-41), the NTM paper's optimiser."""

    def __init__(self, params, lr=1e-4, momentum=0.9, decay=0.95, eps=1e-4):
        self.lr, self.momentum, self.decay, self.eps = lr, momentum, decay, eps
        self.state = {}
        for k, v in params.items():
            for s in ("n", "g", "d"):
                self.state[f"{s}/{k}"] = np.zeros_like(v)

    def step(self, params, grads):
        for k, g in grads.items():
            n, gb, d = self.state[f"n/{k}"], self.state[f"g/{k}"], self.state[f"d/{k}"]
            n *= self.decay
            n += (1 - self.decay) * g * g
            gb *= self.decay
            gb += (1 - self.decay) * g
            d *= self.momentum
            d -= self.lr * g / np.sqrt(n - gb * gb + self.eps)
            params[k] += d


OPTIMIZERS = {"adam": Adam, "rmsprop": RMSProp}
