"""``memsim bias-sweep``: the modeling bias of fitted device models, batched and resumable.

:mod:`.spec` (sweep specs), :mod:`.plan` (fit cells and training batches, content-hashed),
:mod:`.tasks` (fit a cell, train a batch), :mod:`.execute` (executors), :mod:`.store` (results
by key), :mod:`.report` (tables, statistics, figures), :mod:`.run` (all of it in order).
"""

from .run import run_sweep
from .spec import SweepSpec, load_sweep_spec, parse_sweep_spec

__all__ = ["SweepSpec", "load_sweep_spec", "parse_sweep_spec", "run_sweep"]
