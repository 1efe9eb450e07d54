"""The loss both models train on, and the score the tasks are judged by."""

from __future__ import annotations

import numpy as np

from .layers import sigmoid


def wrong_bits(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Wrong bits per sequence (B,) after thresholding the outputs at 0.5, scored steps only."""
    return (((logits > 0) != (targets > 0.5)) * mask[:, :, None]).sum(axis=(0, 2))


def bce_loss(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray):
    """Binary cross-entropy summed over bits and masked steps, averaged over the batch.

    logits, targets: (T, B, Y); mask: (T, B) with 1 where the output is scored.
    Returns (loss in nats per sequence, dlogits).
    """
    B = logits.shape[1]
    # log(1 + exp(-|z|)) + max(z, 0) - z*y, stable for any z
    per = np.logaddexp(0.0, logits) - logits * targets
    m = mask[:, :, None]
    loss = float((per * m).sum() / B)
    dlogits = (sigmoid(logits) - targets) * m / B
    return loss, dlogits.astype(logits.dtype, copy=False)
