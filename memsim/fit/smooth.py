"""Smooth models: heteroscedastic regression, mu(G) and log sigma(G) as B-splines fitted by
maximum likelihood, their degrees of freedom and the noise shape (Gaussian, or the empirical
distribution of standardised residuals) chosen by cross-validated CRPS. The smooth model is
tabulated on a fine uniform grid of bins so it samples like any table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special
from scipy.interpolate import BSpline

from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..metrics.scoring import crps_gaussian, crps_quantile_rows
from ..models.table import ConditionalTable, JumpTable, probability_grid
from .base import FitMethod, FitOutput, at_least_2, data_range, fit_metadata
from .cv import check_cv_points, fold_labels

NOISES = ("auto", "gaussian", "empirical")
TRUNCATION = ("auto", "yes", "no")


def spline_basis(x: np.ndarray, df: int) -> np.ndarray:
    """B-spline design matrix on [0, 1] with ``df`` columns (df <= 4: a polynomial)."""
    degree = min(3, df - 1)
    n_inner = df - degree - 1
    inner = np.linspace(0, 1, n_inner + 2)[1:-1]
    knots = np.concatenate([np.zeros(degree + 1), inner, np.ones(degree + 1)])
    x = np.clip(x, 0.0, 1.0)
    return BSpline.design_matrix(x, knots, degree).toarray()


@dataclass
class SmoothFit:
    beta: np.ndarray  # mean coefficients (standardised units)
    gamma: np.ndarray  # log-std coefficients
    df_mean: int
    df_std: int

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = spline_basis(x, self.df_mean) @ self.beta
        sigma = np.exp(np.clip(spline_basis(x, self.df_std) @ self.gamma, -30, 30))
        return mu, sigma


def fit_heteroscedastic(x, y, df_mean: int, df_std: int, ridge: float = 1e-6,
                        polish: bool = True, bounds=None) -> SmoothFit:
    """Maximum-likelihood mu(x), log sigma(x) as B-splines on x in [0, 1]."""
    beta, gamma = _fit_bases(spline_basis(x, df_mean), spline_basis(x, df_std), y, ridge,
                             polish, bounds)
    return SmoothFit(beta, gamma, df_mean, df_std)


def _least_squares(a: np.ndarray, b: np.ndarray, ridge: float = 1e-9) -> np.ndarray:
    """Normal equations with a tiny ridge: B-spline bases are well conditioned."""
    ata = a.T @ a
    ata[np.diag_indices_from(ata)] += ridge * max(1.0, float(np.trace(ata)) / len(ata))
    return np.linalg.solve(ata, a.T @ b)


def _log_mass(alpha: np.ndarray, beta: np.ndarray):
    """log(Phi(beta) - Phi(alpha)) computed in the accurate tail, and the two densities."""
    upper = alpha > 0
    z = np.where(upper, special.ndtr(-alpha) - special.ndtr(-beta),
                 special.ndtr(beta) - special.ndtr(alpha))
    z = np.maximum(z, 1e-300)
    return np.log(z), z


def gaussian_nll(theta, bm, bs, y, bounds=None, ridge: float = 0.0):
    """Negative log-likelihood (and gradient) of y ~ N(bm @ b, exp(bs @ c)^2), theta = (b, c),
    optionally truncated to per-point limits ``bounds`` = (a, b)."""
    df_mean = bm.shape[1]
    b, c = theta[:df_mean], theta[df_mean:]
    ls = np.clip(bs @ c, -30, 30)
    mu = bm @ b
    r = y - mu
    inv = np.exp(-2 * ls)
    val = np.sum(ls + 0.5 * r * r * inv) + ridge * theta @ theta
    d_mu = -r * inv
    d_ls = 1 - r * r * inv
    if bounds is not None:
        sig = np.exp(ls)
        al, be = (bounds[0] - mu) / sig, (bounds[1] - mu) / sig
        logz, z = _log_mass(al, be)
        pa = np.exp(-0.5 * al * al) / np.sqrt(2 * np.pi)
        pb = np.exp(-0.5 * be * be) / np.sqrt(2 * np.pi)
        val += np.sum(logz)
        d_mu = d_mu - (pb - pa) / (sig * z)
        d_ls = d_ls + (al * pa - be * pb) / z
    grad = np.concatenate([bm.T @ d_mu, bs.T @ d_ls]) + 2 * ridge * theta
    return val, grad


def _fit_bases(bm, bs, y, ridge: float = 1e-6, polish: bool = True, bounds=None):
    """Coefficients of mean basis ``bm`` and log-std basis ``bs``.

    Iteratively reweighted least squares gives a close start (cheap enough for the CV grid);
    ``polish`` then maximises the exact Gaussian likelihood with L-BFGS. With ``bounds``
    (per-point limits (a, b) of y) the likelihood is that of a Gaussian truncated to [a, b]:
    data drawn with Algorithm 2 lose the changes that would leave the range, and this
    recovers the untruncated device behaviour instead of the truncated remains."""
    df_mean = bm.shape[1]
    beta = _least_squares(bm, y)
    gamma = np.zeros(bs.shape[1])
    for _ in range(3):
        r = y - bm @ beta
        # E[log |z|] = -0.635 for z ~ N(0, 1): regress log|r| to get log sigma
        gamma = _least_squares(bs, np.log(np.abs(r) + 1e-12) + 0.635)
        sw = np.exp(-np.clip(bs @ gamma, -30, 30))
        beta = _least_squares(bm * sw[:, None], y * sw)
    if not polish:
        return beta, gamma

    def nll(theta):
        return gaussian_nll(theta, bm, bs, y, bounds, ridge)

    start = np.concatenate([beta, gamma])
    res = optimize.minimize(nll, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    theta = res.x if np.isfinite(res.fun) and res.fun <= nll(start)[0] else start
    return theta[:df_mean], theta[df_mean:]


@dataclass
class SmoothSettings:
    folds: int = 5
    max_df: int = 8
    max_df_std: int = 6
    noise: str = "auto"  # gaussian, empirical or auto (chosen by CV)
    table_bins: int = 200
    q: int = 128
    truncated: str = "auto"  # fit as truncated to the range: auto = for Algorithm-2 data


def _residual_quantiles(z: np.ndarray, q: int) -> np.ndarray:
    return np.quantile(z, probability_grid(q))


def _smooth_cv(bases, y, labels, df_m, df_s, q) -> tuple[float, float]:
    """Held-out CRPS of a (df_mean, df_std) model with Gaussian and empirical noise."""
    gauss = emp = 0.0
    bm, bs = bases[df_m], bases[df_s]
    for f in range(labels.max() + 1):
        tr = labels != f
        beta, gamma = _fit_bases(bm[tr], bs[tr], y[tr], polish=False)
        mu, sd = bm[~tr] @ beta, np.exp(np.clip(bs[~tr] @ gamma, -30, 30))
        gauss += crps_gaussian(y[~tr], mu, sd).sum()
        mu_tr, sd_tr = bm[tr] @ beta, np.exp(np.clip(bs[tr] @ gamma, -30, 30))
        zq = _residual_quantiles((y[tr] - mu_tr) / sd_tr, q)
        z = (y[~tr] - mu) / sd  # CRPS of a location-scale family scales with sigma
        emp += (sd * crps_quantile_rows(zq[None, :], z, np.zeros(len(z), dtype=int))).sum()
    return gauss / len(y), emp / len(y)


def fit_smooth(data: PulseData, settings: SmoothSettings | None = None, seed: int = 0,
               g_range=None) -> tuple[JumpTable, list[dict]]:
    """Smooth heteroscedastic model per polarity; returns (table, CV records)."""
    s = settings or SmoothSettings()
    if s.noise not in NOISES:
        raise MemsimError(f"smooth noise must be auto, gaussian or empirical, not {s.noise!r}")
    if s.truncated not in TRUNCATION:
        raise MemsimError(f"smooth truncated must be auto, yes or no, not {s.truncated!r}")
    lo, hi = data_range(data, g_range)
    generated = all(src.get("format") == "algorithm2" for src in data.sources)
    truncated = s.truncated == "yes" or (s.truncated == "auto" and generated)
    tables, records, chosen = {}, [], {}
    centres = lo + (np.arange(s.table_bins) + 0.5) / s.table_bins * (hi - lo)
    edges = np.linspace(lo, hi, s.table_bins + 1)
    for pi, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        n = len(pts)
        check_cv_points(n, s.folds, pol, "a smooth fit")
        x = (pts.g - lo) / (hi - lo)
        scale = float(np.std(pts.dg)) or 1.0
        y = (pts.dg - float(np.mean(pts.dg))) / scale
        shift = float(np.mean(pts.dg))
        labels = fold_labels(n, s.folds, seed, pts.device, key=pi)
        cap = max(1, min(s.max_df, n // 20))
        cap_s = max(1, min(s.max_df_std, n // 40))
        best = None
        bases = {df: spline_basis(x, df) for df in range(1, max(cap, cap_s) + 1)}
        for df_m in range(1, cap + 1):
            for df_s in range(1, cap_s + 1):
                cg, ce = _smooth_cv(bases, y, labels, df_m, df_s, s.q)
                records.append({"polarity": pol, "df_mean": df_m, "df_std": df_s,
                                "cv_crps_gaussian": cg * scale, "cv_crps_empirical": ce * scale})
                for noise, score in (("gaussian", cg), ("empirical", ce)):
                    if s.noise in ("auto", noise) and (best is None or score < best[0]):
                        best = (score, df_m, df_s, noise)
        _, df_m, df_s, noise = best
        bounds = None
        if truncated:  # y limits that keep G + dG inside [lo, hi]
            bounds = ((lo - pts.g - shift) / scale, (hi - pts.g - shift) / scale)
        fit = fit_heteroscedastic(x, y, df_m, df_s, bounds=bounds)
        mu, sd = fit.predict((centres - lo) / (hi - lo))
        mu, sd = mu * scale + shift, sd * scale
        chosen[pol] = {"df_mean": df_m, "df_std": df_s, "noise": noise,
                       "cv_crps": float(best[0] * scale), "truncated": truncated}
        if noise == "gaussian":
            tables[pol] = ConditionalTable(edges, "gaussian", means=mu, stds=sd)
        else:
            mu_d, sd_d = fit.predict(x)
            zq = _residual_quantiles((y - mu_d) / sd_d, s.q)
            tables[pol] = ConditionalTable(edges, "quantile",
                                           quantiles=mu[:, None] + sd[:, None] * zq[None, :])
    meta = fit_metadata(data, "smooth", {"folds": s.folds, "max_df": s.max_df,
                                      "max_df_std": s.max_df_std, "noise": s.noise,
                                      "truncated": s.truncated,
                                      "table_bins": s.table_bins, "chosen": chosen}, seed)
    return JumpTable(tables, lo, hi, data.unit, meta, name="smooth"), records



class Smooth(FitMethod):
    name = "smooth"
    Settings = SmoothSettings

    @classmethod
    def from_spec(cls, sec, base=None) -> Smooth:
        df = {"check": lambda v: 1 <= v <= 30, "check_msg": "must be in 1..30"}
        d = SmoothSettings()
        return cls(SmoothSettings(
            folds=sec.take("folds", int, d.folds, **at_least_2),
            max_df=sec.take("max_df", int, d.max_df, **df),
            max_df_std=sec.take("max_df_std", int, d.max_df_std, **df),
            noise=sec.take("noise", str, d.noise, choices=NOISES),
            table_bins=sec.take("table_bins", int, d.table_bins, **at_least_2),
            q=sec.take("q", int, d.q, **at_least_2),
            truncated=sec.take("truncated", str, d.truncated, choices=TRUNCATION)))

    def min_points(self) -> int:
        return 4 * self.settings.folds

    def check_points(self, n, polarity, where=None) -> None:
        check_cv_points(n, self.settings.folds, polarity, "a smooth fit")

    def describe_need(self) -> str:
        return f"{self.settings.folds}-fold cross-validation"

    def fit(self, data, *, seed=0, g_range=None) -> FitOutput:
        return FitOutput(*fit_smooth(data, self.settings, seed, g_range))
