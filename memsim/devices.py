"""Devices for training: which device model the weights live on, as populations.

A :class:`Device` describes the device of a training run and creates the population holding
every device of a network (or of an ensemble of networks, a leading member dimension):

* ``float``: no device (the float baseline; training uses the same code path);
* ``ideal``: a linear device, fixed step (G range / levels), no noise: a sanity reference;
* ``table``: a jump table (memsim .json, XBTorch triplet or CrossSim LUT); several tables give
  device-to-device variability, each device drawing one of them at creation;
* ``synthetic``: a known Gaussian-profile device (preset or YAML), optional ``d2d`` spread;
* ``neurosim``: the NeuroSim-style analytic device: exponential G-vs-pulse curves set by a
  nonlinearity per polarity and a number of levels, cycle-to-cycle noise ``c2c`` (std as a
  fraction of the range per pulse) and device-to-device spread ``d2d`` of the nonlinearity;
* ``hfox``: the physics-derived HfOx weak-RESET model (:mod:`memsim.physics`): RESET only,
  per-device parameters, telegraph and 1/f noise; ``levels`` sets the pulse budget that
  defines its nominal range, ``d2d: 0`` makes every device the median device.

New physics goes into a :class:`~memsim.populations.Population` subclass and a kind here;
the training code only sees populations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import optimize

from .errors import MemsimError
from .formats import load_model
from .models import DeviceModel
from .populations import IdealPopulation, Population, SyntheticPopulation, TablePopulation
from .schema import Section

KINDS = ("float", "ideal", "table", "synthetic", "neurosim", "hfox")


# ------------------------------------------------------------------- NeuroSim device


def _curve_deviation(a: float) -> float:
    """Largest gap between the normalised curve (1 - e^(-x/a)) / (1 - e^(-1/a)) and x."""
    if a > 1e3:
        return 1 / (8 * a)
    c = 1 - np.exp(-1 / a)
    x = -a * np.log(a * c)
    return float((1 - np.exp(-x / a)) / c - x)


def nonlinearity_to_a(label: float) -> float:
    """NeuroSim's nonlinearity label -> its curvature parameter A (in units of the levels).

    NeuroSim tabulates A against labels 0.01..9; its table follows label = 10.1 x the largest
    deviation of the normalised curve from a straight line to within about 1 %, which is the
    relation used here (label 2.4 -> A = 0.50, 4.88 -> A = 0.20, as in XBTorch's synthetic
    target).
    """
    label = abs(float(label))
    if label < 1e-6:
        return 1e9  # linear in the limit; finite keeps B * (1 - e^(-1/A)) exact in float64
    target = label / 10.1
    if target >= 0.999:
        raise MemsimError(f"nonlinearity {label} is beyond the NeuroSim range (0 to about 10)")
    return float(optimize.brentq(lambda a: _curve_deviation(a) - target, 1e-3, 1e7,
                                 xtol=1e-12))


class NeuroSimPopulation(Population):
    """NeuroSim-style devices: a SET pulse moves G along G(P) = B (1 - exp(-P/A)) + G_min, a
    RESET pulse along the mirrored curve from G_max; per pulse the mean step is therefore
    linear in G. ``c2c`` adds Normal(0, (c2c * range)^2) noise to every pulse; ``d2d`` draws
    each device's nonlinearity label from Normal(label, d2d^2) once."""

    def __init__(self, shape, g_min: float, g_max: float, levels: int, nl_set: float,
                 nl_reset: float, c2c: float = 0.0, d2d: float = 0.0, device="cpu", seed=0,
                 dtype=torch.float32):
        super().__init__(shape, device, seed, dtype)
        self.g_min, self.g_max = float(g_min), float(g_max)
        span = self.g_max - self.g_min
        self.noise = c2c * span
        gen = torch.Generator().manual_seed(int(seed) + 7919)

        def per_device(label):
            labels = torch.full((self.numel,), abs(float(label)), dtype=torch.float64)
            if d2d > 0:
                labels = (labels + d2d * torch.randn(self.numel, generator=gen,
                                                     dtype=torch.float64)).clamp_(0, 9.9)
            uniq, inv = torch.unique(labels, return_inverse=True)
            a = torch.tensor([nonlinearity_to_a(v) for v in uniq.tolist()], dtype=torch.float64)
            a = a[inv] * levels  # in pulses
            decay = -torch.expm1(-1 / a)  # 1 - exp(-1/A): the fraction of the gap per pulse
            reach = span / -torch.expm1(-levels / a)  # B: asymptote distance
            return decay, reach

        ds, bs = per_device(nl_set)
        dr, br = per_device(nl_reset)
        # mean step = intercept + slope * G, per device and polarity
        kw = {"dtype": dtype, "device": self.device}
        self.set_slope = (-ds).to(**kw)
        self.set_icpt = (ds * (self.g_min + bs)).to(**kw)
        self.reset_slope = (-dr).to(**kw)
        self.reset_icpt = (dr * (self.g_max - br)).to(**kw)
        self.g.fill_(self.g_min)

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        take = (lambda t: t) if idx is None else (lambda t: t.index_select(0, idx))
        if isinstance(is_set, bool):
            slope, icpt = ((self.set_slope, self.set_icpt) if is_set
                           else (self.reset_slope, self.reset_icpt))
            step = take(icpt) + take(slope) * g
        else:
            step = torch.where(is_set, take(self.set_icpt) + take(self.set_slope) * g,
                               take(self.reset_icpt) + take(self.reset_slope) * g)
        if self.noise > 0:
            step.add_(torch.randn(g.shape, generator=self.generator, device=self.device,
                                  dtype=self.dtype), alpha=self.noise)
        g.add_(step)
        self._clip(g, idx)
        self._scatter(idx, g)


