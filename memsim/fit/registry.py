"""The registry of fit methods: the one place that maps a method name to its class.

Adding a fit method is one module with a :class:`~memsim.fit.base.FitMethod` subclass and one
line in :data:`METHODS`; ``memsim fit``, sweep specs and the CLI's ``--method`` read it here.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import MemsimError
from ..io.data import PulseData
from ..io.schema import Section
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
    """The fit method ``name`` with ``settings``: the method's Settings, a mapping of its spec
    keys (as in a spec's section for it, checked the same way), or None for its defaults."""
    if name not in METHODS:
        raise MemsimError(f"unknown fitting method {name!r}; use one of {', '.join(METHODS)}")
    if isinstance(settings, Mapping):
        sec = Section(dict(settings), None, name)
        method = METHODS[name].from_spec(sec)
        sec.done()
        return method
    if settings is not None and not isinstance(settings, METHODS[name].Settings):
        raise MemsimError(f"settings of {name} must be a mapping of its keys or a "
                          f"{METHODS[name].Settings.__name__}, not {type(settings).__name__}")
    return METHODS[name](settings)


def fit(data: PulseData, method: str | FitMethod, *, seed: int = 0, g_range=None
        ) -> FitOutput:
    """Fit a jump table to ``data`` (a PulseData: see load_device_data and sample_points) by
    ``method`` (a name, or a configured method)."""
    if not isinstance(data, PulseData):
        raise MemsimError(f"data to fit must be PulseData (memsim.load_device_data or "
                          f"memsim.sample_points), not {type(data).__name__}")
    fitter = get_method(method) if isinstance(method, str) else method
    return fitter.fit(data, seed=seed, g_range=g_range)
