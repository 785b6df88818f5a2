"""Statistics of a bias sweep that need more than a mean and its interval.

* :func:`variance_ratio`: is the accuracy a fitted table promises less predictable than the
  truth's own run-to-run noise? The spread of per-table biases (each averaged over the training
  seeds, paired with the truth's runs of the same seed) is compared with the spread run noise
  alone would give them (the truth's within-seed replicate variance / training seeds): an F
  ratio with its F-distribution interval. 1 = no between-table spread beyond noise.
* :func:`exceedance`: the share of single fitted tables whose measured bias (over their
  training seeds, run noise included) over- or under-promises by more than a margin, with a
  bootstrap interval that resamples the tables and the truth's runs: every table's bias is
  measured against the same truth mean, so the tables are not independent trials.
* :func:`partial_spearman`: Spearman correlation of a metric with |bias| given N (ranks
  residualised on the rank of N), with a bootstrap interval over data seeds: both the metrics
  and |bias| fall with N, and a pooled correlation mostly measures that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..seeds import rng as seeded_rng


def table_units(g: pd.DataFrame, ref: pd.DataFrame) -> pd.Series:
    """Per fitted table (data seed): its bias in pp, averaged over training seeds, each paired
    with the truth's mean accuracy for that seed."""
    r_mean = 100 * ref.groupby("train_seed")["acc"].mean()
    diff = 100 * g["acc_fit"] - r_mean.reindex(g["train_seed"]).to_numpy()
    return g.assign(diff=diff).groupby("data_seed")["diff"].mean()


def replicate_variance(ref: pd.DataFrame) -> tuple[float, int]:
    """The truth's run-to-run variance (pp^2) of one network: replicates of one training seed
    differ only in device noise. Returns (variance, degrees of freedom)."""
    acc = 100 * ref["acc"]
    dev = acc - acc.groupby(ref["train_seed"]).transform("mean")
    dof = len(ref) - ref["train_seed"].nunique()
    return (float((dev**2).sum()) / dof if dof > 0 else float("nan")), int(dof)


def variance_ratio(units: pd.Series, run_var: float, run_dof: int, seeds: int,
                   level: float = 0.95) -> dict:
    """SD of per-table biases / the SD run noise alone gives them, with an F interval."""
    d = len(units)
    out = {"tables": d, "between_sd_pp": float("nan"), "sd_ratio": float("nan"),
           "sd_ratio_low": float("nan"), "sd_ratio_high": float("nan")}
    if d < 2 or not run_var > 0 or run_dof < 1:
        return out
    s2 = float(units.var(ddof=1))
    noise = run_var / seeds
    f = s2 / noise
    a = (1 - level) / 2
    lo = f / stats.f.ppf(1 - a, d - 1, run_dof)
    hi = f / stats.f.ppf(a, d - 1, run_dof)
    out.update(between_sd_pp=float(np.sqrt(max(0.0, s2 - noise))), sd_ratio=float(np.sqrt(f)),
               sd_ratio_low=float(np.sqrt(lo)), sd_ratio_high=float(np.sqrt(hi)))
    return out


def exceedance(g: pd.DataFrame, ref: pd.DataFrame, margin: float, boot: int = 2000,
               seed: int = 0, level: float = 0.95) -> dict:
    """Share of tables whose bias (:func:`table_units`) exceeds +``margin`` pp, and -``margin``,
    with percentile intervals from a bootstrap over both levels of the design: the fitted tables
    (data seeds) and, within each training seed, the truth's replicate runs."""
    units = table_units(g, ref)
    n = len(units)
    out = {"p_over": float((units > margin).mean()) if n else float("nan"),
           "p_under": float((units < -margin).mean()) if n else float("nan")}
    fit = 100 * g.pivot_table(index="data_seed", columns="train_seed", values="acc_fit",
                              aggfunc="mean")
    runs = [100 * ref.loc[ref["train_seed"] == s, "acc"].to_numpy() for s in fit.columns]
    nan = {k: float("nan") for k in ("p_over_low", "p_over_high", "p_under_low",
                                     "p_under_high")}
    if n < 2 or boot < 1 or any(len(r) == 0 for r in runs):
        return {**out, **nan}
    gen = seeded_rng(seed, "bootstrap")
    tables = fit.to_numpy()[gen.integers(0, n, (boot, n))]  # (boot, tables, seeds)
    truth = np.stack([r[gen.integers(0, len(r), (boot, len(r)))].mean(axis=1) for r in runs],
                     axis=1)  # (boot, seeds): the truth's mean per seed, resampled
    drawn = np.nanmean(tables - truth[:, None, :], axis=2)
    a = (1 - level) / 2
    for key, share in (("p_over", (drawn > margin).mean(axis=1)),
                       ("p_under", (drawn < -margin).mean(axis=1))):
        out[f"{key}_low"], out[f"{key}_high"] = (float(v) for v in
                                                 np.quantile(share, [a, 1 - a]))
    return out


