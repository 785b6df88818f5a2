"""Plain binning: K bins over G (equal-width or equal-count edges); per bin the empirical dG
distribution (quantiles, linear between order statistics) or a Gaussian (mean, std). A bin
with fewer than two points borrows the distribution of the nearest bin that has them.

``bins: auto`` (the default) adapts K to the data: the K of a geometric grid with the lowest
cross-validated CRPS, so a few hundred points get a few wide bins and many points many."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..metrics.scoring import table_crps
from ..models.table import ConditionalTable, JumpTable, probability_grid
from .base import FitMethod, FitOutput, at_least_2, data_range, fit_metadata
from .cv import check_cv_points, fold_labels

EDGE_RULES = ("width", "count")
STATS = ("empirical", "gaussian")
MIN_PER_BIN = 2


def bin_edges(g: np.ndarray, k: int, rule: str, lo: float, hi: float) -> np.ndarray:
    if rule == "width":
        return np.linspace(lo, hi, k + 1)
    if rule == "count":
        inner = np.quantile(g, np.linspace(0, 1, k + 1)[1:-1])
        edges = np.unique(np.concatenate([[lo], inner, [hi]]))
        return edges[(edges >= lo) & (edges <= hi)]
    raise MemsimError(f"unknown edge rule {rule!r}; use one of {', '.join(EDGE_RULES)}")


def _nearest_valid(valid: np.ndarray) -> np.ndarray:
    """For each bin, the index of the nearest bin flagged valid."""
    ok = np.flatnonzero(valid)
    k = np.arange(len(valid))
    pos = np.clip(np.searchsorted(ok, k), 1, len(ok) - 1) if len(ok) > 1 else np.zeros_like(k)
    if len(ok) == 1:
        return np.full(len(valid), ok[0])
    left, right = ok[pos - 1], ok[pos]
    return np.where(np.abs(k - left) <= np.abs(right - k), left, right)


def fit_bins(g: np.ndarray, dg: np.ndarray, edges: np.ndarray, stat: str,
             q: int = 128) -> ConditionalTable:
    """Per-bin dG distributions for given edges (vectorized over bins)."""
    k = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, g, side="right") - 1, 0, k - 1)
    counts = np.bincount(idx, minlength=k)
    valid = counts >= MIN_PER_BIN
    if not valid.any():
        raise MemsimError(f"too few points for {k} bins: no bin holds {MIN_PER_BIN} points")
    src = _nearest_valid(valid)
    if stat == "gaussian":
        sums = np.bincount(idx, weights=dg, minlength=k)
        mean = sums / np.maximum(counts, 1)
        dev = dg - mean[idx]
        var = np.bincount(idx, weights=dev * dev, minlength=k) / np.maximum(counts - 1, 1)
        return ConditionalTable(edges, "gaussian", means=mean[src], stds=np.sqrt(var)[src],
                                counts=counts)
    if stat != "empirical":
        raise MemsimError(f"unknown per-bin statistic {stat!r}; use one of {', '.join(STATS)}")
    order = np.lexsort((dg, idx))
    v = dg[order]
    starts = np.cumsum(counts) - counts
    p = probability_grid(q)
    n_k = np.maximum(counts, 1)[:, None]
    pos = starts[:, None] + p[None, :] * (n_k - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, starts[:, None] + n_k - 1)
    frac = pos - lo
    lo = np.clip(lo, 0, len(v) - 1)
    hi = np.clip(hi, 0, len(v) - 1)
    rows = v[lo] + frac * (v[hi] - v[lo])
    return ConditionalTable(edges, "quantile", quantiles=rows[src], counts=counts)


def check_bins(n: int, bins: int, polarity: str, where: str | None = None) -> None:
    if bins < 1:
        raise MemsimError(f"number of bins must be at least 1, not {bins}", where)
    if n < MIN_PER_BIN * bins:
        raise MemsimError(f"too few points for the requested bins: {polarity} has {n} points, "
                          f"{bins} bins need at least {MIN_PER_BIN * bins}", where)


def fit_binning_polarity(g, dg, bins: int, edges: str = "width", stat: str = "empirical",
                         g_range: tuple[float, float] | None = None,
                         q: int = 128) -> ConditionalTable:
    lo, hi = g_range if g_range is not None else (float(g.min()), float(g.max()))
    return fit_bins(g, dg, bin_edges(g, bins, edges, lo, hi), stat, q)



def fit_binning(data: PulseData, bins: int = 32, edges: str = "width", stat: str = "empirical",
                g_range=None, q: int = 128) -> JumpTable:
    """A jump table by plain binning with the same settings for both polarities."""
    lo, hi = data_range(data, g_range)
    tables = {}
    for pol in POLARITIES:
        pts = data.points[pol]
        check_bins(len(pts), bins, pol)
        tables[pol] = fit_binning_polarity(pts.g, pts.dg, bins, edges, stat, (lo, hi), q)
    meta = fit_metadata(data, "binning", {"bins": bins, "edges": edges, "stat": stat, "q": q},
                        None)
    return JumpTable(tables, lo, hi, data.unit, meta, name="binning")


def cv_crps_binning(g, dg, labels, bins, edges, stat, g_range, q=64) -> float:
    """Mean held-out CRPS of a binning setting over the folds in ``labels``."""
    total = 0.0
    for f in range(labels.max() + 1):
        train = labels != f
        table = fit_binning_polarity(g[train], dg[train], bins, edges, stat, g_range, q)
        total += table_crps(table, g[~train], dg[~train]).sum()
    return total / len(g)


def max_bins_for(n_train: int, cap: int = 256) -> int:
    """The most bins ``n_train`` points can fill with a few points each."""
    return int(max(2, min(cap, n_train // (2 * MIN_PER_BIN))))


def choose_bins(g, dg, edges: str, stat: str, g_range, folds: int, seed: int,
                groups=None, key: int = 0) -> tuple[int, list[dict]]:
    """The bin count of a geometric grid with the lowest cross-validated CRPS."""
    labels = fold_labels(len(g), folds, seed, groups, key=key)
    top = max_bins_for(len(g) - len(g) // folds)
    grid = np.unique(np.round(np.geomspace(1, top, 16)).astype(int))
    scores = [cv_crps_binning(g, dg, labels, int(k), edges, stat, g_range) for k in grid]
    records = [{"bins": int(k), "cv_crps": float(c)} for k, c in zip(grid, scores, strict=True)]
    return int(grid[int(np.argmin(scores))]), records


@dataclass
class BinningSettings:
    bins: int | str = "auto"  # a count, or auto: chosen by cross-validation
    edges: str = "width"
    stat: str = "empirical"
    q: int = 128  # probability-grid resolution of empirical bins
    folds: int = 5  # cross-validation folds of bins: auto


class Binning(FitMethod):
    name = "binning"
    Settings = BinningSettings

    @classmethod
    def from_spec(cls, sec, base=None) -> Binning:
        d = BinningSettings()
        bins = sec.take("bins", (int, str), d.bins,
                        check=lambda v: v == "auto" or (isinstance(v, int) and v >= 1),
                        check_msg="must be a count >= 1 or auto")
        return cls(BinningSettings(
            bins=bins,
            edges=sec.take("edges", str, d.edges, choices=EDGE_RULES),
            stat=sec.take("stat", str, d.stat, choices=STATS),
            q=sec.take("q", int, d.q, **at_least_2),
            folds=sec.take("folds", int, d.folds, **at_least_2)))

    @property
    def auto(self) -> bool:
        return self.settings.bins == "auto"

    def min_points(self) -> int:
        return 4 * self.settings.folds if self.auto else MIN_PER_BIN * self.settings.bins

    def describe_need(self) -> str:
        return f"{self.settings.folds}-fold cross-validation" if self.auto else (
            f"{self.settings.bins} bins")

    def estimate(self, data, *, seed=0, g_range=None) -> FitOutput:
        s = self.settings
        if not self.auto:
            return FitOutput(fit_binning(data, s.bins, s.edges, s.stat, g_range, s.q))
        lo, hi = data_range(data, g_range)
        tables, records, chosen = {}, [], {}
        for pi, pol in enumerate(POLARITIES):
            pts = data.points[pol]
            self.check_points(len(pts), pol)
            k, recs = choose_bins(pts.g, pts.dg, s.edges, s.stat, (lo, hi), s.folds, seed,
                                  pts.device, key=pi)
            chosen[pol] = k
            records += [{"polarity": pol, **r} for r in recs]
            tables[pol] = fit_binning_polarity(pts.g, pts.dg, k, s.edges, s.stat, (lo, hi), s.q)
        meta = fit_metadata(data, "binning", {"bins": "auto", "chosen": chosen, "edges": s.edges,
                                              "stat": s.stat, "q": s.q, "folds": s.folds}, seed)
        return FitOutput(JumpTable(tables, lo, hi, data.unit, meta, name="binning"), records)

    def check_points(self, n, polarity, where=None) -> None:
        if self.auto:
            check_cv_points(n, self.settings.folds, polarity, "bins: auto")
        else:
            check_bins(n, self.settings.bins, polarity, where)
