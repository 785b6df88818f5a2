"""Fitting jump tables from (G, dG) data: binning, Optuna-optimized binning, smooth models.

* :func:`fit_binning`: K bins over G (equal-width or equal-count edges); per bin the empirical
  dG distribution (quantiles, linear between order statistics) or a Gaussian (mean, std).
  A bin with fewer than two points borrows the distribution of the nearest bin that has them.
* :func:`fit_optuna`: Optuna's TPE sampler chooses K, the edge rule and the per-bin statistic
  for each polarity, minimising the k-fold cross-validated CRPS of held-out points (never the
  in-sample fit). Studies can live in a SQLite file to be resumed and inspected.
* :func:`fit_smooth`: heteroscedastic regression, mu(G) and log sigma(G) as B-splines fitted
  by maximum likelihood, their degrees of freedom and the noise shape (Gaussian, or the
  empirical distribution of standardised residuals) chosen by cross-validated CRPS. The
  smooth model is tabulated on a fine uniform grid of bins so it samples like any table.

All methods are deterministic given their seed.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, special
from scipy.interpolate import BSpline

from .data import POLARITIES, PulseData
from .errors import MemsimError
from .metrics import crps_gaussian, crps_quantile_rows, table_crps
from .models import ConditionalTable, JumpTable, probability_grid

EDGE_RULES = ("width", "count")
STATS = ("empirical", "gaussian")
METHODS = ("binning", "optuna", "smooth")
MIN_PER_BIN = 2


# -------------------------------------------------------------------------- binning


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


def _range(data: PulseData, g_range) -> tuple[float, float]:
    lo, hi = g_range if g_range is not None else data.g_range()
    if not hi > lo:
        raise MemsimError("conductance range of the data is empty")
    return float(lo), float(hi)


def _metadata(data: PulseData, method: str, params: dict, seed: int | None) -> dict:
    return {"method": method, "params": params, "n": {p: data.n(p) for p in POLARITIES},
            "unit": data.unit, "seed": seed, "sources": data.sources}


def fit_binning(data: PulseData, bins: int = 32, edges: str = "width", stat: str = "empirical",
                g_range=None, q: int = 128) -> JumpTable:
    """A jump table by plain binning with the same settings for both polarities."""
    lo, hi = _range(data, g_range)
    tables = {}
    for pol in POLARITIES:
        pts = data.points[pol]
        check_bins(len(pts), bins, pol)
        tables[pol] = fit_binning_polarity(pts.g, pts.dg, bins, edges, stat, (lo, hi), q)
    meta = _metadata(data, "binning", {"bins": bins, "edges": edges, "stat": stat, "q": q}, None)
    return JumpTable(tables, lo, hi, data.unit, meta, name="binning")


# ------------------------------------------------------------------ cross-validation


def fold_labels(n: int, folds: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Cross-validation folds. With ``groups`` (e.g. the ramp of each point) and enough of
    them, whole groups go to one fold: consecutive changes of one ramp are correlated, and
    splitting them would make held-out scores look better than they are."""
    rng = np.random.default_rng(seed)
    if groups is not None and len(np.unique(groups)) >= folds:
        uniq, inverse = np.unique(groups, return_inverse=True)
        group_fold = np.empty(len(uniq), dtype=int)
        group_fold[rng.permutation(len(uniq))] = np.arange(len(uniq)) % folds
        return group_fold[inverse]
    labels = np.empty(n, dtype=int)
    labels[rng.permutation(n)] = np.arange(n) % folds
    return labels


def check_cv_points(n: int, folds: int, polarity: str, what: str) -> None:
    if n < 4 * folds:
        raise MemsimError(f"too few points for {what}: {polarity} has {n}, {folds}-fold "
                          f"cross-validation needs at least {4 * folds}")


def cv_crps_binning(g, dg, labels, bins, edges, stat, g_range, q=64) -> float:
    """Mean held-out CRPS of a binning setting over the folds in ``labels``."""
    total = 0.0
    for f in range(labels.max() + 1):
        train = labels != f
        table = fit_binning_polarity(g[train], dg[train], bins, edges, stat, g_range, q)
        total += table_crps(table, g[~train], dg[~train]).sum()
    return total / len(g)


# ---------------------------------------------------------------------------- optuna


@dataclass
class OptunaSettings:
    trials: int = 100
    folds: int = 5
    max_bins: int = 256
    storage: str | None = None
    study_name: str = "memsim"
    q: int = 128
    progress: bool = True


