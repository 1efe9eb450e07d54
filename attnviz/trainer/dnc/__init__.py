"""The Differentiable Neural Computer (Graves et al. 2016): its config, memory management and model."""

from .config import DNCConfig
from .model import DNC

__all__ = ["DNC", "DNCConfig"]