# ---------------------------------------------------------------------- the device


@dataclass
class Device:
    """The device of a training run (see the module docstring for the kinds)."""

    kind: str = "float"
    paths: list[str] = field(default_factory=list)
    unit: str = "S"
    preset: str | None = None
    levels: int = 1000
    g_min: float = 0.0
    g_max: float = 1.0
    nonlinearity_set: float = 0.0
    nonlinearity_reset: float = 0.0
    c2c: float = 0.0
    d2d: float = 0.0
    models: list[DeviceModel] = field(default_factory=list, repr=False)

    def load(self) -> Device:
        """Read the model files now, so a bad path fails before any training."""
        if self.kind == "table" and not self.models:
            if not self.paths:
                raise MemsimError("a table device needs a path")
            self.models = [load_model(p, unit=self.unit) for p in self.paths]
        elif self.kind == "synthetic" and not self.models:
            self.models = [load_model(self.preset or "")]
        return self

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    def g_range(self) -> tuple[float, float]:
        if self.kind in ("ideal", "neurosim", "float"):
            return self.g_min, self.g_max
        if self.kind == "hfox":
            pop = self.population(1)
            return pop.g_min, pop.g_max
        self.load()
        return (min(m.g_min for m in self.models), max(m.g_max for m in self.models))

    def nominal_step(self, polarities=("set",)) -> float:
        """Mean |step| of one pulse over the range, averaged over ``polarities``."""
        if self.kind == "ideal":
            return (self.g_max - self.g_min) / self.levels
        if self.kind == "hfox":  # RESET only
            return self.population(1).nominal_reset_step()
        if self.kind == "neurosim":
            pop = self.population(1)
            g = torch.linspace(self.g_min, self.g_max, 257, dtype=torch.float64)
            steps = []
            for pol in polarities:
                icpt, slope = ((pop.set_icpt, pop.set_slope) if pol == "set"
                               else (pop.reset_icpt, pop.reset_slope))
                steps.append(float((icpt.double()[0] + slope.double()[0] * g).abs().mean()))
            return float(np.mean(steps))
        self.load()
        return float(np.mean([m.nominal_step(pol) for m in self.models for pol in polarities]))

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        """Devices for ``shape``; ``choice`` (same shape) picks a model per device, else a
        seeded random pick when the device has several tables."""
        numel = int(np.prod(shape))
        if self.kind == "ideal":
            return IdealPopulation(self.g_min, self.g_max, self.levels, shape, device, seed,
                                   dtype)
        if self.kind == "neurosim":
            return NeuroSimPopulation(shape, self.g_min, self.g_max, self.levels,
                                      self.nonlinearity_set, self.nonlinearity_reset,
                                      self.c2c, self.d2d, device, seed, dtype)
        if self.kind == "hfox":
            from .physics import HfOxPopulation

            return HfOxPopulation(shape, self.levels, device, seed, dtype, d2d=self.d2d > 0)
        self.load()
        if self.kind == "synthetic":
            return SyntheticPopulation(self.models[0], shape, device, seed, dtype, self.d2d)
        if self.kind == "table":
            if choice is None and len(self.models) > 1:
                gen = torch.Generator().manual_seed(int(seed) + 104729)
                choice = torch.randint(0, len(self.models), (numel,), generator=gen)
            return TablePopulation(self.models, shape, choice=choice, device=device,
                                   seed=seed, dtype=dtype)
        raise MemsimError(f"the {self.kind} device has no population")

    def describe(self) -> str:
        if self.kind in ("table",):
            return f"table:{','.join(Path(p).name for p in self.paths)}"
        if self.kind == "synthetic":
            return f"synthetic:{self.preset}"
        return self.kind


