"""What the trainer's recording and diagnosis read of a model's forward pass, for both models: each
model names its own ``recording`` module (with trace_arrays, bytes_per_step and quantities of its
config), imported when first asked, as it imports the model."""

from __future__ import annotations

import importlib

import numpy as np


class Recorded:
    recording: str  # e.g. "attnviz.trainer.ntm.recording"

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
