"""Smooth fits: the dG distribution at each G estimated from the points nearby, weighted by a
Gaussian kernel over G, with the bandwidth and the shape chosen by cross-validated CRPS.

Two shapes:

* ``local``: the kernel-weighted empirical distribution of the changes themselves. It keeps
  discrete or multi-modal changes as they are (an ENODe cell's whole-step changes stay whole
  steps) and is what binning becomes when bins slide and overlap.
* ``location-scale``: changes standardised by a kernel-smoothed mean and spread profile,
  ``z = (dG - m(G)) / s(G)``; the distribution at G is ``m(G) + s(G) z`` with ``z`` weighted by
  the same kernel. The profiles carry the trend across G, so wider kernels (more points per
  estimate) cost no trend bias; the residual shape stays whatever the data show (skewed,
  heavy-tailed, truncated near the range's ends).

Every estimate is a convex combination of observed changes (location-scale rows are also
clipped to the observed ΔG range), so a table cannot reach values the data never showed, and
rows far from any point fall back to the nearest points instead of extrapolating. Like
binning, the smooth model learns the changes Algorithm-2 data can show (those that keep G in
range). It is tabulated on a fine uniform grid of bins so that it samples like any table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..metrics.scoring import table_crps
from ..models.table import ConditionalTable, JumpTable, probability_grid
from .base import FitMethod, FitOutput, at_least_2, data_range, fit_metadata
from .cv import check_cv_points, fold_labels

SHAPES = ("local", "location-scale")
BANDWIDTHS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)  # kernel sd / G range
PROFILE_GRID = 512  # resolution of the mean and spread profiles
CV_Q = 32  # probability-grid resolution while scoring candidates


REACH = 6.0  # kernel sds beyond which weights (< 1e-8) are dropped


class Windows:
    """Gaussian kernel weights over normalised G, kept only within REACH bandwidths of each
    centre: (M, W) indices into the points (sorted by G) and their weights, W the widest
    window. Cost grows like M x W, about REACH x 2 x n x bandwidth x M, so the many narrow
    kernels a search tries cost no more than a few wide ones.

    Each row's weights are relative to its nearest point, and a window always reaches its
    nearest point: a centre far from all data weights the nearest points instead of
    underflowing to nothing, so estimates are held constant beyond the data, never
    extrapolated."""

    def __init__(self, centres: np.ndarray, xs: np.ndarray, bandwidth: float):
        n = len(xs)
        pos = np.searchsorted(xs, centres)
        near = np.minimum(np.abs(xs[np.clip(pos - 1, 0, n - 1)] - centres),
                          np.abs(xs[np.clip(pos, 0, n - 1)] - centres))
        reach = near + REACH * bandwidth
        lo = np.searchsorted(xs, centres - reach, side="left")
        hi = np.searchsorted(xs, centres + reach, side="right")
        width = int(max(1, (hi - lo).max()))
        idx = lo[:, None] + np.arange(width)[None, :]
        self.lo, self.hi, self.n = lo, hi, n
        self.valid = idx < hi[:, None]
        self.idx = np.minimum(idx, n - 1)
        d2 = ((xs[self.idx] - centres[:, None]) / bandwidth) ** 2
        d2 = np.where(self.valid, d2, np.inf)
        self.w = np.exp(-0.5 * (d2 - d2.min(axis=1, keepdims=True)))

    def average(self, values: np.ndarray) -> np.ndarray:
        """Kernel-weighted mean of ``values`` (one per point, in G order) at each centre."""
        return np.sum(self.w * values[self.idx], axis=1) / np.sum(self.w, axis=1)

    def quantile_rows(self, values: np.ndarray, q: int) -> np.ndarray:
        """Quantile rows (M, q+1) of the kernel-weighted ``values`` at each centre."""
        if 4 * self.idx.shape[1] > self.n:  # wide windows: one sort of all values is cheaper
            cols = np.arange(self.n)[None, :]
            inside = (cols >= self.lo[:, None]) & (cols < self.hi[:, None])
            full = np.zeros(inside.shape)
            full[inside] = self.w[self.valid]  # both row-major, in G order
            order = np.argsort(values, kind="stable")
            return weighted_quantile_rows(values[order], full[:, order], q)
        v = np.where(self.valid, values[self.idx], np.inf)
        order = np.argsort(v, axis=1, kind="stable")
        v = np.take_along_axis(v, order, axis=1)
        w = np.take_along_axis(self.w, order, axis=1)
        return weighted_quantile_rows(np.where(np.isfinite(v), v, 0.0), w, q)


def weighted_quantile_rows(values: np.ndarray, weights: np.ndarray, q: int) -> np.ndarray:
    """Quantile rows (M, q+1) of weighted samples: ``values`` ascending along each row, (n,)
    shared by all rows or (M, n), with weights (M, n) in the same order. Linear between
    midpoint plotting positions, ends held at the smallest and largest value of positive
    weight: the weighted analogue of binning's empirical rows."""
    values = np.broadcast_to(values, weights.shape)
    cum = np.cumsum(weights, axis=1, dtype=np.float64)
    pos = (cum - 0.5 * weights) / cum[:, -1:]  # nondecreasing, zero weights included
    p = probability_grid(q)
    j = torch.searchsorted(torch.from_numpy(np.ascontiguousarray(pos)),
                           torch.from_numpy(np.broadcast_to(p, (len(pos), len(p))).copy())
                           ).numpy()
    n = values.shape[1]
    first = np.argmax(weights > 0, axis=1)[:, None]
    last = n - 1 - np.argmax(weights[:, ::-1] > 0, axis=1)[:, None]
    lo, hi = np.clip(j - 1, first, last), np.clip(j, first, last)
    f_lo, f_hi = np.take_along_axis(pos, lo, 1), np.take_along_axis(pos, hi, 1)
    v_lo, v_hi = np.take_along_axis(values, lo, 1), np.take_along_axis(values, hi, 1)
    gap = f_hi - f_lo
    frac = np.where(gap > 0, (p[None, :] - f_lo) / np.where(gap > 0, gap, 1.0), 0.0)
    return v_lo + np.clip(frac, 0.0, 1.0) * (v_hi - v_lo)


