"""The bundled trainer, numpy only: two memory networks (``ntm``, ``dnc``), each in its own package,
sharing the layers and memory operations, the tasks, the loss, the optimiser, the gradient
processes, checkpoints and recording (``models`` names the interface they share)."""
