"""State-space reductions, each its own module and switch: ``symmetry`` (``--symmetry``)."""
from .symmetry import Symmetry

REDUCTIONS = {"symmetry": Symmetry}

__all__ = ["REDUCTIONS", "Symmetry"]
