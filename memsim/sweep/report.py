"""Tables, statistics and figures of a bias sweep.

* ``runs.csv``: every fitted network: truth, network, method, N, data and training seed, its
  accuracy, the truth's accuracy with the same training seed, the bias in percentage points
  and the fitted table's device-level metrics.
* ``bias.csv`` / ``bias.md``: by truth x network x method x N, the bias = accuracy of the
  fitted networks - accuracy of the truth's networks with the same training seeds (mean over
  noise replicates), in percentage points, with a 95 % interval over independent units (data
  seeds: networks on one fitted table share it; see :func:`paired_bias`).
* ``device_metrics.csv`` / ``.md``: the device-level metrics by truth x method x N.
* ``unpredictability.csv`` / ``.md``: by truth x network x method x N, how much single fitted
  tables disagree beyond run noise: the SD of per-table biases over the SD the truth's own
  run-to-run noise gives them (``sd_ratio``, 95 % F interval; 1 = no between-table spread),
  the between-table SD in pp, and the share of tables that over- or under-promise by more
  than ``MARGIN_PP`` (bootstrap intervals over tables and the truth's runs). See
  :mod:`.statistics`.
* ``metric_bias.csv`` / ``.md``: how each device-level metric ranks the network-level bias,
  per network: Spearman correlation with |bias| (and with the signed bias) across fitted
  tables (bias averaged over training seeds), 95 % interval from Fisher's z with the
  Fieller-Hartley-Pearson standard error 1.03/sqrt(n-3); and the partial Spearman
  correlation with |bias| given N, and given the truth where a sweep has several
  (``partial_rho``, bootstrap interval over data seeds), on
  which metrics are ranked: both the metrics and |bias| fall with N. The truth control is left
  out (its distribution metrics are exactly zero).
* ``bias_vs_n.png``, ``unpredictability_vs_n.png``, ``metric_vs_bias.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..devices.registry import load_truth
from ..io.storage import save_figure, write_csv, write_text
from ..io.tables import markdown
from .spec import CONTROLS, TABLE_CONTROL
from .statistics import (
    exceedance,
    partial_spearman,
    replicate_variance,
    table_units,
    variance_ratio,
    welch_interval,
)
from .store import SweepStore

MARGIN_PP = 1.0  # a single table "over-promises" when its bias exceeds this

METRICS = ("ks", "w1_rel", "rmse_mean_rel", "rmse_std_rel", "train_mean", "train_std")
METRIC_LABELS = {"ks": "KS distance", "w1_rel": "W1 / σ", "rmse_mean_rel": "RMSE mean / σ",
                 "rmse_std_rel": "RMSE std / σ", "train_mean": "pulse-train mean",
                 "train_std": "pulse-train spread"}


def spearman_ci(x, y, level: float = 0.95) -> tuple[float, float, float, int]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 4 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), float("nan"), float("nan"), n
    rho = float(stats.spearmanr(x[ok], y[ok]).statistic)
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + level / 2) * 1.03 / np.sqrt(n - 3)
    return rho, float(np.tanh(z - half)), float(np.tanh(z + half)), n


def reference_runs(members: pd.DataFrame, truth=None, network=None, group=None
                   ) -> pd.DataFrame:
    """The truth's reference runs, optionally of one truth, network and reference group (the
    table-path control is paired with runs of its own)."""
    ref = members[members["role"] == "reference"]
    for col, value in (("truth", truth), ("network", network), ("group", group)):
        if value is not None:
            ref = ref[ref[col] == value]
    return ref


def _with_groups(members: pd.DataFrame) -> pd.DataFrame:
    return members if "group" in members else members.assign(group="")


def assemble(fitdf: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """One row per fitted network with the truth's accuracy for its training seed (mean over
    noise replicates of its reference group) and the paired difference."""
    members = _with_groups(members)
    keys = ["truth", "network", "group", "train_seed"]
    ref = (reference_runs(members).groupby(keys)["acc"].mean()
           .rename("acc_truth").reset_index())
    runs = members[members["role"] == "fit"].merge(ref, on=keys)
    runs = runs.rename(columns={"acc": "acc_fit"})
    runs["bias_pp"] = 100 * (runs["acc_fit"] - runs["acc_truth"])
    keep = [c for c in fitdf.columns if c not in ("truth", "method", "n", "data_seed")]
    runs = runs.merge(fitdf[keep], on="fit_key", how="left")
    cols = ["truth", "network", "method", "n", "data_seed", "train_seed", "acc_fit",
            "acc_truth", "bias_pp", *METRICS]
    rest = [c for c in runs.columns
            if c not in cols and c not in ("member", "role", "loss", "fit_seconds")]
    return runs[cols + rest].sort_values(["truth", "network", "method", "n", "data_seed",
                                          "train_seed"]).reset_index(drop=True)


def paired_bias(g: pd.DataFrame, ref: pd.DataFrame, level: float = 0.95):
    """Bias (pp) of one cell with a confidence interval that respects the design.

    Each fitted network is paired with the truth's mean accuracy for its training seed (same
    initial weights and data order), which cancels seed effects. With several data seeds the
    unit is the data seed (its paired differences averaged over training seeds): networks on
    one fitted table share that table. Their spread misses the reference noise common to all
    data seeds, whose variance (within-seed replicate variance / reference networks) is added
    (Welch-Satterthwaite degrees of freedom). With one data seed the unit is the training seed.
    Returns (bias, low, high, unit, number of units).
    """
    per_seed = ref.groupby("train_seed")["acc"]
    r_mean = 100 * per_seed.mean()
    d = g.assign(diff=100 * g["acc_fit"] - r_mean.reindex(g["train_seed"]).to_numpy())
    if g["data_seed"].nunique() > 1:
        units = d.groupby("data_seed")["diff"].mean()
        unit = "data seed"
        within = (100 * ref["acc"] - r_mean.reindex(ref["train_seed"]).to_numpy())
        dof_ref = len(ref) - ref["train_seed"].nunique()
        var_ref = float((within**2).sum() / dof_ref) / len(ref) if dof_ref > 0 else 0.0
    else:
        units = d.groupby("train_seed")["diff"].mean()
        unit, var_ref, dof_ref = "training seed", 0.0, 0
    bias, low, high = welch_interval(units, [(var_ref, dof_ref)], level)
    return bias, low, high, unit, len(units)


def bias_table(runs: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    members = _with_groups(members)
    rows = []
    for (truth, net, method, n), g in runs.groupby(["truth", "network", "method", "n"],
                                                    sort=True):
        r = reference_runs(members, truth, net, g["group"].iloc[0])
        b, lo, hi, unit, units = paired_bias(g, r)
        rows.append({"truth": truth, "network": net, "method": method, "n": n,
                     "bias_pp": b, "ci_low": lo, "ci_high": hi, "ci_unit": unit,
                     "units": units, "networks": len(g), "reference_networks": len(r),
                     "acc_fit_pct": 100 * g["acc_fit"].mean(),
                     "acc_truth_pct": 100 * r["acc"].mean()})
    return pd.DataFrame(rows)


def unpredictability_table(runs: pd.DataFrame, members: pd.DataFrame,
                           margin: float = MARGIN_PP) -> pd.DataFrame:
    """Per truth x network x method x N: between-table spread against run noise, and the
    share of single tables beyond +-``margin`` pp."""
    members = _with_groups(members)
    rows = []
    for (truth, net, method, n), g in runs.groupby(["truth", "network", "method", "n"],
                                                    sort=True):
        r = reference_runs(members, truth, net, g["group"].iloc[0])
        units = table_units(g, r)
        run_var, run_dof = replicate_variance(r)
        seeds = int(g.groupby("data_seed")["train_seed"].nunique().min())
        rows.append({"truth": truth, "network": net, "method": method, "n": n,
                     "bias_pp": float(units.mean()),
                     **variance_ratio(units, run_var, run_dof, seeds),
                     "run_sd_pp": float(np.sqrt(run_var)), "train_seeds": seeds,
                     **exceedance(g, r, margin), "margin_pp": margin})
    return pd.DataFrame(rows)


def unpredictability_markdown(table: pd.DataFrame) -> str:
    t = table.copy()

    def ci(v, lo, hi, fmt):
        return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]" if np.isfinite(lo) else f"{v:{fmt}}"

    t["SD ratio [95% CI]"] = [ci(*v, ".2f") for v in
                              zip(t.sd_ratio, t.sd_ratio_low, t.sd_ratio_high, strict=True)]
    t["P(bias > +1 pp)"] = [ci(*v, ".2f") for v in
                            zip(t.p_over, t.p_over_low, t.p_over_high, strict=True)]
    t["P(bias < −1 pp)"] = [ci(*v, ".2f") for v in
                            zip(t.p_under, t.p_under_low, t.p_under_high, strict=True)]
    return markdown(t[["truth", "network", "method", "n", "tables", "SD ratio [95% CI]",
                       "between_sd_pp", "run_sd_pp", "P(bias > +1 pp)", "P(bias < −1 pp)"]])


def metric_table(fitdf: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in METRICS if c in fitdf]
    return (fitdf.groupby(["truth", "method", "n"])[cols].mean().reset_index())


def cell_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per fitted table (and network): bias averaged over training seeds."""
    keys = ["truth", "network", "method", "n", "data_seed"]
    agg = runs.groupby(keys).agg(bias_pp=("bias_pp", "mean"),
                                 **{m: (m, "first") for m in METRICS if m in runs})
    return agg.reset_index()


