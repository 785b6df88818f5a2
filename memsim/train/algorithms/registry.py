"""The registry of update algorithms: the one place that maps ``training.algorithm`` to its
class. A new algorithm is one module with an :class:`~.base.Algorithm` subclass and one line
in :data:`ALGORITHMS`."""

from __future__ import annotations

from ...io.schema import Section
from .base import Algorithm
from .mixed_precision import MixedPrecision
from .pulse_trains import PulseTrains
from .sgd import SGD
from .tiki_taka import TikiTaka

ALGORITHMS: dict[str, type[Algorithm]] = {
    "sgd": SGD,
    "mixed_precision": MixedPrecision,
    "tiki_taka": TikiTaka,
    "pulse_trains": PulseTrains,
}


def parse_algorithm(value, file=None, where: str = "training.algorithm") -> dict:
    """An algorithm from a spec (a name, or a mapping with ``kind:`` and its settings), checked
    and returned as its settings document (what keys and hashes see)."""
    if isinstance(value, str):
        value = {"kind": value}
    sec = Section(value, file, where)
    kind = sec.take("kind", str, choices=tuple(ALGORITHMS))
    algo = ALGORITHMS[kind].from_spec(sec)
    sec.done()
    return algo.to_doc()


def make_algorithm(doc: dict) -> Algorithm:
    """A fresh algorithm from its settings document."""
    settings = {k: v for k, v in doc.items() if k != "kind"}
    return ALGORITHMS[doc["kind"]](**settings)
