"""The Neural Turing Machine (Graves, Wayne and Danihelka, 2014): its config, addressing and model."""

from .config import NTMConfig
from .model import NTM

__all__ = ["NTM", "NTMConfig"]
