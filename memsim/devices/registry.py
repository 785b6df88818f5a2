"""The registry of device kinds: the one place that maps a spec's ``kind:`` to its class.

Adding a device family is one module with a :class:`~memsim.devices.base.DeviceKind` subclass
and one line in :data:`KINDS`; spec parsing, training, sweeps and the contract tests pick it
up from here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import MemsimError
from ..io.schema import Section
from ..models.base import DeviceModel
from ..models.resolve import load_model, resolve_ref
from .base import DeviceKind
from .floating import FloatKind
from .hfox import HfOxKind
from .ideal import IdealKind
from .neurosim import NeuroSimKind
from .population import Population
from .synthetic import SyntheticKind
from .table import TableKind

KINDS: dict[str, type[DeviceKind]] = {
    "float": FloatKind,
    "ideal": IdealKind,
    "table": TableKind,
    "synthetic": SyntheticKind,
    "neurosim": NeuroSimKind,
    "hfox": HfOxKind,
}


def parse_device(value, file=None, where: str = "device", base: Path | None = None
                 ) -> DeviceKind:
    """A device from a spec: a mapping with ``kind:`` and that kind's keys, or a shorthand
    string: a kind name (its defaults) or any model reference (a preset, ``preset:NAME``, a
    device YAML or a table file, see :func:`memsim.models.resolve.load_model`)."""
    if isinstance(value, str):
        if value in KINDS:  # a kind with its defaults: its required keys still say so
            sec = Section({}, file, where)
            return KINDS[value].from_spec(sec, base)
        ref = resolve_ref(value, base)
        try:
            model = load_model(ref)
        except MemsimError as err:
            raise MemsimError(err.problem, file, f"key {where!r}: {err.file or value}") \
                from None
        return device_for_model(model, ref)
    sec = Section(value, file, where)
    kind = sec.take("kind", str, choices=tuple(KINDS))
    dev = KINDS[kind].from_spec(sec, base)
    sec.done()
    return dev


def device_for_model(model: DeviceModel, ref: str = "") -> DeviceKind:
    """The device kind that simulates ``model`` (its natural population)."""
    for cls in KINDS.values():
        if cls.model_type is not None and isinstance(model, cls.model_type):
            return cls.from_model(model, ref)
    raise MemsimError(f"no device kind simulates a {type(model).__name__}")


def population_for(model: DeviceModel, shape, device="cpu", seed: int = 0, g0=None,
                   dtype=torch.float32) -> Population:
    """A population of devices following ``model``, started at ``g0`` (default: G_min)."""
    pop = device_for_model(model).population(shape, device=device, seed=seed, dtype=dtype)
    if g0 is not None:
        pop.program(g0)
    return pop