def _storage_url(storage: str | None) -> str | None:
    if storage is None:
        return None
    if "://" in storage:
        return storage
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(storage).resolve()}"


def fit_optuna(data: PulseData, settings: OptunaSettings | None = None, seed: int = 0,
               g_range=None) -> tuple[JumpTable, list[dict]]:
    """Optuna-optimized binning, one study per polarity. Returns (table, trial records)."""
    import optuna
    from tqdm.auto import tqdm

    s = settings or OptunaSettings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    lo, hi = _range(data, g_range)
    tables, records, best = {}, [], {}
    for pi, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        n = len(pts)
        check_cv_points(n, s.folds, pol, "an Optuna fit")
        labels = fold_labels(n, s.folds, seed + pi, pts.device)
        n_train = n - n // s.folds
        max_bins = int(max(2, min(s.max_bins, n_train // (2 * MIN_PER_BIN))))

        def objective(trial, pts=pts, labels=labels, max_bins=max_bins):
            bins = trial.suggest_int("bins", 1, max_bins, log=True)
            edges = trial.suggest_categorical("edges", list(EDGE_RULES))
            stat = trial.suggest_categorical("stat", list(STATS))
            return cv_crps_binning(pts.g, pts.dg, labels, bins, edges, stat, (lo, hi))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=seed + pi)
            # the study name carries a hash of the data: a stored study resumes only on the
            # data it was started with
            digest = hashlib.sha256(np.stack([pts.g, pts.dg]).tobytes()).hexdigest()[:10]
            try:
                study = optuna.create_study(direction="minimize", sampler=sampler,
                                            storage=_storage_url(s.storage),
                                            study_name=f"{s.study_name}-{pol}-{digest}",
                                            load_if_exists=s.storage is not None)
            except Exception as exc:  # SQLAlchemy/OS errors: an unusable storage file
                raise MemsimError(f"cannot open the Optuna storage ({exc.__class__.__name__})",
                                  s.storage) from None
            done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
            todo = max(0, s.trials - done)
            with tqdm(total=todo, desc=f"optuna {pol}", disable=not s.progress or None,
                      leave=False) as bar:
                study.optimize(objective, n_trials=todo,
                               callbacks=[lambda st, tr, bar=bar: bar.update(1)])
        params = study.best_params
        best[pol] = {**params, "cv_crps": float(study.best_value)}
        tables[pol] = fit_binning_polarity(pts.g, pts.dg, params["bins"], params["edges"],
                                           params["stat"], (lo, hi), s.q)
        for t in study.trials:
            if t.state == optuna.trial.TrialState.COMPLETE:
                records.append({"polarity": pol, "trial": t.number, "cv_crps": t.value,
                                **t.params})
    meta = _metadata(data, "optuna", {"trials": s.trials, "folds": s.folds,
                                      "max_bins": s.max_bins, "best": best}, seed)
    return JumpTable(tables, lo, hi, data.unit, meta, name="optuna"), records


# ---------------------------------------------------------------------------- smooth


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
    if s.noise not in ("auto", "gaussian", "empirical"):
        raise MemsimError(f"smooth noise must be auto, gaussian or empirical, not {s.noise!r}")
    if s.truncated not in ("auto", "yes", "no"):
        raise MemsimError(f"smooth truncated must be auto, yes or no, not {s.truncated!r}")
    lo, hi = _range(data, g_range)
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
        labels = fold_labels(n, s.folds, seed + pi, pts.device)
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
    meta = _metadata(data, "smooth", {"folds": s.folds, "max_df": s.max_df,
                                      "max_df_std": s.max_df_std, "noise": s.noise,
                                      "truncated": s.truncated,
                                      "table_bins": s.table_bins, "chosen": chosen}, seed)
    return JumpTable(tables, lo, hi, data.unit, meta, name="smooth"), records


# ---------------------------------------------------------------------------- facade


def fit(data: PulseData, method: str, *, seed: int = 0, g_range=None, binning: dict | None = None,
        optuna_settings: OptunaSettings | None = None,
        smooth_settings: SmoothSettings | None = None) -> tuple[JumpTable, list[dict]]:
    """Fit a jump table by ``method``; returns (table, records of the search, may be empty)."""
    if method == "binning":
        return fit_binning(data, g_range=g_range, **(binning or {})), []
    if method == "optuna":
        return fit_optuna(data, optuna_settings, seed, g_range)
    if method == "smooth":
        return fit_smooth(data, smooth_settings, seed, g_range)
    raise MemsimError(f"unknown fitting method {method!r}; use one of {', '.join(METHODS)}")
