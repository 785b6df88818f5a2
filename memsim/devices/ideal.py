"""The ``ideal`` device kind: a linear device, fixed step (G range / levels), no noise; the
sanity reference between float and real devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import DeviceKind, nonnegative, parse_range, positive
from .population import Population


class IdealPopulation(Population):
    """A linear device: every pulse moves G by +-step, plus Gaussian write noise of ``noise``
    steps (standard deviation; 0: an ideal device)."""

    def __init__(self, g_min: float, g_max: float, levels: int, shape, device="cpu", seed=0,
                 dtype=torch.float32, noise: float = 0.0):
        super().__init__(shape, device, seed, dtype)
        self.g_min, self.g_max = float(g_min), float(g_max)
        self.step = (self.g_max - self.g_min) / levels
        self.noise = float(noise) * self.step
        self.g.fill_(self.g_min)

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        if isinstance(is_set, bool):
            g.add_(self.step if is_set else -self.step)
        else:
            g.add_(torch.where(is_set, self.step, -self.step))
        if self.noise:
            z = self.draws.normal_(self.ws.get("u", g.numel(), self.dtype))
            g.add_(z, alpha=self.noise)
        self._clip(g, idx)
        self._scatter(idx, g)



@dataclass
class IdealKind(DeviceKind):
    """``levels`` steps across the range; ``noise``: Gaussian write noise per pulse, in steps."""

    kind: ClassVar[str] = "ideal"
    levels: int = 1000
    g_min: float = 0.0
    g_max: float = 1.0
    noise: float = 0.0

    @property
    def noisy(self) -> bool:
        return self.noise > 0

    @classmethod
    def from_spec(cls, sec, base) -> IdealKind:
        levels = sec.take("levels", int, 1000, **positive)
        g_min, g_max = parse_range(sec)
        return cls(levels, g_min, g_max, sec.take("noise", float, 0.0, **nonnegative))

    def g_range(self) -> tuple[float, float]:
        return self.g_min, self.g_max

    def nominal_step(self, polarities=("set",)) -> float:
        return (self.g_max - self.g_min) / self.levels

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        return IdealPopulation(self.g_min, self.g_max, self.levels, shape, device, seed, dtype,
                               self.noise)