def metric_bias_table(runs: pd.DataFrame, controls: set[str]) -> pd.DataFrame:
    """Spearman correlation of each metric with |bias| and with the bias, per network
    (networks differ by orders of magnitude in how much device noise they tolerate)."""
    cells = cell_table(runs)
    cells = cells[~cells["method"].isin(controls)]
    rows = []
    for net, g in cells.groupby("network", sort=True):
        for metric in METRICS:
            if metric not in g:
                continue
            rho, lo, hi, n = spearman_ci(g[metric], g["bias_pp"].abs())
            rho_s, lo_s, hi_s, _ = spearman_ci(g[metric], g["bias_pp"])
            part = partial_spearman(g.assign(abs_bias=g["bias_pp"].abs()), metric)
            rows.append({"network": net, "metric": metric,
                         "partial_rho": part["partial_rho"], "partial_low": part["partial_low"],
                         "partial_high": part["partial_high"], "spearman_abs_bias": rho,
                         "ci_low": lo, "ci_high": hi, "spearman_signed_bias": rho_s,
                         "signed_ci_low": lo_s, "signed_ci_high": hi_s, "cells": n})
    table = pd.DataFrame(rows)
    if len(table):  # ranked on the association that N does not explain
        table = table.sort_values(["network", "partial_rho"], ascending=[True, False],
                                  na_position="last").reset_index(drop=True)
    return table


