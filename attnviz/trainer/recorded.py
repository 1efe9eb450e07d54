"""What both models share beyond their own parts: a config and named parameters, and what the trainer's
recording and diagnosis read of a forward pass. Each model names its own ``recording`` module (with
trace_arrays, bytes_per_step and quantities of its config), imported when first asked, as it imports
the model."""

from __future__ import annotations

import importlib

import numpy as np


class Recorded:
    recording: str  # e.g. "attnviz.trainer.ntm.recording"

    def __init__(self, cfg, params: dict[str, np.ndarray]):
        self.cfg = cfg
        self.params = params

    @property
    def dtype(self):
        return self.params["out_W"].dtype

    def _recording(self):
        return importlib.import_module(self.recording)

    def trace_arrays(self, steps: list) -> dict[str, np.ndarray]:
        """The trace datasets of batch row 0 from a forward pass's ``steps``."""
        return self._recording().trace_arrays(self.cfg, steps)

    def bytes_per_step(self) -> int:
        """What recording one sequence holds in memory per step."""
        return self._recording().bytes_per_step(self.cfg)

    def quantities(self, step: dict, logits: np.ndarray):
        """(name, (B, ...) array) of one step of the forward pass, in the order it computes them."""
        return self._recording().quantities(self.cfg, step, logits)
