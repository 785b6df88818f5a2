"""The base class of a device kind: what a training run needs to know about its memory device.

A *device kind* is one device family (``ideal``, ``table``, ``hfox``, ...). Its class declares
the spec keys it reads (:meth:`DeviceKind.from_spec`), its conductance range, the size of one
nominal pulse, the population holding every device of a network, and a one-word description.
:mod:`memsim.devices.registry` is the only place that maps a ``kind:`` to its class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..errors import MemsimError
from ..io.paths import portable
from ..models.resolve import model_ident
from .population import Population

positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
nonnegative = {"check": lambda v: v >= 0, "check_msg": "must be >= 0"}


def parse_range(sec) -> tuple[float, float]:
    """``g_min`` and ``g_max`` of a spec section (defaults 0 and 1), checked."""
    g_min = sec.take("g_min", float, 0.0)
    g_max = sec.take("g_max", float, 1.0)
    if not g_max > g_min:
        raise sec.error("g_max", "must be larger than g_min")
    return g_min, g_max


@dataclass
class DeviceKind(ABC):
    """One device family for training. Subclasses are dataclasses of their spec settings."""

    kind: ClassVar[str]
    is_float: ClassVar[bool] = False
    model_type: ClassVar[type | None] = None  # the device model this kind simulates, if any
    path_fields: ClassVar[tuple[str, ...]] = ()  # settings that name files
    polarities: ClassVar[tuple[str, ...]] = ("set", "reset")  # the pulses it accepts
    noisy: ClassVar[bool] = True  # different seeds give different devices
    # imperfection -> the settings that switch it off (what ``memsim ablate`` varies)
    switches: ClassVar[dict[str, dict]] = {}

    @classmethod
    def example(cls) -> DeviceKind:
        """A small, self-contained instance (no files): what the contract tests run."""
        return cls()

    @classmethod
    @abstractmethod
    def from_spec(cls, sec, base: Path | None) -> DeviceKind:
        """Read this kind's keys from a spec section (:class:`~memsim.io.schema.Section`);
        relative paths are relative to ``base``."""

    def load(self) -> DeviceKind:
        """Read model files now, so a bad path fails before any training."""
        return self

    @abstractmethod
    def g_range(self) -> tuple[float, float]:
        """The conductance range the weight mapping spans."""

    @abstractmethod
    def nominal_step(self, polarities=("set",)) -> float:
        """Mean |dG| of one pulse over the range, averaged over ``polarities``."""

    @abstractmethod
    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        """The devices of ``shape``; ``choice`` (same shape) picks a model per device where a
        kind holds several."""

    def describe(self) -> str:
        return self.kind

    def switched(self, states: dict[str, bool]) -> DeviceKind:
        """A copy with imperfections switched: ``{name: False}`` applies the settings that turn
        ``name`` off, ``{name: True}`` keeps this device's own; ``all`` sets every switch first,
        so ``{all: False, d2d: True}`` is d2d alone."""
        unknown = [k for k in states if k != "all" and k not in self.switches]
        if unknown:
            names = ", ".join([*self.switches, "all"]) if self.switches else "none"
            raise MemsimError(f"unknown switch {unknown[0]!r} for a {self.kind} device (its "
                              f"switches: {names})")
        off = {k: False for k in self.switches} if states.get("all") is False else {}
        off.update({k: v for k, v in states.items() if k != "all"})
        changes = {}
        for name, on in off.items():
            if not on:
                changes.update(self.switches[name])
        return replace(self, **changes)

    def resolved(self, relto: Path | None = None) -> dict:
        """The settings as written to an output's spec.yaml (paths relative to ``relto``)."""
        out = {"kind": self.kind}
        for f in fields(self):
            if f.name == "models":
                continue
            value = getattr(self, f.name)
            if f.name in self.path_fields:
                value = portable(value, relto)
            out[f.name] = value
        return out

    def ident(self) -> dict:
        """The settings with every file they name replaced by its content hash: what a cache
        keys on, so a device file edited in place is not served from a stale result."""
        out = self.resolved()
        for name in self.path_fields:
            value = getattr(self, name)
            out[name] = ([model_ident(v) for v in value] if isinstance(value, list)
                         else model_ident(value) if value else value)
        return out


@dataclass
class ModelBackedKind(DeviceKind):
    """A kind that simulates device models (tables, synthetic devices): range and nominal step
    come from the models themselves."""

    @classmethod
    def from_model(cls, model, ref: str = "") -> ModelBackedKind:
        """This kind simulating an already loaded ``model`` (``ref``: where it came from)."""
        raise NotImplementedError

    def check_models(self, where: str) -> None:
        """Refuse models of another type (a table where a synthetic device is expected)."""
        for m in self.models:
            if not isinstance(m, self.model_type):
                raise MemsimError(f"a {self.kind} device needs a {self.model_type.__name__}, "
                                  f"but {where} is a {type(m).__name__}")

    def g_range(self) -> tuple[float, float]:
        self.load()
        return (min(m.g_min for m in self.models), max(m.g_max for m in self.models))

    def nominal_step(self, polarities=("set",)) -> float:
        self.load()
        return float(np.mean(self.model_steps(polarities)))

    def model_steps(self, polarities=("set",)) -> np.ndarray:
        """Each model's own nominal step: what a controller calibrated on that model uses."""
        self.load()
        return np.array([np.mean([m.nominal_step(pol) for pol in polarities])
                         for m in self.models])
