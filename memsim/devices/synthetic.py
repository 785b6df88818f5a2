"""The ``synthetic`` device kind: a known Gaussian-profile device (a preset or a device YAML,
:mod:`memsim.models.synthetic`), with optional device-to-device spread ``d2d``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from ..models.resolve import is_preset, load_model, resolve_ref
from ..models.synthetic import SyntheticDevice, preset_names
from ..seeds import seed_for
from .base import ModelBackedKind, nonnegative
from .population import BOUNDS, Population


class SyntheticPopulation(Population):
    """Devices following a synthetic Gaussian-profile model, optionally with device-to-device
    variability: each device's mean and spread scaled by a factor ~ N(1, d2d^2) drawn once."""

    def __init__(self, model, shape, device="cpu", seed=0, dtype=torch.float32, d2d=0.0,
                 noise: bool = True):
        super().__init__(shape, device, seed, dtype)
        self.model = model
        self.noise = noise  # off: every pulse the mean step (the draws still made)
        self.g_min, self.g_max = float(model.g_min), float(model.g_max)
        self.g.fill_(self.g_min)
        self.scale = None
        if d2d > 0:
            # drawn on the CPU like every kind's variation: the same devices on CPU and GPU
            gen = torch.Generator().manual_seed(seed_for(seed, "variation"))
            z = torch.randn(self.numel, generator=gen, dtype=dtype).to(self.device)
            self.scale = (1 + d2d * z).clamp_(min=0)

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        if isinstance(is_set, bool):
            pol = "set" if is_set else "reset"
            mu, sd = self.model.means[pol](g), self.model.stds[pol](g)
        else:
            mu = torch.where(is_set, self.model.means["set"](g), self.model.means["reset"](g))
            sd = torch.where(is_set, self.model.stds["set"](g), self.model.stds["reset"](g))
        scale = None if self.scale is None else (
            self.scale if idx is None else self.scale.index_select(0, idx))
        sd = sd.clamp_(min=0) if self.noise else sd.zero_()

        def draw(pos=None):
            m, s = (mu, sd) if pos is None else (mu.index_select(0, pos), sd.index_select(0, pos))
            z = torch.randn(m.shape, generator=self.generator, device=self.device,
                            dtype=self.dtype)
            d = m.addcmul(s, z)
            if scale is not None:
                d.mul_(scale if pos is None else scale.index_select(0, pos))
            return d

        dg = draw()
        if self.bounds == "reject":
            self._redraw_leaving(g, dg, idx, draw)
        g.add_(dg)
        self._clip(g, idx)
        self._scatter(idx, g)



@dataclass
class SyntheticKind(ModelBackedKind):
    """Weights on synthetic devices (``preset``: a preset name or a device YAML)."""

    kind: ClassVar[str] = "synthetic"
    path_fields: ClassVar[tuple[str, ...]] = ('preset',)
    model_type: ClassVar[type] = SyntheticDevice
    switches: ClassVar[dict[str, dict]] = {"noise": {"noise": False}, "d2d": {"d2d": 0.0}}
    preset: str = ""
    d2d: float = 0.0
    noise: bool = True  # cycle-to-cycle noise of every pulse (off: the mean step)
    bounds: str = "clip"  # a change leaving the range: clip, or reject (redrawn)
    models: list = field(default_factory=list, repr=False)

    @classmethod
    def from_spec(cls, sec, base) -> SyntheticKind:
        preset = resolve_ref(sec.take("preset", str), base)
        if not (is_preset(preset) or Path(preset).exists()):
            raise sec.error("preset", f"no synthetic preset or device file {preset!r} "
                                      f"(presets: {', '.join(preset_names())})")
        return cls(preset=preset,
                   d2d=sec.take("d2d", float, 0.0, **nonnegative),
                   bounds=sec.take("bounds", str, "clip", choices=BOUNDS),
                   noise=sec.take("noise", bool, True))

    @classmethod
    def example(cls) -> SyntheticKind:
        return cls(preset="xbtorch_target")

    @classmethod
    def from_model(cls, model, ref: str = "") -> SyntheticKind:
        return cls(preset=ref or model.name, models=[model])

    def load(self) -> SyntheticKind:
        if not self.models:
            self.models = [load_model(self.preset)]
            self.check_models(self.preset)
        return self

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        self.load()
        pop = SyntheticPopulation(self.models[0], shape, device, seed, dtype, self.d2d,
                                  self.noise)
        pop.bounds = self.bounds
        return pop

    def describe(self) -> str:
        return f"synthetic:{Path(self.preset).name}"
