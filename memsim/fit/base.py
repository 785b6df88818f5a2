"""The interface every fit method implements, and what a fit returns.

A fit method is a :class:`FitMethod` subclass with a settings dataclass (the one schema and
the one set of defaults, read by ``memsim fit`` specs and sweep specs alike through
:meth:`FitMethod.from_spec`) and :meth:`FitMethod.fit`, which turns (G, dG) data into a
:class:`~memsim.models.table.JumpTable`. :mod:`memsim.fit.registry` maps names to methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..io.paths import portable
from ..models.table import JumpTable
from .sanity import check_table

at_least_1 = {"check": lambda v: v >= 1, "check_msg": "must be >= 1"}
at_least_2 = {"check": lambda v: v >= 2, "check_msg": "must be >= 2"}


@dataclass
class FitOutput:
    """A fitted table and the records of the method's search (may be empty)."""

    table: JumpTable
    records: list[dict] = field(default_factory=list)


class FitMethod(ABC):
    """One way of fitting a jump table; an instance holds its settings."""

    name: ClassVar[str]
    Settings: ClassVar[type]
    runtime_fields: ClassVar[tuple[str, ...]] = ()  # settings that never change the table
    where_fields: ClassVar[tuple[str, ...]] = ()  # settings saying where, not what, is fitted
    path_fields: ClassVar[tuple[str, ...]] = ()  # settings that name files

    def __init__(self, settings=None):
        self.settings = settings if settings is not None else self.Settings()

    @classmethod
    @abstractmethod
    def from_spec(cls, sec, base: Path | None = None) -> FitMethod:
        """Read the method's settings from a spec section; keys left out keep the defaults."""

    @abstractmethod
    def min_points(self) -> int:
        """Points per polarity the method needs."""

    def check_points(self, n: int, polarity: str, where: str | None = None) -> None:
        """Refuse too few points before any work, with a line the user can act on."""
        if n < self.min_points():
            raise MemsimError(f"too few points for {self.describe_need()}: {polarity} has {n}, "
                              f"it needs at least {self.min_points()}", where)

    def describe_need(self) -> str:
        return f"a {self.name} fit"

    def fit(self, data: PulseData, *, seed: int = 0, g_range=None) -> FitOutput:
        """Fit both polarities of ``data`` on ``g_range`` (default: the data's range); the
        table is checked against the data (:func:`~memsim.fit.sanity.check_table`) and refused
        if any bin reaches beyond what the data support."""
        require_both_polarities(data, ", ".join(src["path"] for src in data.sources) or None)
        out = self.estimate(data, seed=seed, g_range=g_range)
        check_table(out.table, data)
        return out

    @abstractmethod
    def estimate(self, data: PulseData, *, seed: int = 0, g_range=None) -> FitOutput:
        """The method's own fit, before the sanity check."""

    def prepare(self) -> None:  # noqa: B027 - optional
        """Set up what parallel fits will share (an Optuna storage's tables), once, before
        they start."""

    def to_doc(self) -> dict:
        """The settings as a spec mapping that :meth:`from_spec` reads back."""
        return {f.name: getattr(self.settings, f.name) for f in fields(self.settings)
                if f.name not in self.runtime_fields}

    def portable_doc(self, relto) -> dict:
        """:meth:`to_doc` with file paths relative to ``relto`` (for output spec files)."""
        return {k: portable(v, relto) if k in self.path_fields else v
                for k, v in self.to_doc().items()}

    def params(self) -> dict:
        return asdict(self.settings)

    def key_params(self) -> dict:
        """The settings that identify a fitted table in a sweep's store: all of them but the
        runtime and storage-location ones."""
        return {k: v for k, v in self.to_doc().items() if k not in self.where_fields}


def require_both_polarities(data: PulseData, where: str | None = None) -> None:
    """A jump table has a SET and a RESET side: data with no points of one are refused."""
    for pol in POLARITIES:
        if data.n(pol) == 0:
            raise MemsimError(f"the data hold no {pol} points; a jump table needs both "
                              "polarities", where)


def data_range(data: PulseData, g_range) -> tuple[float, float]:
    """The G range a fit covers: ``g_range`` if given, else the data's."""
    if g_range is not None:
        lo, hi = g_range
        if not hi > lo:
            raise MemsimError(f"g_range ({lo:g}, {hi:g}) is empty: its upper end must exceed "
                              "its lower")
        return float(lo), float(hi)
    lo, hi = data.g_range()
    if not hi > lo:
        raise MemsimError("conductance range of the data is empty")
    return float(lo), float(hi)


def fit_metadata(data: PulseData, method: str, params: dict, seed: int | None) -> dict:
    return {"method": method, "params": params, "n": {p: data.n(p) for p in POLARITIES},
            "unit": data.unit, "seed": seed, "sources": data.sources}