def _profiles(xs: np.ndarray, y: np.ndarray, bandwidth: float):
    """Kernel-smoothed mean and spread of y over sorted xs, on a grid a few points per
    bandwidth fine (for np.interp)."""
    size = int(np.clip(np.ceil(8 / bandwidth), 64, PROFILE_GRID))
    grid = (np.arange(size) + 0.5) / size
    win = Windows(grid, xs, bandwidth)
    mean = win.average(y)
    resid = y - np.interp(xs, grid, mean)
    spread = np.sqrt(win.average(resid * resid))
    floor = 1e-6 * (float(np.std(y)) or 1.0)
    return grid, mean, np.maximum(spread, floor)


def conditional_rows(x: np.ndarray, y: np.ndarray, centres: np.ndarray, bandwidth: float,
                     shape: str, q: int) -> np.ndarray:
    """Quantile rows of the dG distribution at each normalised G in ``centres``."""
    if shape not in SHAPES:
        raise MemsimError(f"unknown smooth shape {shape!r}; use one of {', '.join(SHAPES)}")
    order = np.argsort(x, kind="stable")
    xs, y = x[order], y[order]
    win = Windows(centres, xs, bandwidth)
    if shape == "local":
        return win.quantile_rows(y, q)
    grid, mean, spread = _profiles(xs, y, bandwidth)
    z = (y - np.interp(xs, grid, mean)) / np.interp(xs, grid, spread)
    rows = win.quantile_rows(z, q)
    at = np.interp(centres, grid, mean)[:, None], np.interp(centres, grid, spread)[:, None]
    return np.clip(at[0] + at[1] * rows, y.min(), y.max())


def smooth_table(g, dg, lo: float, hi: float, bandwidth: float, shape: str, bins: int,
                 q: int) -> ConditionalTable:
    """A smooth fit of one polarity tabulated on ``bins`` equal-width bins over [lo, hi]."""
    edges = np.linspace(lo, hi, bins + 1)
    centres = (np.arange(bins) + 0.5) / bins
    rows = conditional_rows((g - lo) / (hi - lo), dg, centres, bandwidth, shape, q)
    return ConditionalTable(edges, "quantile", quantiles=rows)


