"""Jump tables: the data-driven device model everything memsim fits or imports becomes.

Per polarity, conductance bins and a per-bin dG distribution, either Gaussian (mean, std) or a
quantile function stored on a uniform probability grid ``p = 0, 1/Q, ..., 1`` (linear between
grid points, i.e. an empirical distribution with linear interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import special

from ..errors import MemsimError
from .base import POLARITIES, DeviceModel

# --------------------------------------------------------------------------- tables


def probability_grid(q: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, q + 1)


def _grid_position(p: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    pos = np.clip(p, 0.0, 1.0) * q
    m = np.minimum(pos.astype(np.int64), q - 1)
    return m, pos - m


def quantile_rows_at(rows: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Piecewise-linear quantile rows (n, Q+1) on the uniform grid at ``p``: (n, n_p).

    ``p`` is shared by all rows (shape (n_p,)) or given per row (shape (n, n_p))."""
    p = np.asarray(p, dtype=float)
    m, frac = _grid_position(p, rows.shape[1] - 1)
    if p.ndim == 2:
        lo = np.take_along_axis(rows, m, axis=1)
        hi = np.take_along_axis(rows, m + 1, axis=1)
    else:
        lo, hi = rows[:, m], rows[:, m + 1]
    return lo + frac * (hi - lo)


def quantile_rows_each(rows: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Row i at its own probability p[i]: (n,)."""
    m, frac = _grid_position(np.asarray(p, dtype=float), rows.shape[1] - 1)
    r = np.arange(rows.shape[0])
    lo, hi = rows[r, m], rows[r, m + 1]
    return lo + frac * (hi - lo)


# a quantile row may fall by this fraction of its largest |value| (rounding noise, flattened
# away); more is a reversed or corrupt row, refused rather than silently made point masses
ROW_RTOL = 1e-9


@dataclass
class ConditionalTable:
    """The dG distribution of one polarity: bins over G, a distribution per bin."""

    edges: np.ndarray  # (K+1,), increasing
    kind: str  # "quantile" or "gaussian"
    quantiles: np.ndarray | None = None  # (K, Q+1), nondecreasing rows
    means: np.ndarray | None = None  # (K,)
    stds: np.ndarray | None = None  # (K,)
    counts: np.ndarray | None = None  # data points per bin, for information

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=float)
        if self.edges.ndim != 1 or len(self.edges) < 2 or np.any(np.diff(self.edges) <= 0):
            raise MemsimError("bin edges must be a strictly increasing list of >= 2 values")
        if not np.all(np.isfinite(self.edges)):  # NaN passes the comparison above
            raise MemsimError("bin edges hold NaN or inf")
        k = len(self.edges) - 1
        if self.kind == "quantile":
            self.quantiles = np.asarray(self.quantiles, dtype=float)
            if self.quantiles.ndim != 2 or self.quantiles.shape[0] != k:
                raise MemsimError(f"quantile table must have {k} rows, one per bin")
            if self.quantiles.shape[1] < 2:
                raise MemsimError("quantile rows need at least 2 values (p = 0 and p = 1)")
            if not np.all(np.isfinite(self.quantiles)):
                raise MemsimError("quantile table holds NaN or inf")
            scale = np.max(np.abs(self.quantiles), axis=1, keepdims=True)
            falls = np.any(np.diff(self.quantiles, axis=1) < -ROW_RTOL * scale, axis=1)
            if falls.any():
                raise MemsimError("quantile row decreases (dG must not fall as p grows)",
                                  where=f"row {int(np.argmax(falls)) + 1}")
            self.quantiles = np.maximum.accumulate(self.quantiles, axis=1)
            mean, std = _quantile_moments(self.quantiles)
            self.means, self.stds = mean, std
        elif self.kind == "gaussian":
            self.means = np.asarray(self.means, dtype=float)
            self.stds = np.asarray(self.stds, dtype=float)
            if self.means.shape != (k,) or self.stds.shape != (k,):
                raise MemsimError(f"gaussian table needs {k} means and {k} stds")
            if not (np.all(np.isfinite(self.means)) and np.all(np.isfinite(self.stds))):
                raise MemsimError("gaussian table holds NaN or inf")
            if np.any(self.stds < 0):
                raise MemsimError("gaussian table has a negative standard deviation")
        else:
            raise MemsimError(f"unknown bin distribution kind {self.kind!r}")

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    @property
    def q(self) -> int:
        return 0 if self.quantiles is None else self.quantiles.shape[1] - 1

    def bin_of(self, g: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.edges, np.asarray(g, dtype=float), side="right") - 1
        return np.clip(idx, 0, self.n_bins - 1)

    def quantile(self, g: np.ndarray, p: np.ndarray) -> np.ndarray:
        k = self.bin_of(g)
        p = np.asarray(p, dtype=float)
        if self.kind == "gaussian":
            z = special.ndtri(np.clip(p, 1e-12, 1 - 1e-12))
            return self.means[k, None] + self.stds[k, None] * (z if z.ndim == 2 else z[None, :])
        return quantile_rows_at(self.quantiles[k], p)

    def sample(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = self.bin_of(g)
        if self.kind == "gaussian":
            return self.means[k] + self.stds[k] * rng.standard_normal(len(k))
        return quantile_rows_each(self.quantiles[k], rng.random(len(k)))

    def cdf(self, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        k = self.bin_of(g)
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = np.broadcast_to(x, (len(k), len(x)))
        if self.kind == "gaussian":
            s = np.maximum(self.stds[k, None], 1e-300)
            out = special.ndtr((x - self.means[k, None]) / s)
            point = self.stds[k] == 0
            if point.any():
                out[point] = (x[point] >= self.means[k[point], None]).astype(float)
            return out
        return quantile_rows_cdf(self.quantiles[k], x)

    def to_quantile(self, q: int = 256, tail: float = 1e-4) -> ConditionalTable:
        """This table with every bin as a quantile row (Gaussian tails cut at ``tail``)."""
        if self.kind == "quantile":
            return self
        p = probability_grid(q)
        z = special.ndtri(np.clip(p, tail, 1 - tail))
        rows = self.means[:, None] + self.stds[:, None] * z[None, :]
        return ConditionalTable(self.edges, "quantile", quantiles=rows, counts=self.counts)

    def scaled(self, factor: float) -> ConditionalTable:
        """The same table with conductances (edges and changes) multiplied by ``factor``."""
        if factor == 1.0:
            return self
        if self.kind == "gaussian":
            return ConditionalTable(self.edges * factor, "gaussian", means=self.means * factor,
                                    stds=self.stds * factor, counts=self.counts)
        return ConditionalTable(self.edges * factor, "quantile",
                                quantiles=self.quantiles * factor, counts=self.counts)

    def to_dict(self) -> dict:
        d = {"edges": self.edges.tolist(), "kind": self.kind}
        if self.kind == "gaussian":
            d["mean"] = self.means.tolist()
            d["std"] = self.stds.tolist()
        else:
            d["quantiles"] = self.quantiles.tolist()
        if self.counts is not None:
            d["counts"] = np.asarray(self.counts).astype(int).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ConditionalTable:
        return cls(np.asarray(d["edges"]), d["kind"], quantiles=d.get("quantiles"),
                   means=d.get("mean"), stds=d.get("std"),
                   counts=None if d.get("counts") is None else np.asarray(d["counts"]))


def _quantile_moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and std of piecewise-linear quantile functions on a uniform grid."""
    a, b = rows[:, :-1], rows[:, 1:]
    mean = ((a + b) / 2).mean(axis=1)
    second = ((a * a + a * b + b * b) / 3).mean(axis=1)
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0))


