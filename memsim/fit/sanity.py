"""The invariant every fitted table must keep before memsim writes it: no bin may claim changes
the data cannot support.

A bin's support (its quantile row's ends; a Gaussian bin's mean) must lie within the data's
ΔG range widened by :data:`MARGIN` of its width on each side, and its standard deviation may
not exceed what a distribution confined to that widened range can have (half its width). A
table that breaks this is refused with one line naming the polarity, the bin and the values,
whatever method made it: a fit of a small dataset must never hand a user a wild model.
"""

from __future__ import annotations

import numpy as np

from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..models.table import JumpTable

MARGIN = 0.25  # widening of the data's ΔG range on each side, as a fraction of its width
FACTOR = 1 + 2 * MARGIN  # the stated factor: the allowed range is 1.5 x the data's ΔG range


def _limits(dg: np.ndarray) -> tuple[float, float, float]:
    lo, hi = float(dg.min()), float(dg.max())
    width = (hi - lo) or (abs(hi) or 1.0) * 1e-6
    return lo - MARGIN * width, hi + MARGIN * width, width


def table_sanity(table: JumpTable, data: PulseData) -> list[dict]:
    """Per polarity: how far the table's bins reach beyond the data's ΔG range and how wide
    their spread is, both as fractions of that range (a sane table has ``support_excess`` 0
    and ``spread_max_rel`` at most FACTOR / 2)."""
    rows = []
    for pol in POLARITIES:
        dg = data.points[pol].dg
        if len(dg) == 0:
            continue
        low, high, width = _limits(dg)
        t = table.tables[pol]
        if t.kind == "quantile":
            ends = np.stack([t.quantiles[:, 0], t.quantiles[:, -1]], axis=1)
        else:
            ends = np.stack([t.means, t.means], axis=1)
        excess = np.maximum(np.maximum(low - ends[:, 0], ends[:, 1] - high), 0.0) / width
        spread = t.stds / width
        rows.append({"polarity": pol, "support_excess": float(excess.max()),
                     "spread_max_rel": float(spread.max()),
                     "worst_bin": int(np.argmax(excess + np.maximum(spread - FACTOR / 2, 0))),
                     "dg_min": float(dg.min()), "dg_max": float(dg.max())})
    return rows


def check_table(table: JumpTable, data: PulseData, where=None) -> None:
    """Refuse a table whose bins reach beyond the data's ΔG range widened by MARGIN."""
    for row in table_sanity(table, data):
        if row["support_excess"] > 0 or row["spread_max_rel"] > FACTOR / 2:
            pol, k = row["polarity"], row["worst_bin"]
            t = table.tables[pol]
            unit = table.unit
            raise MemsimError(
                f"refusing a wild {table.name} table: {pol} bin {k + 1} "
                f"(G {t.edges[k]:.4g}-{t.edges[k + 1]:.4g} {unit}) has mean "
                f"{t.means[k]:.3g} {unit} and std {t.stds[k]:.3g} {unit}, beyond the data's "
                f"ΔG range [{row['dg_min']:.3g}, {row['dg_max']:.3g}] {unit} widened "
                f"{FACTOR:g}x", where)