def _partial_rank_corr(x: np.ndarray, y: np.ndarray, z: np.ndarray,
                       strata: np.ndarray | None = None) -> float:
    """Pearson correlation of the ranks of x and y after regressing out the rank of z (and,
    with ``strata``, one level per stratum: a categorical covariate such as the truth)."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    columns = [np.ones_like(rz), rz]
    if strata is not None:
        levels = np.unique(strata)
        columns += [(strata == v).astype(float) for v in levels[1:]]
    design = np.column_stack(columns)
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    sx, sy = np.linalg.norm(res_x), np.linalg.norm(res_y)
    if sx == 0 or sy == 0:
        return float("nan")
    return float(res_x @ res_y / (sx * sy))


def partial_spearman(cells: pd.DataFrame, metric: str, target: str = "abs_bias",
                     given: str = "n", groups: str = "data_seed", boot: int = 1000,
                     seed: int = 0, level: float = 0.95, strata: str = "truth") -> dict:
    """Partial Spearman correlation of ``metric`` with ``target`` given ``given`` and, where
    ``cells`` hold several, the ``strata`` (truths differ in both the metrics and the bias,
    which would otherwise pass for an association), with a percentile bootstrap interval
    resampling whole ``groups`` (the cells of one data seed share its data draws)."""
    by = strata if strata in cells and cells[strata].nunique() > 1 else None
    ok = cells[[metric, target, given, groups] + ([by] if by else [])].dropna()
    x, y, z = (ok[c].to_numpy(dtype=float) for c in (metric, target, given))
    st = ok[by].to_numpy() if by else None
    rho = _partial_rank_corr(x, y, z, st) if len(ok) >= 5 else float("nan")
    out = {"partial_rho": rho, "partial_low": float("nan"), "partial_high": float("nan"),
           "cells": len(ok)}
    labels = ok[groups].to_numpy()
    uniq = np.unique(labels)
    if not np.isfinite(rho) or len(uniq) < 3:
        return out
    members = [np.flatnonzero(labels == u) for u in uniq]
    gen = seeded_rng(seed, "bootstrap")
    draws = []
    for _ in range(boot):
        pick = np.concatenate([members[i] for i in gen.integers(0, len(uniq), len(uniq))])
        r = _partial_rank_corr(x[pick], y[pick], z[pick], None if st is None else st[pick])
        if np.isfinite(r):
            draws.append(r)
    if draws and len(draws) >= boot // 2:
        a = (1 - level) / 2
        out["partial_low"], out["partial_high"] = (float(v) for v in
                                                   np.quantile(draws, [a, 1 - a]))
    return out


def welch_interval(units, shared=(), level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``units`` with a t-interval whose variance is the units' variance of the mean
    plus ``shared`` terms, (variance, degrees of freedom) of errors common to every unit (a
    reference mean all units are measured against), with Welch-Satterthwaite degrees of
    freedom. Nan bounds with fewer than two units."""
    units = np.asarray(units, dtype=float)
    m = float(units.mean()) if len(units) else float("nan")
    if len(units) < 2:
        return m, float("nan"), float("nan")
    terms = [(float(units.var(ddof=1)) / len(units), len(units) - 1),
             *((v, d) for v, d in shared if v > 0 and d > 0)]
    var = sum(v for v, _ in terms)
    if var == 0:
        return m, m, m
    dof = var**2 / sum(v**2 / d for v, d in terms)
    half = stats.t.ppf(0.5 + level / 2, dof) * np.sqrt(var)
    return m, m - half, m + half


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its t-interval (nan bounds with fewer than two values)."""
    x = np.asarray(x, dtype=float)
    m = float(x.mean()) if len(x) else float("nan")
    if len(x) < 2:
        return m, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return m, m - half, m + half
