"""The report of an ablation, read from its store alone.

* ``runs.csv``: one row per trained network (variant, seed): final test accuracy and the mean
  of the last k epochs (never the best epoch);
* ``ablation.csv`` / ``ablation.md``: per variant the mean final accuracy (%) with a 95 %
  t-interval over seeds, and its seed-by-seed (paired) differences to ``full`` (every
  imperfection) and to ``none`` (no imperfection), in percentage points with 95 % t-intervals;
* ``ranking.md``: the variants that switch off one imperfection each, ranked by the accuracy
  gained, with the paired difference of each to the top one and the share of bootstrap
  resamples of the seeds in which it ranks first (its uncertainty, stated);
* ``ablation.png``: both as bar charts with their intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.storage import save_figure, write_csv, write_text
from ..io.tables import markdown
from ..seeds import rng as seeded_rng
from ..sweep.statistics import t_interval
from .spec import FULL, NONE, AblationSpec

LEVEL = 0.95
BOOTSTRAP = 4000


def member_runs(batches: list[dict], store, report_last: int = 3) -> pd.DataFrame:
    """One row per (variant, seed): final and last-k test accuracy (%, k the base spec's
    ``report_last``), pulses, refreshes."""
    rows = []
    for b in batches:
        h = pd.DataFrame(store.get("batches", b["key"])["history"])
        last = int(h["epoch"].max())
        k = min(report_last, last)
        tail = h[h["epoch"] > last - k].groupby("seed")["test_acc"].mean()
        for r in h[h["epoch"] == last].itertuples():
            rows.append({"variant": b["variant"], "off": " ".join(b["off"]) or "-",
                         "seed": int(r.seed), "epochs": last,
                         "acc_pct": 100 * r.test_acc, "last_k_acc_pct": 100 * tail[r.seed],
                         "pulses": int(r.pulses), "refreshes": int(r.refreshes)})
    return pd.DataFrame(rows)


def ablation_table(runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    acc = runs.pivot(index="seed", columns="variant", values="acc_pct")
    rows = []
    for v in order:
        m, lo, hi = t_interval(acc[v])
        f, f_lo, f_hi = t_interval(acc[v] - acc[FULL])
        z, z_lo, z_hi = t_interval(acc[v] - acc[NONE])
        rows.append({"variant": v, "off": runs.loc[runs["variant"] == v, "off"].iloc[0],
                     "seeds": int(acc[v].notna().sum()), "acc_pct": m, "acc_ci_low": lo,
                     "acc_ci_high": hi, "diff_full_pp": f, "diff_full_ci_low": f_lo,
                     "diff_full_ci_high": f_hi, "diff_none_pp": z, "diff_none_ci_low": z_lo,
                     "diff_none_ci_high": z_hi})
    return pd.DataFrame(rows)


def _ci(m, lo, hi, sign: bool = False) -> str:
    fmt = "+.2f" if sign else ".2f"
    if np.isnan(lo):
        return format(m, fmt)
    return f"{format(m, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def ablation_markdown(table: pd.DataFrame) -> str:
    show = pd.DataFrame({
        "variant": table["variant"], "switched off": table["off"], "seeds": table["seeds"],
        "accuracy % [95% CI]": [_ci(*r) for r in zip(table["acc_pct"], table["acc_ci_low"],
                                                     table["acc_ci_high"], strict=True)],
        "vs full, pp [95% CI]": [_ci(*r, sign=True) for r in zip(
            table["diff_full_pp"], table["diff_full_ci_low"], table["diff_full_ci_high"],
            strict=True)],
        "vs none, pp [95% CI]": [_ci(*r, sign=True) for r in zip(
            table["diff_none_pp"], table["diff_none_ci_low"], table["diff_none_ci_high"],
            strict=True)]})
    return markdown(show)


def ranking(runs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The imperfections ranked by the damage they do, each with its paired difference to the
    top one and the bootstrap share of first places. Where variants switch off one
    imperfection each, the damage is the accuracy their removal gains over ``full``
    (``mode: removal``); otherwise every other variant counts as one imperfection alone (a
    device of its own, e.g. one noise source on the noise-free device) and its damage is what
    it costs against ``none`` (``mode: alone``). In pp."""
    others = runs[(runs["variant"] != FULL) & (runs["variant"] != NONE)]
    single = others[(others["off"] != "-") & (others["off"].str.split().str.len() == 1)]
    mode = "removal" if not single.empty else "alone"
    if mode == "alone":
        single = others[others["off"] == "-"]
    if single.empty:
        return pd.DataFrame()
    acc = runs.pivot(index="seed", columns="variant", values="acc_pct")
    names = list(dict.fromkeys(single["variant"]))
    if mode == "removal":
        gain = acc[names].sub(acc[FULL], axis=0)
    else:
        gain = acc[names].sub(acc[NONE], axis=0).mul(-1)
    means = gain.mean().sort_values(ascending=False)
    top = means.index[0]
    g = gain.to_numpy()
    draws = seeded_rng(seed, "bootstrap").integers(0, len(g), size=(BOOTSTRAP, len(g)))
    boot = g[draws].mean(axis=1)  # (resamples, variants)
    best = boot == boot.max(axis=1, keepdims=True)  # variants tied for first share the place
    firsts = (best / best.sum(axis=1, keepdims=True)).sum(axis=0)
    rows = []
    for rank, v in enumerate(means.index, 1):
        m, lo, hi = t_interval(gain[v])
        d, d_lo, d_hi = t_interval(gain[v] - gain[top]) if v != top else (0.0, np.nan, np.nan)
        label = single.loc[single["variant"] == v, "off"].iloc[0] if mode == "removal" else v
        rows.append({"rank": rank, "variant": v, "mode": mode, "switched off": label,
                     "gain_pp": m, "gain_ci_low": lo, "gain_ci_high": hi,
                     "vs_top_pp": d, "vs_top_ci_low": d_lo, "vs_top_ci_high": d_hi,
                     "p_first": firsts[names.index(v)] / BOOTSTRAP})
    return pd.DataFrame(rows)