def bias_markdown(table: pd.DataFrame, with_state: frozenset[str] = frozenset()) -> str:
    """``with_state``: truths whose devices keep parameters of their own, on which the
    tabulated truth is not a control (said under the table)."""
    t = table.copy()
    t["bias (pp) [95% CI]"] = [
        f"{b:+.2f} [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else f"{b:+.2f}"
        for b, lo, hi in zip(t["bias_pp"], t["ci_low"], t["ci_high"], strict=True)]
    t["acc fit / truth (%)"] = [f"{a:.1f} / {b:.1f}" for a, b in
                               zip(t["acc_fit_pct"], t["acc_truth_pct"], strict=True)]
    t["CI units"] = [f"{u} {w}s" for u, w in zip(t["units"], t["ci_unit"], strict=True)]
    text = markdown(t[["truth", "network", "method", "n", "bias (pp) [95% CI]",
                       "acc fit / truth (%)", "CI units", "networks", "reference_networks"]])
    shown = sorted(with_state & set(t["truth"])) if TABLE_CONTROL in set(t["method"]) else []
    if shown:
        text += (f"\n\nOn {', '.join(shown)}, `{TABLE_CONTROL}` is not a control: those devices "
                 "keep parameters of their own from pulse to pulse, which no jump table (every "
                 "change drawn afresh) can carry; its bias is what the table form itself costs "
                 "with unlimited data, and every fitted table's bias includes it.")
    return text


# ---------------------------------------------------------------------- figures


