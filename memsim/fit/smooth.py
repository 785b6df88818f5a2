"""Smooth fits: the dG distribution at each G estimated from the points nearby, weighted by a
Gaussian kernel over G, with the bandwidth and the shape chosen by cross-validated CRPS.

Three shapes:

* ``local``: the kernel-weighted empirical distribution of the changes themselves. It keeps
  discrete or multi-modal changes as they are (an ENODe cell's whole-step changes stay whole
  steps) and is what binning becomes when bins slide and overlap.
* ``location-scale``: changes standardised by a kernel-smoothed mean and spread profile,
  ``z = (dG - m(G)) / s(G)``; the distribution at G is ``m(G) + s(G) z`` with ``z`` weighted by
  the same kernel. The profiles carry the trend across G, so wider kernels (more points per
  estimate) cost no trend bias; the residual shape stays whatever the data show (skewed,
  heavy-tailed, truncated near the range's ends).
* ``lattice``, offered only when the changes are quantised (most of them repeat on whole
  multiples of one step, as readings from a coarse readout or a LUT stored in steps do): an
  even mixture of the kernel-weighted changes, each at its own value, and a discretized
  normal on the steps whose mean follows a local-quadratic profile and whose spread a
  local-linear one, both LATTICE_PROFILE times wider than the kernel. The parametric half
  borrows strength along G where the empirical half is noisy, and the empirical half keeps
  the shapes a normal misses, and the changes off the steps (a table's edge column can hold
  such) where the data have them. Its two constants were chosen by their error against the
  truth on one benchmark cell (ENODe at N = 3000, `memsim bench fidelity`), so that cell's
  figure flatters the shape a little; its bandwidth is chosen by cross-validation like any
  other.

Any shape can also be fitted apart at jumps (``jumps``): where the mean change steps along G
(:func:`jump_cuts` proposes where), each piece between cuts is fitted from its own points, so
no kernel smears a discontinuity over its width, and the cuts become bin edges of the table.
Cross-validation decides, as for shape and bandwidth, whether the pieces fit better apart.

Every estimate is a convex combination of observed changes (location-scale rows are also
clipped to the observed ΔG range; lattice rows take only observed changes and steps between
the smallest and the largest of them), so a table cannot reach values the data never showed,
and rows far from any point fall back to the nearest points instead of extrapolating. Like
binning, the smooth model learns the changes Algorithm-2 data can show (those that keep G in
range). It is tabulated on a fine uniform grid of bins (plus any cuts) so that it samples
like any table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import special

from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..metrics.scoring import table_crps
from ..models.table import ConditionalTable, JumpTable, probability_grid
from .base import FitMethod, FitOutput, at_least_2, data_range, fit_metadata
from .cv import check_cv_points, fold_labels

SHAPES = ("local", "location-scale", "lattice")
CONTINUOUS_SHAPES = SHAPES[:2]  # the shapes every data set is offered
LATTICE_MIX = 0.5  # weight of the kernel-weighted changes in the lattice shape
LATTICE_PROFILE = 5.0  # the lattice shape's profile bandwidth, in kernel bandwidths
LATTICE_SHARE = 0.75  # share of changes that must repeat on the steps to call data quantised
PROFILE_BINS = 1024  # bins over G behind the lattice shape's profiles
MAX_LEVELS = 512  # quantised data with more steps than this are treated as continuous
BANDWIDTHS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)  # kernel sd / G range
PROFILE_GRID = 512  # resolution of the mean and spread profiles
CV_Q = 32  # probability-grid resolution while scoring candidates


REACH = 6.0  # kernel sds beyond which weights (< 1e-8) are dropped
# a candidate jump: the mean changes by this many standard errors across a split (4 was
# chosen over 5 by the error against the truth on the ENODe N = 3000 benchmark cell)
JUMP_Z = 4.0
JUMP_MIN_SIDE = 8  # points a split needs on each side to be tested
JUMP_TREND = 0.1  # bandwidth of the local-linear trend a jump is measured against


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


def _distinct_values(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``x`` (ascending) and how often each occurs, values within a
    billionth of the largest counting as one (a table's steps, stored in one unit and read in
    another, differ in their last bits) and represented by their median."""
    x = np.sort(np.asarray(x, dtype=float))
    label = np.concatenate([[0], np.cumsum(np.diff(x) > 1e-9 * (np.max(np.abs(x)) or 1.0))])
    counts = np.bincount(label)
    return x[np.searchsorted(label, np.arange(len(counts))) + counts // 2], counts


def lattice_step(dg: np.ndarray) -> float | None:
    """The step of quantised changes, or None for continuous ones. The step is the smallest
    spacing of the values that recur often (in at least one change in a thousand, and twice);
    those values must be whole multiples of it (at most MAX_LEVELS across the range), and at
    least LATTICE_SHARE of all changes must lie on its multiples (:func:`_distinct_values`
    says which values are one). Continuous data have no recurring values, though among very
    many a few may coincide."""
    x = np.asarray(dg, dtype=float)
    values, counts = _distinct_values(x)
    frequent = values[counts >= max(2, len(x) // 1000)]
    if len(frequent) < 2:
        return None
    step = float(np.min(np.diff(frequent)))
    k = frequent / step
    if np.max(np.abs(k - np.round(k))) > 1e-3 or (values[-1] - values[0]) / step > MAX_LEVELS:
        return None
    on = np.abs(x / step - np.round(x / step)) <= 1e-3
    return step if on.mean() >= LATTICE_SHARE else None


def shapes_for(dg: np.ndarray) -> tuple[str, ...]:
    """The smooth shapes a data set's changes are offered."""
    return SHAPES if lattice_step(dg) is not None else CONTINUOUS_SHAPES


def _local_poly(x: np.ndarray, weight: np.ndarray, y: np.ndarray, centres: np.ndarray,
                bandwidth: float, degree: int) -> np.ndarray:
    """Kernel-weighted local polynomial fit (its intercept) at each centre of values ``y`` at
    ``x`` carrying ``weight`` points each; weights are relative to each centre's nearest
    point, so no centre is left without any. A nearly singular fit (too few distinct x in
    reach) falls back to the local mean."""
    d = (x[None, :] - centres[:, None]) / bandwidth
    w = weight * np.exp(-0.5 * (d * d - np.min(d * d, axis=1, keepdims=True)))
    moments, rhs, wd = [w.sum(axis=1)], [w @ y], w
    for j in range(1, 2 * degree + 1):
        wd = wd * d
        moments.append(wd.sum(axis=1))
        if j <= degree:
            rhs.append(wd @ y)
    moments, rhs = np.stack(moments, axis=1), np.stack(rhs, axis=1)
    a = moments[:, np.add.outer(np.arange(degree + 1), np.arange(degree + 1))]
    a = a / moments[:, :1, None]
    singular = np.abs(np.linalg.det(a)) < 1e-6
    a[singular] = np.eye(degree + 1)  # replaced below; keeps the solve well posed
    fit = np.linalg.solve(a, (rhs / moments[:, :1])[..., None])[:, 0, 0]
    return np.where(singular, rhs[:, 0] / moments[:, 0], fit)


def _lattice_rows(xs: np.ndarray, y: np.ndarray, centres: np.ndarray, bandwidth: float,
                  q: int, step: float) -> np.ndarray:
    """Quantile rows of the lattice shape (see the module docstring); every entry is a change
    the data show: the empirical half's own values, the normal half's steps valued as the
    data show them (:func:`_level_values`)."""
    k = np.round(y / step)
    levels = np.arange(k.min(), k.max() + 1)
    win = Windows(centres, xs, bandwidth)

    # the profiles from the points binned finely over G (binned local regression: the bins
    # are far narrower than the profiles' kernels, and the cost no longer grows with n)
    b = np.minimum((xs * PROFILE_BINS).astype(np.int64), PROFILE_BINS - 1)
    count = np.bincount(b, minlength=PROFILE_BINS)
    keep = count > 0
    count = count[keep]
    xb = np.bincount(b, xs, PROFILE_BINS)[keep] / count
    s1 = np.bincount(b, k, PROFILE_BINS)[keep]
    s2 = np.bincount(b, k * k, PROFILE_BINS)[keep]
    h = min(0.5, LATTICE_PROFILE * bandwidth)
    size = int(np.clip(np.ceil(8 / h), 64, PROFILE_GRID))
    grid = (np.arange(size) + 0.5) / size
    mean = np.clip(_local_poly(xb, count, s1 / count, grid, h, 2), k.min(), k.max())
    mean_b = np.interp(xb, grid, mean)
    resid2 = (s2 - 2 * mean_b * s1) / count + mean_b ** 2  # mean squared residual per bin
    var = _local_poly(xb, count, resid2, grid, h, 1) - 1 / 12  # less the rounding's variance
    m = np.interp(centres, grid, mean)[:, None]
    sd = np.interp(centres, grid, np.sqrt(np.maximum(var, 0.01)))[:, None]
    cdf = special.ndtr((levels[None, :] + 0.5 - m) / sd)
    cdf[:, -1] = 1.0  # the last step takes the upper tail, the first the lower one
    normal = np.diff(cdf, axis=1, prepend=0.0)

    # the mixture over the window's changes (their own values: a change off the steps, as at
    # a range's end, keeps its value) and the steps, sorted per row
    empirical = np.where(win.valid, win.w, 0.0)
    empirical /= empirical.sum(axis=1, keepdims=True)
    steps = np.broadcast_to(_level_values(y, levels, step), (len(centres), len(levels)))
    values = np.concatenate([y[win.idx], steps], axis=1)
    weights = np.concatenate([LATTICE_MIX * empirical, (1 - LATTICE_MIX) * normal], axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    mixture = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)
    p = np.clip(probability_grid(q), 0.5 / q, 1 - 0.5 / q)  # no value of zero mass at the ends
    idx = torch.searchsorted(torch.from_numpy(mixture / mixture[:, -1:]),
                             torch.from_numpy(np.broadcast_to(p, (len(centres), len(p))).copy())
                             ).numpy()
    return np.take_along_axis(values, np.minimum(idx, values.shape[1] - 1), axis=1)


def _level_values(y: np.ndarray, levels: np.ndarray, step: float) -> np.ndarray:
    """The value of each step as the data show it: its most frequent change (of the
    :func:`_distinct_values`), so that a table's steps coincide with the data's to the last
    bit; a step on which no value recurs, its multiple of ``step``."""
    value, counts = _distinct_values(y)
    level = np.round(value / step)
    order = np.lexsort((-counts, level))  # by step, the most frequent value first
    at = np.minimum(np.searchsorted(level[order], levels), len(order) - 1)
    best = order[at]
    use = (level[best] == levels) & (counts[best] > 1)
    return np.where(use, value[best], step * levels)


def jump_cuts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Candidate jumps along G, for cross-validation to accept or not, by binary
    segmentation: the normalised G of the split at which the mean change, less a wide
    local-linear trend, differs most between the sqrt(n) points (at least 16) on either side,
    if by more than JUMP_Z standard errors; then the same within each side, its trend fitted
    anew (a trend fitted across a jump bends toward it and would fake others). A jump is a
    discontinuity a kernel would smear over its width (a measured table's edge column, say).
    The scan is liberal (among thousands of splits, noise alone passes now and then, and a
    steep stretch can pass too), which costs only search time: a fit apart at these cuts is a
    candidate the search scores by cross-validation like any other."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    window = max(2 * JUMP_MIN_SIDE, int(np.sqrt(len(xs))))
    floor = 1e-12 * (float(np.std(ys)) if len(ys) else 1.0) or 1e-12
    return np.asarray(_split(xs, ys, window, floor), dtype=float)


def _split(xs: np.ndarray, y: np.ndarray, m: int, floor: float) -> list[float]:
    """:func:`jump_cuts` of points sorted by G, in ascending order."""
    n = len(xs)
    if n < 2 * JUMP_MIN_SIDE or xs[-1] <= xs[0]:
        return []
    grid = xs[0] + (np.arange(128) + 0.5) / 128 * (xs[-1] - xs[0])
    r = y - np.interp(xs, grid, _local_poly(xs, np.ones(n), y, grid, JUMP_TREND, 1))
    c1 = np.concatenate([[0.0], np.cumsum(r)])
    c2 = np.concatenate([[0.0], np.cumsum(r * r)])
    i = np.arange(JUMP_MIN_SIDE, n - JUMP_MIN_SIDE + 1)  # split before point i
    a, b = np.maximum(i - m, 0), np.minimum(i + m, n)
    left, right = (c1[i] - c1[a]) / (i - a), (c1[b] - c1[i]) / (b - i)
    var_l = np.maximum((c2[i] - c2[a]) / (i - a) - left ** 2, 0.0)
    var_r = np.maximum((c2[b] - c2[i]) / (b - i) - right ** 2, 0.0)
    z = np.abs(right - left) / np.maximum(np.sqrt(var_l / (i - a) + var_r / (b - i)), floor)
    j = int(np.argmax(z))
    if z[j] < JUMP_Z:
        return []
    k = i[j]
    return [*_split(xs[:k], y[:k], m, floor), 0.5 * (xs[k - 1] + xs[k]),
            *_split(xs[k:], y[k:], m, floor)]


def jump_options(g, dg, lo: float, hi: float) -> tuple[bool, ...]:
    """Whether fits apart at jumps are worth offering: only where the data show a jump."""
    return (False, True) if len(jump_cuts((np.asarray(g) - lo) / (hi - lo), dg)) else (False,)


def conditional_rows(x: np.ndarray, y: np.ndarray, centres: np.ndarray, bandwidth: float,
                     shape: str, q: int, step: float | None = None,
                     cuts: np.ndarray | None = None) -> np.ndarray:
    """Quantile rows of the dG distribution at each normalised G in ``centres``; the
    lattice shape needs the data's ``step`` (:func:`lattice_step`). With ``cuts`` (normalised
    G, as :func:`jump_cuts` finds them), each piece between cuts is fitted from its own points
    only, so no kernel smears a jump."""
    if shape not in SHAPES:
        raise MemsimError(f"unknown smooth shape {shape!r}; use one of {', '.join(SHAPES)}")
    if shape == "lattice" and step is None:
        raise MemsimError("the lattice shape needs quantised changes (most of them "
                          "repeating on whole multiples of one step); these are not")
    order = np.argsort(x, kind="stable")
    xs, y = x[order], y[order]
    if cuts is None or len(cuts) == 0:
        return _piece_rows(xs, y, centres, bandwidth, shape, q, step)
    rows = np.empty((len(centres), q + 1))
    piece, at = np.searchsorted(cuts, xs, side="right"), np.searchsorted(cuts, centres,
                                                                          side="right")
    for k in np.unique(at):
        mine = piece == k
        if not mine.any():  # a piece without points (cuts from other data): its neighbour's
            mine = piece == piece[np.argmin(np.abs(piece - k))]
        rows[at == k] = _piece_rows(xs[mine], y[mine], centres[at == k], bandwidth, shape, q,
                                    step)
    return rows


def _piece_rows(xs, y, centres, bandwidth, shape, q, step):
    """:func:`conditional_rows` of points sorted by G, all in one piece."""
    if shape == "lattice":
        return _lattice_rows(xs, y, centres, bandwidth, q, step)
    win = Windows(centres, xs, bandwidth)
    if shape == "local":
        return win.quantile_rows(y, q)
    grid, mean, spread = _profiles(xs, y, bandwidth)
    z = (y - np.interp(xs, grid, mean)) / np.interp(xs, grid, spread)
    rows = win.quantile_rows(z, q)
    at = np.interp(centres, grid, mean)[:, None], np.interp(centres, grid, spread)[:, None]
    return np.clip(at[0] + at[1] * rows, y.min(), y.max())


def smooth_table(g, dg, lo: float, hi: float, bandwidth: float, shape: str, bins: int,
                 q: int, step: float | None = None, jumps: bool = False,
                 cuts: np.ndarray | None = None) -> ConditionalTable:
    """A smooth fit of one polarity tabulated on ``bins`` equal-width bins over [lo, hi]
    (``step``: the changes' quantisation step, found from them when None; ``jumps``: fit
    apart at the jumps :func:`jump_cuts` finds in them, or at ``cuts`` if given, in G
    normalised to [lo, hi])."""
    if shape == "lattice" and step is None:
        step = lattice_step(dg)
    x = (np.asarray(g) - lo) / (hi - lo)
    if not jumps:
        cuts = np.empty(0)
    elif cuts is None:
        cuts = jump_cuts(x, dg)
    # the cuts become bin edges too, so that no bin straddles a jump
    unit = np.union1d(np.linspace(0.0, 1.0, bins + 1), cuts[(cuts > 0) & (cuts < 1)])
    rows = conditional_rows(x, dg, 0.5 * (unit[1:] + unit[:-1]), bandwidth, shape, q, step,
                            cuts)
    return ConditionalTable(lo + unit * (hi - lo), "quantile", quantiles=rows)


def table_cuts(table: ConditionalTable, bins: int) -> list[float]:
    """The G of the cuts a fit apart at jumps added to its ``bins`` equal-width bins (for a
    fit's record)."""
    edges = table.edges
    grid = np.linspace(edges[0], edges[-1], bins + 1)
    off = np.min(np.abs(edges[:, None] - grid[None, :]), axis=1) > 1e-9 * (grid[-1] - grid[0])
    return [float(e) for e in edges[off]]


def fold_cuts(g, dg, labels, g_range) -> list[np.ndarray]:
    """The :func:`jump_cuts` of each fold's training points, found once for all the
    configurations a search scores."""
    lo, hi = g_range
    x = (np.asarray(g) - lo) / (hi - lo)
    return [jump_cuts(x[labels != f], dg[labels != f]) for f in range(labels.max() + 1)]


def cv_crps_smooth(g, dg, labels, bandwidth: float, shape: str, g_range, bins: int,
                   cuts: list[np.ndarray] | None = None) -> float:
    """Mean held-out CRPS of a smooth setting over the folds in ``labels``. Scored on a grid
    of at most ``bins`` bins, a few per bandwidth (finer grids change nothing a wide kernel
    can show, and cost time in every trial of a search). The quantisation step is found once
    from all the points, so every fold's fit uses the same steps. ``cuts``: fit apart at
    jumps, those :func:`fold_cuts` found in each fold's own training points, as a fit finds
    them in its data."""
    lo, hi = g_range
    bins = int(np.clip(np.ceil(4 / bandwidth), 32, bins))
    step = lattice_step(dg) if shape == "lattice" else None
    total = 0.0
    for f in range(labels.max() + 1):
        train = labels != f
        table = smooth_table(g[train], dg[train], lo, hi, bandwidth, shape, bins, CV_Q, step,
                             cuts is not None, None if cuts is None else cuts[f])
        total += table_crps(table, g[~train], dg[~train]).sum()
    return total / len(g)


@dataclass
class SmoothSettings:
    folds: int = 5
    bandwidths: tuple[float, ...] = BANDWIDTHS  # candidate kernel sds, fractions of the range
    shape: str = "auto"  # local, location-scale, lattice, or auto (chosen by CV)
    jumps: str = "auto"  # fit apart at jumps: on, off, or auto (chosen by CV where found)
    table_bins: int = 256
    q: int = 128


def fit_smooth(data: PulseData, settings: SmoothSettings | None = None, seed: int = 0,
               g_range=None) -> tuple[JumpTable, list[dict]]:
    """Smooth fit per polarity; returns (table, CV records)."""
    s = settings or SmoothSettings()
    if s.shape not in ("auto", *SHAPES):
        raise MemsimError(f"smooth shape must be auto or one of {', '.join(SHAPES)}, "
                          f"not {s.shape!r}")
    if s.jumps not in ("auto", "on", "off"):
        raise MemsimError(f"smooth jumps must be auto, on or off, not {s.jumps!r}")
    lo, hi = data_range(data, g_range)
    tables, records, chosen = {}, [], {}
    for pi, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        check_cv_points(len(pts), s.folds, pol, "a smooth fit")
        labels = fold_labels(len(pts), s.folds, seed, pts.device, key=pi)
        if s.shape == "lattice" and lattice_step(pts.dg) is None:
            raise MemsimError(f"smooth shape lattice: the {pol} changes are not quantised "
                              "(most of them would repeat on whole multiples of one step)")
        jump_choices = ({"on": (True,), "off": (False,)}[s.jumps] if s.jumps != "auto"
                        else jump_options(pts.g, pts.dg, lo, hi))
        cuts = fold_cuts(pts.g, pts.dg, labels, (lo, hi)) if True in jump_choices else None
        best = None
        for shape in shapes_for(pts.dg) if s.shape == "auto" else (s.shape,):
            for jumps in jump_choices:
                for h in s.bandwidths:
                    score = cv_crps_smooth(pts.g, pts.dg, labels, h, shape, (lo, hi),
                                           s.table_bins, cuts if jumps else None)
                    records.append({"polarity": pol, "shape": shape, "bandwidth": h,
                                    "jumps": jumps, "cv_crps": score})
                    if best is None or score < best[0]:
                        best = (score, shape, h, jumps)
        score, shape, h, jumps = best
        tables[pol] = smooth_table(pts.g, pts.dg, lo, hi, h, shape, s.table_bins, s.q,
                                   jumps=jumps)
        chosen[pol] = {"shape": shape, "bandwidth": h, "jumps": jumps, "cv_crps": float(score),
                       **({"cuts": table_cuts(tables[pol], s.table_bins)} if jumps else {})}
    meta = fit_metadata(data, "smooth", {"folds": s.folds, "bandwidths": list(s.bandwidths),
                                      "shape": s.shape, "jumps": s.jumps,
                                      "table_bins": s.table_bins,
                                      "chosen": chosen}, seed)
    return JumpTable(tables, lo, hi, data.unit, meta, name="smooth"), records


def _take_jumps(sec, default: str) -> str:
    """``jumps: auto | on | off``; YAML reads a bare on / off as true / false, so those too."""
    value = sec.take("jumps", (str, bool), default,
                     check=lambda v: isinstance(v, bool) or v in ("auto", "on", "off"),
                     check_msg="must be auto, on or off")
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


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
            jumps=_take_jumps(sec, d.jumps),
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
