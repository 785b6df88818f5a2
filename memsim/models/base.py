"""Device models as conditional distributions of the change of one pulse.

A *device model* answers, for each polarity (``set`` = potentiation, ``reset`` = depression):
what is the distribution of dG caused by ONE pulse, given the present conductance G? Every
model offers the same numpy view (quantiles, CDF, mean, std, sampling) used by fitting and
metrics; :mod:`memsim.devices` turns a model into a torch population of many devices.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..io.data import POLARITIES

__all__ = ["POLARITIES", "DeviceModel"]


class DeviceModel(ABC):
    """The distribution of dG for one pulse given G, for SET and RESET, on [g_min, g_max]."""

    g_min: float
    g_max: float
    unit: str
    name: str
    #: One pulse's change depends on the present G alone: no device keeps parameters of its
    #: own between pulses, so a jump table (which draws every change afresh) can represent
    #: the model exactly and a finely tabulated copy of it must train like it. Truths with
    #: device-to-device or walked parameters are not memoryless.
    memoryless: bool = True

    @abstractmethod
    def quantile(self, polarity: str, g: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Quantiles of dG: ``p`` of shape (n_p,) or (len(g), n_p); result (len(g), n_p)."""

    @abstractmethod
    def cdf(self, polarity: str, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        """P(dG <= x | g): ``x`` of shape (n_x,) or (len(g), n_x); result (len(g), n_x)."""

    @abstractmethod
    def mean(self, polarity: str, g: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def std(self, polarity: str, g: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def sample_dg(self, polarity: str, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw of dG for each conductance in ``g`` (no clipping)."""

    def nominal_step(self, polarity: str = "set", n_grid: int = 257) -> float:
        """Mean |E[dG]| over the conductance range: the typical size of one pulse. Every
        device kind built on a model takes its nominal step from here."""
        g = np.linspace(self.g_min, self.g_max, n_grid)
        return float(np.mean(np.abs(self.mean(polarity, g))))
