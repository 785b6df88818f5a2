"""The registry of device kinds: the one place that maps a spec's ``kind:`` to its class.

Adding a device family is one module with a :class:`~memsim.devices.base.DeviceKind` subclass
and one line in :data:`KINDS`; spec parsing, training, sweeps and the contract tests pick it
up from here.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import torch

from ..errors import MemsimError
from ..io.schema import Section
from ..io.storage import sha256_json
from ..models.base import DeviceModel
from ..models.resolve import load_model, model_ident, resolve_ref
from .base import DeviceKind
from .floating import FloatKind
from .hfox import HfOxKind
from .ideal import IdealKind
from .jart import JartKind
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
    "jart": JartKind,
}


def parse_device(value, file=None, where: str = "device", base: Path | None = None
                 ) -> DeviceKind:
    """A device from a spec: a mapping with ``kind:`` and that kind's keys, or a shorthand
    string: a kind name (its defaults), ``KIND:PRESET`` for a kind's named configuration
    (``jart:realistic_mixed``) or any model reference (a preset, ``preset:NAME``, a device
    YAML or a table file, see :func:`memsim.models.resolve.load_model`)."""
    if isinstance(value, str):
        if value in KINDS:  # a kind with its defaults: its required keys still say so
            sec = Section({}, file, where)
            return KINDS[value].from_spec(sec, base)
        kind, _, preset = value.partition(":")
        if preset and kind in KINDS:
            sec = Section({"preset": preset}, file, where)
            dev = KINDS[kind].from_spec(sec, base)
            sec.done()
            return dev
        ref = resolve_ref(value, base)
        if Path(ref).suffix in (".yaml", ".yml") and Path(ref).is_file():
            from ..io.schema import load_yaml

            doc = load_yaml(ref)
            if isinstance(doc, dict) and "kind" in doc:  # a device-kind YAML (kind checked)
                return parse_device(doc, ref, "device", Path(ref).parent)
            if not isinstance(doc, dict) or "g_min" not in doc:  # nor a synthetic device
                raise MemsimError(f"not a device YAML (it needs kind: one of "
                                  f"{', '.join(KINDS)}, or a synthetic device's g_min, g_max, "
                                  "set and reset)", file, f"key {where!r}: {value}")
        try:
            model = load_model(ref)
        except MemsimError as err:
            inner = f": {err.where}" if err.where else ""
            raise MemsimError(err.problem, file, f"key {where!r}: {err.file or value}{inner}") \
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
    """A population of devices following ``model``, started at ``g0`` (default: G_min).
    ``shape``: a count or a tuple of them, each positive (refused here, not deep in torch)."""
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    if not all(isinstance(d, Integral) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise MemsimError(f"number of devices must be a positive integer (or a tuple of them), "
                          f"not {shape!r}")
    pop = device_for_model(model).population(shape, device=device, seed=seed, dtype=dtype)
    if g0 is not None:
        pop.program(g0)
    return pop


# -- physics devices as models: a truth of a modeling-bias sweep may be ``KIND:PRESET`` of a kind
# that can act as a device model (``jart:realistic_mixed``); models/ cannot know device kinds,
# so sweeps resolve their truths here.


def is_kind_preset(ref: str) -> bool:
    """``KIND:PRESET`` of a device kind that can serve as a model (``as_model``)."""
    kind, _, name = str(ref).partition(":")
    return bool(name) and hasattr(KINDS.get(kind), "as_model")


def load_truth(ref: str) -> DeviceModel:
    """A sweep truth: a kind's preset as a device model, or any model reference."""
    return parse_device(ref).as_model() if is_kind_preset(ref) else load_model(ref)


def truth_ident(ref: str) -> str:
    """A content hash of a truth: the kind's resolved settings, or the model's files."""
    return sha256_json(parse_device(ref).resolved()) if is_kind_preset(ref) else \
        model_ident(ref)
