"""The DNC's configuration: sizes, heads and the initial biases of its gates, with why each default."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DictConfig, lay_out


@dataclass
class DNCConfig(DictConfig):
    input_size: int  # width of one input vector (the task decides)
    output_size: int  # width of one output vector (the task decides)
    controller: str = "lstm"  # "lstm" or "feedforward"
    controller_size: int = 64
    # N locations: copy's longest sequence (20) with room to spare, and 4 times fewer than the NTM's
    # 128 (which are there to test its walk on long sequences), so a step costs about the NTM's. A
    # longer copy needs more: `attnviz generalise --memory-size` (docs/performance.md).
    memory_size: int = 32
    word_size: int = 16  # W: a word holds one 8-bit input vector with room to spare
    read_heads: int = 1
    write_heads: int = 1  # the paper's DNC has one write head; so does this one (the trace format takes more)
    # Initial bias of the write gate g^w = sigmoid(bias): 0 writes half strength from the start.
    write_gate_bias: float = 0.0
    # Initial bias of the allocation gate g^a: 0 weighs allocation and content lookup equally.
    allocation_gate_bias: float = 0.0
    # Initial bias of the free gates: 0, half the read weight freed after each read.
    free_gate_bias: float = 0.0

    # TrainConfig fields this model sets where the task sets none (not a field of the config): Adam at
    # 3e-3 with the gradient's norm clipped at 50, the other tasks' settings. With copy's (1e-3, each
    # element clipped at 10) copy's seed 0 was still at 0.37 held-out wrong bits per sequence after
    # 189,440 sequences; with these it converged at 54,400 (docs/performance.md).
    train_defaults = {"lr": 3e-3, "clip": 0.0, "clip_norm": 50.0}

    def __post_init__(self):
        if self.write_heads != 1:
            raise ValueError(f"write_heads={self.write_heads}: the bundled DNC has one write head, as the paper's")
        if self.controller not in ("lstm", "feedforward"):
            raise ValueError(f"unknown controller {self.controller!r}: expected 'lstm' or 'feedforward'")
        for name in ("memory_size", "word_size", "read_heads", "controller_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be at least 1")

    @property
    def modes(self) -> int:
        """Read modes per read head: backward and forward for each write head, and content."""
        return 2 * self.write_heads + 1

    def interface_layout(self) -> dict[str, slice]:
        """Where each part sits in the interface vector the controller emits every step (the one
        definition: the parameter count, the initial biases, the forward split and the backward join
        follow it). Read-head parts hold R values (or R x W, R x modes) one head after another."""
        R, W = self.read_heads, self.word_size
        sizes = {"read_keys": R * W, "read_strengths": R, "write_key": W, "write_strength": 1, "erase": W,
                 "write_vector": W, "free_gates": R, "allocation_gate": 1, "write_gate": 1,
                 "read_modes": R * self.modes}
        return lay_out(sizes)

    @property
    def interface_size(self) -> int:
        return max(s.stop for s in self.interface_layout().values())