def parse_device(value, file=None, where="device", base: Path | None = None) -> Device:
    """A device from a spec: a mapping, or a shorthand string (``float``, ``ideal``, a preset
    name or a table path)."""
    from .synthetic import preset_names

    def resolve(p: str) -> str:
        if base is None or Path(p).is_absolute() or p in preset_names():
            return p
        return str(base / p)

    if isinstance(value, str):
        if value in ("float", "ideal"):
            return Device(kind=value)
        if value in preset_names() or value.endswith((".yaml", ".yml")):
            return Device(kind="synthetic", preset=resolve(value))
        return Device(kind="table", paths=[resolve(value)])
    sec = Section(value, file, where)
    kind = sec.take("kind", str, choices=KINDS)
    dev = Device(kind=kind)
    if kind == "table":
        path = sec.take("path", (str, list))
        paths = [path] if isinstance(path, str) else path
        if not paths or not all(isinstance(p, str) for p in paths):
            raise sec.error("path", "must be a table path or a list of them")
        dev.paths = [resolve(p) for p in paths]
        dev.unit = sec.take("unit", str, "S", choices=("S", "mS", "uS", "nS", "norm"))
    elif kind == "synthetic":
        dev.preset = resolve(sec.take("preset", str))
        dev.d2d = sec.take("d2d", float, 0.0, check=lambda v: v >= 0, check_msg="must be >= 0")
    elif kind == "hfox":
        dev.levels = sec.take("levels", int, 2000, check=lambda v: v > 0,
                              check_msg="must be positive")
        dev.d2d = sec.take("d2d", float, 1.0, check=lambda v: v >= 0, check_msg="must be >= 0")
    elif kind in ("ideal", "neurosim"):
        positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
        dev.levels = sec.take("levels", int, 1000 if kind == "ideal" else 500, **positive)
        dev.g_min = sec.take("g_min", float, 0.0)
        dev.g_max = sec.take("g_max", float, 1.0)
        if not dev.g_max > dev.g_min:
            raise sec.error("g_max", "must be larger than g_min")
        if kind == "neurosim":
            nl = {"check": lambda v: abs(v) < 9.9, "check_msg": "must be within (-9.9, 9.9)"}
            dev.nonlinearity_set = sec.take("nonlinearity_set", float, 0.0, **nl)
            dev.nonlinearity_reset = sec.take("nonlinearity_reset", float, 0.0, **nl)
            nonneg = {"check": lambda v: v >= 0, "check_msg": "must be >= 0"}
            dev.c2c = sec.take("c2c", float, 0.0, **nonneg)
            dev.d2d = sec.take("d2d", float, 0.0, **nonneg)
    sec.done()
    return dev
