"""Proper scoring rules for one-pulse distributions: the continuous ranked probability score
(CRPS; lower is better). Fitting selects models by cross-validated CRPS; metrics report it on
held-out points."""

from __future__ import annotations

import numpy as np
import torch
from scipy import special

from ..models.base import DeviceModel
from ..models.table import JumpTable

SQRT_PI = np.sqrt(np.pi)


def crps_gaussian(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of Normal(mu, sigma^2) at observations y."""
    sigma = np.maximum(sigma, 1e-300)
    z = (y - mu) / sigma
    # a (near) point mass: z * z overflows to inf and exp(-inf) = 0, the right limit |y - mu|
    with np.errstate(over="ignore"):
        return sigma * (z * (2 * special.ndtr(z) - 1) + 2 * np.exp(-0.5 * z * z) /
                        np.sqrt(2 * np.pi) - 1 / SQRT_PI)


def _quantile_integrals(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For piecewise-linear quantile rows (K, Q+1) on a uniform grid: the running integral
    C[k, m] = int_0^{p_m} Q_k(p) dp, and A[k] = 2 int_0^1 p Q_k(p) dp."""
    q = rows.shape[1] - 1
    p = np.linspace(0, 1, q + 1)
    a, b = rows[:, :-1], rows[:, 1:]
    seg = (a + b) / (2 * q)
    c = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(seg, axis=1)], axis=1)
    pm = (p[:-1] + p[1:]) / 2
    big_a = 2 * np.sum((p[:-1] * a + 4 * pm * (a + b) / 2 + p[1:] * b) / (6 * q), axis=1)
    return c, big_a


def crps_quantile_rows(rows: np.ndarray, y: np.ndarray,
                       row_of: np.ndarray | None = None) -> np.ndarray:
    """Exact CRPS of piecewise-linear quantile functions on a uniform grid, at y (n,).

    ``rows`` is (n, Q+1), one row per observation, or (K, Q+1) with ``row_of`` (n,) naming
    each observation's row. Uses CRPS(y) = 2 (I(1) - I(p*)) - 2 y (1 - p*) - A + y, where
    p* = F(y), I(p) = int_0^p Q and A = 2 int_0^1 p Q(p) dp: no per-segment sums per point.
    """
    y = np.asarray(y, dtype=float)
    q = rows.shape[1] - 1
    c, big_a = _quantile_integrals(rows)
    if row_of is None:
        row_of = np.arange(len(y))
    knots = rows[row_of]
    j = torch.searchsorted(torch.from_numpy(np.ascontiguousarray(knots)),
                           torch.from_numpy(y[:, None].copy()), right=True).numpy()[:, 0]
    m = np.clip(j - 1, 0, q - 1)
    r = np.arange(len(y))
    q0, q1 = knots[r, m], knots[r, m + 1]
    width = q1 - q0
    frac = np.where(width > 0, (y - q0) / np.where(width > 0, width, 1.0), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    pstar = (m + frac) / q
    integral = c[row_of, m] + (frac / q) * (q0 + np.clip(y, q0, q1)) / 2
    below, above = j == 0, j > q
    pstar = np.where(below, 0.0, np.where(above, 1.0, pstar))
    integral = np.where(below, 0.0, np.where(above, c[row_of, -1], integral))
    total = c[row_of, -1]
    return 2 * (total - integral) - 2 * y * (1 - pstar) - big_a[row_of] + y


def table_crps(table, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of a :class:`~memsim.models.ConditionalTable` at observed (g, dg)."""
    k = table.bin_of(g)
    if table.kind == "gaussian":
        return crps_gaussian(y, table.means[k], table.stds[k])
    return crps_quantile_rows(table.quantiles, y, k)


def crps(model: DeviceModel, polarity: str, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of ``model``'s one-pulse distribution at each observed (g, dg)."""
    g = np.asarray(g, dtype=float)
    y = np.asarray(y, dtype=float)
    if isinstance(model, JumpTable):
        return table_crps(model.tables[polarity], g, y)
    if hasattr(model, "stds"):  # synthetic Gaussian device
        return crps_gaussian(y, model.mean(polarity, g), model.std(polarity, g))
    p = np.linspace(0, 1, 257)
    return crps_quantile_rows(model.quantile(polarity, g, np.clip(p, 1e-4, 1 - 1e-4)), y)

