"""Conductance units.

memsim works internally in siemens (S). Data given in mS/uS/nS are scaled to S; currents (A)
are divided by the read voltage. Data already normalised (``norm``, e.g. the Gong trace scaled
to about [-1, 1]) have no physical unit and stay as they are, labelled ``a.u.``.
"""

from __future__ import annotations

import numpy as np

from .errors import MemsimError

SCALE_TO_SIEMENS = {"S": 1.0, "mS": 1e-3, "uS": 1e-6, "nS": 1e-9}
INPUT_UNITS = (*SCALE_TO_SIEMENS, "A", "norm")
SIEMENS = "S"
ARBITRARY = "a.u."


def to_internal(values: np.ndarray, unit: str, read_voltage: float | None = None,
                source: str | None = None) -> tuple[np.ndarray, str]:
    """Convert ``values`` given in ``unit`` to memsim's internal unit; return (values, unit)."""
    if unit in SCALE_TO_SIEMENS:
        return values * SCALE_TO_SIEMENS[unit], SIEMENS
    if unit == "A":
        if read_voltage is None or not read_voltage > 0:
            raise MemsimError("values in A (currents) need a positive --read-voltage "
                              "to become conductances", source, "unit")
        return values / read_voltage, SIEMENS
    if unit == "norm":
        return values, ARBITRARY
    raise MemsimError(f"unknown unit {unit!r}; use one of {', '.join(INPUT_UNITS)}", source, "unit")


def factor(unit: str) -> float:
    """Multiply a value in ``unit`` by this to get memsim's internal value."""
    if unit in SCALE_TO_SIEMENS:
        return SCALE_TO_SIEMENS[unit]
    if unit in ("norm", ARBITRARY):
        return 1.0
    raise MemsimError(f"unknown unit {unit!r}; use one of S, mS, uS, nS, norm")


def display_unit(unit: str, magnitude: float) -> tuple[str, float]:
    """A readable unit for plots: returns (label, divisor) for values of about ``magnitude``."""
    if unit != SIEMENS:
        return ARBITRARY, 1.0
    for label, scale in (("S", 1.0), ("mS", 1e-3), ("µS", 1e-6), ("nS", 1e-9), ("pS", 1e-12)):
        if magnitude >= scale:
            return label, scale
    return "pS", 1e-12