def cv_crps_smooth(g, dg, labels, bandwidth: float, shape: str, g_range, bins: int) -> float:
    """Mean held-out CRPS of a smooth setting over the folds in ``labels``. Scored on a grid
    of at most ``bins`` bins, a few per bandwidth (finer grids change nothing a wide kernel
    can show, and cost time in every trial of a search)."""
    lo, hi = g_range
    bins = int(np.clip(np.ceil(4 / bandwidth), 32, bins))
    total = 0.0
    for f in range(labels.max() + 1):
        train = labels != f
        table = smooth_table(g[train], dg[train], lo, hi, bandwidth, shape, bins, CV_Q)
        total += table_crps(table, g[~train], dg[~train]).sum()
    return total / len(g)


@dataclass
class SmoothSettings:
    folds: int = 5
    bandwidths: tuple[float, ...] = BANDWIDTHS  # candidate kernel sds, fractions of the range
    shape: str = "auto"  # local, location-scale, or auto (chosen by CV)
    table_bins: int = 256
    q: int = 128


def fit_smooth(data: PulseData, settings: SmoothSettings | None = None, seed: int = 0,
               g_range=None) -> tuple[JumpTable, list[dict]]:
    """Smooth fit per polarity; returns (table, CV records)."""
    s = settings or SmoothSettings()
    if s.shape not in ("auto", *SHAPES):
        raise MemsimError(f"smooth shape must be auto or one of {', '.join(SHAPES)}, "
                          f"not {s.shape!r}")
    lo, hi = data_range(data, g_range)
    shapes = SHAPES if s.shape == "auto" else (s.shape,)
    tables, records, chosen = {}, [], {}
    for pi, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        check_cv_points(len(pts), s.folds, pol, "a smooth fit")
        labels = fold_labels(len(pts), s.folds, seed, pts.device, key=pi)
        best = None
        for shape in shapes:
            for h in s.bandwidths:
                score = cv_crps_smooth(pts.g, pts.dg, labels, h, shape, (lo, hi), s.table_bins)
                records.append({"polarity": pol, "shape": shape, "bandwidth": h,
                                "cv_crps": score})
                if best is None or score < best[0]:
                    best = (score, shape, h)
        score, shape, h = best
        chosen[pol] = {"shape": shape, "bandwidth": h, "cv_crps": float(score)}
        tables[pol] = smooth_table(pts.g, pts.dg, lo, hi, h, shape, s.table_bins, s.q)
    meta = fit_metadata(data, "smooth", {"folds": s.folds, "bandwidths": list(s.bandwidths),
                                      "shape": s.shape, "table_bins": s.table_bins,
                                      "chosen": chosen}, seed)
    return JumpTable(tables, lo, hi, data.unit, meta, name="smooth"), records


class Smooth(FitMethod):
    name = "smooth"
    Settings = SmoothSettings

    @classmethod
    def from_spec(cls, sec, base=None) -> Smooth:
        d = SmoothSettings()
        bandwidths = tuple(float(v) for v in sec.number_list("bandwidths", list(d.bandwidths),
                                                             positive=True))
        if max(bandwidths) > 1:
            raise sec.error("bandwidths", "must be fractions of the G range, in (0, 1]")
        return cls(SmoothSettings(
            folds=sec.take("folds", int, d.folds, **at_least_2),
            bandwidths=bandwidths,
            shape=sec.take("shape", str, d.shape, choices=("auto", *SHAPES)),
            table_bins=sec.take("table_bins", int, d.table_bins, **at_least_2),
            q=sec.take("q", int, d.q, **at_least_2)))

    def to_doc(self) -> dict:
        doc = super().to_doc()
        doc["bandwidths"] = list(doc["bandwidths"])
        return doc

    def min_points(self) -> int:
        return 4 * self.settings.folds

    def check_points(self, n, polarity, where=None) -> None:
        check_cv_points(n, self.settings.folds, polarity, "a smooth fit")

    def describe_need(self) -> str:
        return f"{self.settings.folds}-fold cross-validation"

    def estimate(self, data, *, seed=0, g_range=None) -> FitOutput:
        return FitOutput(*fit_smooth(data, self.settings, seed, g_range))
