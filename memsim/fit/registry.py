"""The registry of fit methods: the one place that maps a method name to its class.

Adding a fit method is one module with a :class:`~memsim.fit.base.FitMethod` subclass and one
line in :data:`METHODS`; ``memsim fit``, sweep specs and the CLI's ``--method`` read it here.
"""

from __future__ import annotations

from ..errors import MemsimError
from ..io.data import PulseData
from .base import FitMethod, FitOutput
from .binning import Binning
from .optuna_binning import OptunaBinning
from .smooth import Smooth

METHODS: dict[str, type[FitMethod]] = {
    "binning": Binning,
    "optuna": OptunaBinning,
    "smooth": Smooth,
}


def get_method(name: str, settings=None) -> FitMethod:
    """The fit method ``name`` with ``settings`` (default: the method's defaults)."""
    if name not in METHODS:
        raise MemsimError(f"unknown fitting method {name!r}; use one of {', '.join(METHODS)}")
    return METHODS[name](settings)


def fit(data: PulseData, method: str | FitMethod, *, seed: int = 0, g_range=None
        ) -> FitOutput:
    """Fit a jump table to ``data`` by ``method`` (a name, or a configured method)."""
    fitter = get_method(method) if isinstance(method, str) else method
    return fitter.fit(data, seed=seed, g_range=g_range)