def ranking_markdown(rank: pd.DataFrame, seeds: int) -> str:
    if rank.empty:
        return ("No variant switches off exactly one imperfection or adds one alone: nothing "
                "to rank.\n")
    alone = rank["mode"].iloc[0] == "alone"
    damage = "cost vs none, pp [95% CI]" if alone else "gain over full, pp [95% CI]"
    show = pd.DataFrame({
        "rank": rank["rank"], "variant": rank["variant"],
        **({} if alone else {"switched off": rank["switched off"]}),
        damage: [_ci(*r, sign=True) for r in zip(
            rank["gain_pp"], rank["gain_ci_low"], rank["gain_ci_high"], strict=True)],
        "minus the top, pp [95% CI]": [
            "-" if r.rank == 1 else _ci(r.vs_top_pp, r.vs_top_ci_low, r.vs_top_ci_high, True)
            for r in rank.itertuples()],
        "first in bootstrap": [f"{p:.0%}" for p in rank["p_first"]]})
    top = rank.iloc[0]
    tied = [r.variant for r in rank.itertuples()
            if r.rank > 1 and not (r.vs_top_ci_high < 0)]
    gain = _ci(top.gain_pp, top.gain_ci_low, top.gain_ci_high, True)
    if alone and top.gain_ci_low > 0:
        text = (f"**{top['variant']}** alone costs the most accuracy: {gain} pp against the "
                f"imperfection-free device ({seeds} seeds, paired by seed, 95 % t-interval). ")
    elif alone:
        text = (f"**{top['variant']}** alone ranks first by its mean cost, {gain} pp against "
                f"the imperfection-free device ({seeds} seeds, paired by seed, 95 % "
                "t-interval), but that interval includes 0: at this scale no single "
                "imperfection is shown to cost accuracy. ")
    elif top.gain_ci_low > 0:
        text = (f"Switching off **{top['switched off']}** gains the most accuracy: {gain} pp "
                f"over the full device ({seeds} seeds, paired by seed, 95 % t-interval). ")
    else:
        text = (f"Switching off **{top['switched off']}** ranks first by its mean gain, {gain} "
                f"pp over the full device ({seeds} seeds, paired by seed, 95 % t-interval), "
                "but that interval includes 0: at this scale no single removal is shown to "
                "help. ")
    if seeds < 5:
        text += ("(The bootstrap share of first places resamples only "
                 f"{seeds} seeds: read it as a rough indication.) ")
    if seeds < 2:
        text += "With one seed there are no intervals: the ranking is not tested."
    elif len(rank) < 2:
        text += "It is the only one ranked."
    elif tied:
        text += ("Its lead is not resolved at this number of seeds over: "
                 + ", ".join(f"`{v}`" for v in tied)
                 + " (the paired interval of the difference includes 0); those cannot be "
                 "ranked below it.")
    else:
        text += ("Its lead over every other single imperfection excludes 0." if alone else
                 "Its lead over every other single removal excludes 0.")
    return markdown(show) + "\n" + text + "\n"


def plot_ablation(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(table) + 1.8))
    y = np.arange(len(table))[::-1]
    panels = (("acc_pct", "acc_ci_low", "acc_ci_high", "test accuracy [%] (mean, 95% CI)"),
              ("diff_full_pp", "diff_full_ci_low", "diff_full_ci_high",
               "accuracy minus full device [pp] (paired, 95% CI)"))
    for ax, (col, lo, hi, label) in zip(axes, panels, strict=True):
        err = np.vstack([table[col] - table[lo], table[hi] - table[col]])
        err = np.nan_to_num(err)
        colors = ["0.35" if v in (FULL, NONE) else "tab:blue" for v in table["variant"]]
        ax.barh(y, table[col], xerr=err, color=colors, capsize=3)
        ax.set_yticks(y, table["variant"])
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[1].axvline(0, color="k", lw=0.8)
    lo = np.nanmin(table["acc_ci_low"].fillna(table["acc_pct"]))
    axes[0].set_xlim(max(0.0, lo - 5), min(100.0, np.nanmax(table["acc_ci_high"].fillna(
        table["acc_pct"])) + 2))
    fig.tight_layout()
    return fig


# every file write_ablation_report writes, removed when an ablation starts under a changed spec
REPORT_FILES = ("runs.csv", "ablation.csv", "ranking.csv", "ablation.md", "ranking.md",
                "ablation.png")


def write_ablation_report(spec: AblationSpec, batches: list[dict], store, out: Path
                          ) -> pd.DataFrame:
    runs = member_runs(batches, store, spec.base.training.report_last)
    table = ablation_table(runs, [v.name for v in spec.variants])
    rank = ranking(runs)
    write_csv(out / "runs.csv", runs)
    write_csv(out / "ablation.csv", table)
    write_csv(out / "ranking.csv", rank)
    write_text(out / "ablation.md", f"# {spec.name}\n\n" + ablation_markdown(table)
               + f"\nAccuracy: final epoch ({int(runs['epochs'].max())}) test accuracy, mean "
               f"over {len(spec.seeds)} seeds; differences paired by seed (the same seed trains "
               "the same initial weights, data order and device draws in every variant).\n")
    write_text(out / "ranking.md", ranking_markdown(rank, len(spec.seeds)))
    save_figure(out / "ablation.png", plot_ablation(table))
    return table
