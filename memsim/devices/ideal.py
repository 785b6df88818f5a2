"""The ``ideal`` device kind: a linear device, fixed step (G range / levels), no noise; the
sanity reference between float and real devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import DeviceKind, parse_range, positive
from .population import Population


class IdealPopulation(Population):
    """An ideal linear device: every pulse moves G by exactly +-step, no noise."""

    def __init__(self, g_min: float, g_max: float, levels: int, shape, device="cpu", seed=0,
                 dtype=torch.float32):
        super().__init__(shape, device, seed, dtype)
        self.g_min, self.g_max = float(g_min), float(g_max)
        self.step = (self.g_max - self.g_min) / levels
        self.g.fill_(self.g_min)

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        if isinstance(is_set, bool):
            g.add_(self.step if is_set else -self.step)
        else:
            g.add_(torch.where(is_set, self.step, -self.step))
        self._clip(g, idx)
        self._scatter(idx, g)



@dataclass
class IdealKind(DeviceKind):
    kind: ClassVar[str] = "ideal"
    noisy: ClassVar[bool] = False
    levels: int = 1000
    g_min: float = 0.0
    g_max: float = 1.0

    @classmethod
    def from_spec(cls, sec, base) -> IdealKind:
        levels = sec.take("levels", int, 1000, **positive)
        return cls(levels, *parse_range(sec))

    def g_range(self) -> tuple[float, float]:
        return self.g_min, self.g_max

    def nominal_step(self, polarities=("set",)) -> float:
        return (self.g_max - self.g_min) / self.levels

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        return IdealPopulation(self.g_min, self.g_max, self.levels, shape, device, seed, dtype)
