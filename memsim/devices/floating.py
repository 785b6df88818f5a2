"""The ``float`` device kind: no memory device. Training takes the same code path with plain
float weights, so every device result has its reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import MemsimError
from .base import DeviceKind


@dataclass
class FloatKind(DeviceKind):
    kind: ClassVar[str] = "float"
    is_float: ClassVar[bool] = True

    @classmethod
    def from_spec(cls, sec, base) -> FloatKind:
        return cls()

    def g_range(self) -> tuple[float, float]:
        return 0.0, 1.0

    def nominal_step(self, polarities=("set",)) -> float:
        raise MemsimError("a float network has no devices, hence no pulse size")

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None, dtype=None):
        raise MemsimError("a float network has no devices")