def quantile_rows_cdf(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CDF of piecewise-linear quantile rows (n, Q+1) at points x (n, n_x); right-continuous."""
    q = rows.shape[1] - 1
    rt = torch.tensor(rows)
    xt = torch.tensor(np.ascontiguousarray(x))
    j = torch.searchsorted(rt, xt, right=True).numpy()  # knots <= x
    jj = np.clip(j, 1, q)
    lo = np.take_along_axis(rows, jj - 1, axis=1)
    hi = np.take_along_axis(rows, jj, axis=1)
    width = hi - lo
    frac = np.where(width > 0, (x - lo) / np.where(width > 0, width, 1.0), 1.0)
    out = ((jj - 1) + np.clip(frac, 0.0, 1.0)) / q
    out = np.where(j == 0, 0.0, out)
    return np.where(j > q, 1.0, out)


@dataclass
class JumpTable(DeviceModel):
    """A data-driven device model: one :class:`ConditionalTable` per polarity."""

    tables: dict[str, ConditionalTable]
    g_min: float
    g_max: float
    unit: str = "S"
    metadata: dict = field(default_factory=dict)
    name: str = "jump table"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.g_min) and np.isfinite(self.g_max)):
            raise MemsimError(f"conductance range [{self.g_min:g}, {self.g_max:g}] is not "
                              "finite")
        if not self.g_max > self.g_min:
            raise MemsimError(f"conductance range [{self.g_min:g}, {self.g_max:g}] is empty")
        for pol in POLARITIES:
            if pol not in self.tables:
                raise MemsimError(f"jump table lacks the {pol} polarity")

    def quantile(self, polarity, g, p):
        return self.tables[polarity].quantile(g, p)

    def cdf(self, polarity, g, x):
        return self.tables[polarity].cdf(g, x)

    def mean(self, polarity, g):
        t = self.tables[polarity]
        return t.means[t.bin_of(g)]

    def std(self, polarity, g):
        t = self.tables[polarity]
        return t.stds[t.bin_of(g)]

    def sample_dg(self, polarity, g, rng):
        return self.tables[polarity].sample(np.asarray(g, dtype=float), rng)
