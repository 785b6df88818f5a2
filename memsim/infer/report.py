"""The report of an inference run.

* ``draws.csv``: one row per draw (LUT, coding, read time, scale, seed);
* ``inference.csv`` / ``inference.md``: per LUT × coding × read time × scale, the mean over
  seeds of the bit error rate, the relative error of the first coded layer's output
  (dimensionless, ‖Y − Y_ref‖ / ‖Y_ref‖) and the test accuracy (%), each with a 95 %
  t-interval over seeds, and the accuracy change against the float network in percentage
  points (the float network is one fixed network: the interval is that of the coded mean);
* ``ber_by_bit.csv``: the bit error rate of every bit position of the float codings;
* ``lut_states.csv``: each LUT's states (count, median, SD, 1st/99th percentiles in S) per
  read time;
* figures: relative error and accuracy against the variability scale, error by bit position,
  accuracy against read time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.storage import save_figure, write_csv, write_text
from ..io.tables import markdown
from ..sweep.statistics import t_interval

KEYS = ["lut", "coding", "time", "scale"]


def summarise(draws: pd.DataFrame, float_accuracy: float) -> pd.DataFrame:
    rows = []
    for key, g in draws.groupby(KEYS, sort=False):
        row = dict(zip(KEYS, key, strict=False))
        row["seeds"] = len(g)
        for col, factor in (("ber", 1.0), ("relative_error", 1.0), ("accuracy", 100.0)):
            if g[col].isna().all():
                m = lo = hi = float("nan")
            elif not np.isfinite(g[col]).all():
                m, lo, hi = float("inf"), float("nan"), float("nan")
            else:
                m, lo, hi = t_interval(g[col].to_numpy() * factor)
                # a rate and an accuracy live in [0, 1] and [0, 100] %: so do their intervals
                lo, hi = max(lo, 0.0), min(hi, factor) if col != "relative_error" else hi
            row[col], row[f"{col}_lo"], row[f"{col}_hi"] = m, lo, hi
        delta = row["accuracy"] - 100 * float_accuracy
        row["accuracy_change_pp"] = delta
        row["accuracy_change_lo"] = row["accuracy_lo"] - 100 * float_accuracy
        row["accuracy_change_hi"] = row["accuracy_hi"] - 100 * float_accuracy
        row["nonfinite"] = g["nonfinite"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt_ci(m, lo, hi, digits) -> str:
    if not np.isfinite(m):
        return "inf" if m == np.inf else "—"
    if not np.isfinite(lo):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _sci_ci(m, lo, hi) -> str:
    if not np.isfinite(m):
        return "inf" if m == np.inf else "—"
    if not np.isfinite(lo):
        return f"{m:.3g}"
    return f"{m:.3g} [{max(lo, 0):.3g}, {hi:.3g}]"


def markdown_table(table: pd.DataFrame) -> str:
    show = pd.DataFrame({
        "LUT": table["lut"], "coding": table["coding"], "read time (s)": table["time"].map(
            "{:g}".format), "scale": table["scale"].map("{:g}".format),
        "bit error rate": [_sci_ci(*r) for r in table[["ber", "ber_lo", "ber_hi"]].to_numpy()],
        "relative error": [_sci_ci(*r) for r in table[["relative_error", "relative_error_lo",
                                                        "relative_error_hi"]].to_numpy()],
        "accuracy (%)": [_fmt_ci(*r, 2) for r in table[["accuracy", "accuracy_lo",
                                                        "accuracy_hi"]].to_numpy()],
        "vs float (pp)": [_fmt_ci(*r, 2) for r in table[["accuracy_change_pp",
                                                         "accuracy_change_lo",
                                                         "accuracy_change_hi"]].to_numpy()],
        "non-finite / draw": table["nonfinite"].map("{:g}".format)})
    return markdown(show)


def _plot_vs_scale(table: pd.DataFrame, column: str, ylabel: str, float_accuracy=None):
    import matplotlib.pyplot as plt

    luts = list(dict.fromkeys(table["lut"]))
    fig, axes = plt.subplots(1, len(luts), figsize=(5 * len(luts), 3.8), squeeze=False,
                             sharey=True)
    for ax, lut in zip(axes[0], luts, strict=False):
        t = table[(table["lut"] == lut)]
        t = t[t["time"] == t["time"].min()]
        for coding, g in t.groupby("coding", sort=False):
            y = g[column].to_numpy()
            ax.plot(g["scale"], y, marker="o", label=coding)
            if np.isfinite(g[f"{column}_lo"]).any():
                ax.fill_between(g["scale"], g[f"{column}_lo"], g[f"{column}_hi"], alpha=0.2)
        if float_accuracy is not None:
            ax.axhline(100 * float_accuracy, color="k", ls="--", lw=0.8, label="float")
        positive = t.loc[t["scale"] > 0, "scale"]
        ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
        if float_accuracy is None:
            ax.set_yscale("symlog", linthresh=1e-6)
        ax.set_title(f"{lut} (read at {t['time'].min():g} s)")
        ax.set_xlabel("variability scale (× measured spread)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(ylabel)
    return fig


def _plot_bits(bits: pd.DataFrame):
    """Per coding, the bit error rate of each bit position at each LUT's last read time (where
    drift has had its say): at the measured spread (scale 1, if run) and at the largest
    scale, side by side."""
    import matplotlib.pyplot as plt

    colors = {"sign": "tab:red", "exponent": "tab:orange", "mantissa": "tab:blue"}
    last = bits[bits["time"] == bits.groupby("lut")["time"].transform("max")]
    scales = sorted({1.0, float(last["scale"].max())} & set(last["scale"].astype(float)))
    panels = list(dict.fromkeys(zip(last["lut"], last["coding"], strict=False)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), squeeze=False,
                             layout="constrained")
    width = 0.8 / len(scales)
    for ax, (lut, coding) in zip(axes[:, 0], panels, strict=False):
        for i, scale in enumerate(scales):
            g = last[(last["lut"] == lut) & (last["coding"] == coding)
                     & (last["scale"] == scale)]
            ax.bar(g["bit"] + (i - (len(scales) - 1) / 2) * width, g["ber"], width,
                   color=[colors[f] for f in g["field"]], alpha=0.45 if i == 0 and
                   len(scales) > 1 else 1.0, edgecolor="k", linewidth=0.3)
        ax.set_title(f"{lut} × {coding}, read at {last.loc[last['lut'] == lut, 'time'].max():g}"
                     f" s; scale {' (light) and '.join(f'{s:g}' for s in scales)}", fontsize=9)
        ax.set_ylabel("bit error rate")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    axes[0, 0].legend(handles, list(colors), fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("bit position (0 = sign, then exponent, then mantissa)")
    return fig


def _plot_vs_time(table: pd.DataFrame, float_accuracy: float):
    import matplotlib.pyplot as plt

    t = table[table["scale"] == (1.0 if (table["scale"] == 1.0).any() else table["scale"].max())]
    fig, ax = plt.subplots(figsize=(6, 4))
    for (lut, coding), g in t.groupby(["lut", "coding"], sort=False):
        if g["time"].nunique() < 2:
            continue
        x = g["time"].clip(lower=1e-3)
        ax.plot(x, g["accuracy"], marker="o", label=f"{lut} × {coding}")
    ax.axhline(100 * float_accuracy, color="k", ls="--", lw=0.8, label="float")
    ax.set_xscale("log")
    ax.set_xlabel("read time after programming (s; 0 shown at 1 ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"scale {t['scale'].iloc[0]:g}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def write_report(out: Path, spec, draws: pd.DataFrame, bits: pd.DataFrame,
                 float_accuracy: float, plots: bool = True) -> pd.DataFrame:
    table = summarise(draws, float_accuracy)
    states = pd.concat([u.lut.summary().assign(lut=u.lut.name, model=u.model, d2d=u.d2d)
                        for u in spec.luts], ignore_index=True)
    write_csv(out / "draws.csv", draws)
    write_csv(out / "inference.csv", table)
    write_csv(out / "lut_states.csv", states)
    # what this run does not make must not survive from an earlier run into the same folder
    stale = [] if len(bits) else ["ber_by_bit.csv", "ber_by_bit.png"]
    if not plots:
        stale += ["relative_error_vs_scale.png", "accuracy_vs_scale.png", "accuracy_vs_time.png"]
    elif table.groupby(["lut", "coding"])["time"].nunique().max() <= 1:
        stale.append("accuracy_vs_time.png")
    for name in stale:
        (out / name).unlink(missing_ok=True)
    if len(bits):
        write_csv(out / "ber_by_bit.csv", bits)
    net = spec.network
    lines = [f"# Inference: {spec.name}", "",
             f"Network: {net.arch} trained in float on {net.dataset} ({net.epochs} epochs, "
             f"seed {net.seed}); test accuracy in float **{100 * float_accuracy:.2f} %**. Coded "
             f"layers: {', '.join(spec.layers)} (weights only; biases stay digital). Relative "
             f"error: of the output of {spec.layers[0]} on the test set, exact inputs. "
             f"Intervals: 95 % t-intervals over {len(spec.seeds)} seeds (one draw of every "
             "coded cell per seed); accuracy in %, its change against float in percentage "
             "points; scale multiplies the measured spread about each state's median.", "",
             markdown_table(table), ""]
    write_text(out / "inference.md", "\n".join(lines))
    if plots:
        save_figure(out / "relative_error_vs_scale.png",
                    _plot_vs_scale(table, "relative_error", "relative error of the layer output"))
        save_figure(out / "accuracy_vs_scale.png",
                    _plot_vs_scale(table, "accuracy", "test accuracy (%)", float_accuracy))
        if len(bits):
            save_figure(out / "ber_by_bit.png", _plot_bits(bits))
        if table.groupby(["lut", "coding"])["time"].nunique().max() > 1:
            save_figure(out / "accuracy_vs_time.png", _plot_vs_time(table, float_accuracy))
    return table
