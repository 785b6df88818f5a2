"""Known synthetic devices (ground truths) and the study's "Algorithm 2" sampler.

A synthetic device draws the change of one pulse as dG | G ~ Normal(mu_pol(G), sigma_pol(G)^2)
on [G_min, G_max]. Profiles are given in YAML in the device's own unit::

    name: my_device
    unit: nS                  # unit of every conductance number below
    g_min: 3
    g_max: 38
    set:
      mean: {kind: linear, intercept: 0.173, slope: -0.003982}
      std:  {kind: constant, value: 1.2}
    reset:
      mean: {kind: softbounds, step: 0.5, exponent: 1}
      std:  {kind: proportional, factor: 0.3, floor: 0.05}

Profile kinds: ``constant`` (value), ``linear`` (intercept + slope*G), ``polynomial`` (coeffs
c0 + c1*G + ...), ``softbounds`` (mean only: step*(1-x)^exponent for SET, -step*x^exponent for
RESET, x = (G-G_min)/(G_max-G_min)), ``proportional`` (std only: factor*|mean| + floor).
Named presets ship in ``memsim/models/presets``; Algorithm 2 (data from a known device) is
:mod:`memsim.models.sampling`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import special

from .. import units
from ..errors import MemsimError
from ..io.schema import REQUIRED, Section, load_yaml
from .base import DeviceModel

MEAN_KINDS = ("constant", "linear", "polynomial", "softbounds")
STD_KINDS = ("constant", "linear", "polynomial", "proportional")


@dataclass
class Profile:
    """mu(G) or sigma(G) of one polarity, parameters in the device's spec unit."""

    kind: str
    params: dict
    scale: float  # spec unit -> internal unit
    g_min: float  # internal unit
    g_max: float
    sign: float  # +1 for SET, -1 for RESET (softbounds direction)
    of_mean: Profile | None = None  # for kind "proportional"

    def __call__(self, g):
        """Evaluate on a numpy array or torch tensor of internal-unit conductances."""
        lib = torch if isinstance(g, torch.Tensor) else np
        p, s = self.params, self.scale
        if self.kind == "constant":
            return g * 0 + p["value"] * s
        if self.kind == "linear":
            return (p["intercept"] + p["slope"] * (g / s)) * s
        if self.kind == "polynomial":
            x = g / s
            acc = g * 0 + p["coeffs"][-1]
            for c in reversed(p["coeffs"][:-1]):
                acc = acc * x + c
            return acc * s
        if self.kind == "softbounds":
            x = lib.clip((g - self.g_min) / (self.g_max - self.g_min), 0.0, 1.0)
            frac = (1 - x) if self.sign > 0 else x
            return self.sign * p["step"] * s * frac ** p.get("exponent", 1.0)
        if self.kind == "proportional":
            return p["factor"] * lib.abs(self.of_mean(g)) + p.get("floor", 0.0) * s
        raise AssertionError(self.kind)


_PROFILE_KEYS = {
    "constant": {"value": True},
    "linear": {"intercept": True, "slope": True},
    "polynomial": {"coeffs": True},
    "softbounds": {"step": True, "exponent": False},
    "proportional": {"factor": True, "floor": False},
}


def _parse_profile(sec: Section, key: str, kinds, scale, g_min, g_max, sign,
                   of_mean=None) -> Profile:
    s = sec.sub(key)
    kind = s.take("kind", str, choices=kinds)
    params = {}
    for name, required in _PROFILE_KEYS[kind].items():
        if name == "coeffs":
            params[name] = [float(c) for c in s.number_list(name)]
        else:
            value = s.take(name, float, REQUIRED if required else None)
            if value is not None:
                params[name] = value
    s.done()
    return Profile(kind, params, scale, g_min, g_max, sign, of_mean)


@dataclass
class SyntheticDevice(DeviceModel):
    """A known device: Gaussian dG with mean and std profiles per polarity."""

    name: str
    g_min: float
    g_max: float
    unit: str
    means: dict[str, Profile]
    stds: dict[str, Profile]
    spec: dict = field(default_factory=dict)
    description: str = ""

    def mean(self, polarity, g):
        return np.asarray(self.means[polarity](np.asarray(g, dtype=float)), dtype=float)

    def std(self, polarity, g):
        return np.maximum(self.stds[polarity](np.asarray(g, dtype=float)), 0.0)

    def quantile(self, polarity, g, p):
        z = special.ndtri(np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12))
        z = z if z.ndim == 2 else z[None, :]
        return self.mean(polarity, g)[:, None] + self.std(polarity, g)[:, None] * z

    def cdf(self, polarity, g, x):
        g = np.asarray(g, dtype=float)
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = np.broadcast_to(x, (len(g), len(x)))
        m = self.mean(polarity, g)[:, None]
        s = np.maximum(self.std(polarity, g)[:, None], 1e-300)
        return special.ndtr((x - m) / s)

    def sample_dg(self, polarity, g, rng):
        g = np.asarray(g, dtype=float)
        return self.mean(polarity, g) + self.std(polarity, g) * rng.standard_normal(len(g))


def synthetic_from_spec(data: dict, file=None, name: str | None = None) -> SyntheticDevice:
    sec = Section(data, file)
    name = sec.take("name", str, name or (Path(file).stem if file else "synthetic"))
    description = sec.take("description", str, "")
    unit = sec.take("unit", str, "S", choices=("S", "mS", "uS", "nS", "norm"))
    scale = units.factor(unit)
    g_min = sec.take("g_min", float) * scale
    g_max = sec.take("g_max", float) * scale
    if not g_max > g_min:
        raise sec.error("g_max", "must be larger than g_min")
    if unit != "norm" and g_min < 0:
        raise sec.error("g_min", "a conductance cannot be negative")
    means, stds = {}, {}
    for pol, sign in (("set", 1.0), ("reset", -1.0)):
        ps = sec.sub(pol)
        means[pol] = _parse_profile(ps, "mean", MEAN_KINDS, scale, g_min, g_max, sign)
        stds[pol] = _parse_profile(ps, "std", STD_KINDS, scale, g_min, g_max, sign,
                                   of_mean=means[pol])
        if stds[pol].kind == "softbounds":
            raise ps.error("std", "softbounds is a mean profile")
        ps.done()
        grid = np.linspace(g_min, g_max, 1001)
        mu, sd = means[pol](grid), stds[pol](grid)
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd))):
            raise ps.error("mean", "profile is not finite over [g_min, g_max]")
        if np.any(sd < 0):
            bad = grid[np.argmax(sd < 0)] / scale
            raise ps.error("std", f"profile is negative at G = {bad:g} {unit}")
    sec.done()
    internal = units.ARBITRARY if unit == "norm" else units.SIEMENS
    return SyntheticDevice(name, g_min, g_max, internal, means, stds, dict(data), description)


PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_synthetic(name_or_path: str | Path) -> SyntheticDevice:
    """A synthetic device from a preset name or a YAML file."""
    text = str(name_or_path)
    if text.startswith("preset:"):
        text = text[len("preset:"):]
        if text not in preset_names():
            raise MemsimError(f"unknown synthetic preset {text!r}; presets: "
                              f"{', '.join(preset_names())}")
    if text in preset_names():
        path = PRESET_DIR / f"{text}.yaml"
        return synthetic_from_spec(load_yaml(path), path, text)
    return synthetic_from_spec(load_yaml(name_or_path), name_or_path)
