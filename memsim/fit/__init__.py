"""Fitting jump tables from (G, dG) data: one module per method behind one interface.

:mod:`.base` (the interface), :mod:`.binning`, :mod:`.optuna_binning`, :mod:`.smooth`,
:mod:`.registry` (name -> method), :mod:`.experiment` (``memsim fit``: data -> table ->
metrics -> files), :mod:`.plots` (its figures).
"""

from .base import FitMethod, FitOutput
from .registry import METHODS, fit, get_method

__all__ = ["METHODS", "FitMethod", "FitOutput", "fit", "get_method"]