def _plot_vs_n(table: pd.DataFrame, value: str, low: str, high: str, ylabel: str,
               reference: float, log_y: bool = False):
    """One panel per truth x network: ``value`` against N per method, with its interval."""
    import matplotlib.pyplot as plt

    panels = list(table.groupby(["truth", "network"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
    for ax, ((truth, net), g) in zip(axes[0], panels, strict=True):
        ax.set_title(f"{truth}, {net}")
        if not g[value].notna().any():  # e.g. one data seed: no spread to compare
            ax.text(0.5, 0.5, "no estimate in this design", ha="center",
                    transform=ax.transAxes)
            continue
        for i, (method, gm) in enumerate(g.groupby("method", sort=True)):
            gm = gm.sort_values("n")
            x = gm["n"].to_numpy() * (1 + 0.03 * (i - 1))  # small offset: bands stay visible
            ax.plot(x, gm[value], marker="o", label=method)
            ax.fill_between(x, gm[low], gm[high], alpha=0.15)
        ax.axhline(reference, color="k", lw=0.8)
        ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("N (points per polarity)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_bias_vs_n(table: pd.DataFrame):
    return _plot_vs_n(table, "bias_pp", "ci_low", "ci_high",
                      "modeling bias [pp]  (fitted − truth accuracy)", 0.0)


def plot_unpredictability(table: pd.DataFrame):
    return _plot_vs_n(table, "sd_ratio", "sd_ratio_low", "sd_ratio_high",
                      "SD of table biases / SD from run noise", 1.0, log_y=True)


def plot_metric_vs_bias(cells: pd.DataFrame, corr: pd.DataFrame):
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if m in cells]
    cols = 3
    rows = int(np.ceil(len(metrics) / cols))
    markers = dict(zip(sorted(cells["network"].unique()), "osD^v", strict=False))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        for i, (method, g) in enumerate(cells.groupby("method", sort=True)):
            for net, gn in g.groupby("network"):
                ax.scatter(gn[metric], gn["bias_pp"], s=16, alpha=0.75, color=f"C{i}",
                           marker=markers[net], label=f"{method} ({net})")
        rows = corr[corr["metric"] == metric] if len(corr) else corr
        if len(rows):
            rhos = ", ".join(f"{r.network} {r.partial_rho:.2f}" for r in rows.itertuples())
            given = "N, truth" if cells["truth"].nunique() > 1 else "N"
            ax.set_title(f"{METRIC_LABELS[metric]}: partial ρ(|bias| | {given}) {rhos}",
                         fontsize=9)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel(METRIC_LABELS[metric])
        ax.set_ylabel("bias [pp]")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    if axes.ravel()[0].get_legend_handles_labels()[0]:  # none when only controls were run
        axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- the report


# every file write_sweep_report writes, removed when a sweep starts under a changed spec
REPORT_FILES = ("runs.csv", "timing.csv", "bias.csv", "bias.md", "device_metrics.csv",
                "device_metrics.md", "unpredictability.csv", "unpredictability.md",
                "unpredictability_vs_n.png", "metric_bias.csv", "metric_bias.md",
                "bias_vs_n.png", "metric_vs_bias.png")


def write_sweep_report(spec, fits, batches, out: Path, store: SweepStore | None = None
                       ) -> dict[str, pd.DataFrame]:
    """The tables and figures of a sweep into ``out``, read from its store."""
    store = store or SweepStore(out)
    fitdf = store.fit_rows(fits)
    members = store.member_rows(batches)
    runs = assemble(fitdf, members)
    table = bias_table(runs, members)
    metrics = metric_table(fitdf)
    controls = {m.name for m in spec.methods if m.method in CONTROLS}
    corr = metric_bias_table(runs, controls)
    unpred = unpredictability_table(runs, members)
    write_csv(out / "runs.csv", runs)
    timing = fitdf[["truth", "method", "n", "data_seed", "fit_seconds"]]
    write_csv(out / "timing.csv", timing)  # wall times vary; kept apart from the results
    write_csv(out / "bias.csv", table)
    with_state = frozenset(t.name for t in spec.truths if not load_truth(t.ref).memoryless)
    write_text(out / "bias.md", bias_markdown(table, with_state))
    write_csv(out / "device_metrics.csv", metrics)
    write_text(out / "device_metrics.md", markdown(metrics))
    write_csv(out / "unpredictability.csv", unpred)
    write_text(out / "unpredictability.md", unpredictability_markdown(unpred))
    save_figure(out / "unpredictability_vs_n.png", plot_unpredictability(unpred))
    write_csv(out / "metric_bias.csv", corr)
    write_text(out / "metric_bias.md", markdown(corr))
    save_figure(out / "bias_vs_n.png", plot_bias_vs_n(table))
    cells = cell_table(runs)
    save_figure(out / "metric_vs_bias.png",
                plot_metric_vs_bias(cells[~cells["method"].isin(controls)], corr))
    return {"runs": runs, "bias": table, "metrics": metrics, "corr": corr,
            "unpredictability": unpred}
