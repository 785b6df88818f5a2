"""results/README.md: a short report written from the result tables by ``make reproduce``.

Every number in it is read from the tables just produced; the sentences that compare them with
the study's claims are built from those numbers, so the report stays true when results change.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .io.storage import write_text
from .io.tables import markdown
from .sweep.spec import TABLE_CONTROL


def _rel(path: Path, root: Path) -> str:
    return str(path.resolve().relative_to(root.resolve()))


def _fit_section(root: Path) -> list[str]:
    lines = ["## 1. Fitting jump tables (`memsim fit`)", ""]
    rows, sane, read_noise = [], [], []
    for d in sorted((root / "fit").glob("*/metrics.csv")):
        m = pd.read_csv(d)
        if "read_noise_frac" in m:  # held-out ramps or, with single points held out, all
            read_noise += [(d.parent.name, v) for v in m["read_noise_frac"].dropna()]
        if "reference" in m and (m["reference"] == "data_range").any():
            sane.append(m[m["reference"] == "data_range"])
            m = m[m["reference"] != "data_range"]
        for _, r in m.iterrows():
            rows.append({"fit": d.parent.name, "against": r["reference"],
                         "polarity": r["polarity"], "KS": r["ks"], "W1/σ": r["w1_rel"],
                         "CRPS": r.get("crps", np.nan), "PIT-KS": r.get("pit_ks", np.nan),
                         "pulse-train mean": r.get("train_mean", np.nan),
                         "read-noise share": r.get("read_noise_frac", np.nan)})
    if not rows:
        return []
    table = pd.DataFrame(rows)
    lines += ["Device-level metrics of each fit: against held-out points (20 %), scored on a "
              "fit of the other 80 % (out of sample); and, where the data came from a known "
              "device, the exported table (fitted on every point) against that truth. KS and "
              "W1 compare the one-pulse ΔG distributions G by G (W1 in units of the truth's "
              "spread, G weighted by the density of data); "
              "the pulse-train metric is the RMSE between mean trajectories (fraction of the "
              "range). Against held-out points KS and W1 carry a sampling floor (each G bin "
              "holds about 50 points, so KS ≈ 0.1 even for a perfect model); CRPS and PIT-KS "
              "use every point.", "", markdown(table, ".3g"), ""]
    if sane:
        sane = pd.concat(sane)
        lines += [f"Every exported table passed memsim's sanity invariant: no bin reaches "
                  f"beyond the data's ΔG range (largest excess "
                  f"{sane['support_excess'].max():.3g} of that range), and the widest bin's "
                  f"spread is {sane['spread_max_rel'].max():.3g} of it (the limit is 0.75).",
                  ""]
    for d in sorted((root / "fit").glob("*/fit.png")):
        lines.append(f"![{d.parent.name}]({_rel(d, root)})")
    noisy = pd.DataFrame(read_noise, columns=["fit", "share"]).query("share > 0.3")
    if len(noisy):
        names = ", ".join(sorted(set(noisy["fit"])))
        lines += ["", f"Measured traces with strongly anti-correlated consecutive changes ({names}"
                  f"): about {noisy['share'].mean():.0%} of their ΔG variance is read "
                  "noise, which a jump table built from differences of readings turns into "
                  "write noise; the pulse-train figures show the simulated spread outgrowing "
                  "the measured one."]
    return lines + [""]


def _fidelity_section(root: Path) -> list[str]:
    from .fit import fidelity

    path = root / "fidelity" / "summary.csv"
    if not path.exists():
        return []
    summary = pd.read_csv(path)
    check = fidelity.verdicts(summary)
    seeds = int(summary["seeds"].max())
    lines = ["## 1b. Fit fidelity on measured devices (`memsim bench fidelity`)", "",
             "Six measured TaOx devices and the ENODe cell (CrossSim LUTs) as truths; "
             "Algorithm-2 data at each N (points per polarity), fitted by every method on all "
             "points; W1 to the truth (truncation-aware, G weighted by the density of data, "
             "divided by the truth's spread, mean of both polarities and of "
             f"{seeds} data seeds) as a ratio to plain 20-bin equal-width binning of the same "
             "points. The first column is that plain binning's own W1/σ.", "",
             markdown(fidelity.ratio_table(summary), ".3g"), "",
             f"The recommended method, `{fidelity.RECOMMENDED}`, meets its targets (ratio ≤ 1 "
             f"at every N, ≤ 0.7 at N ≥ 3000) in {int(check.met.sum())} of {len(check)} "
             "cells."]
    missed = check[~check.met]
    if len(missed):
        cells = "; ".join(f"{r.truth} at N = {r.n}: {r.ratio:.2f}"
                          for r in missed.itertuples())
        lines[-1] += f" It misses: {cells}."
        best = root / "fidelity" / "hindsight.csv"
        if best.exists():
            lines += ["", fidelity.hindsight_sentence(
                fidelity.hindsight_ratios(pd.read_csv(best), summary))]
    lines += ["", f"![fidelity]({_rel(root / 'fidelity' / 'ratios.png', root)})", ""]
    return lines


def _train_section(root: Path) -> list[str]:
    path = root / "train" / "summary.csv"
    if not path.exists():
        return []
    s = pd.read_csv(path)
    t = pd.DataFrame({"run": s["name"], "network": s["network"], "device": s["device"],
                      "epochs": s["epochs"], "train examples": s["subset"],
                      "test accuracy %": 100 * s["final_test_acc"],
                      "pulses": s["pulses"], "seconds": s["seconds"]})
    jart = s["name"].str.startswith("mlp_jart").any()
    lines = ["## 2. Device-in-the-loop training (`memsim train`)", "",
             "MNIST, 784-100-10 MLP (SGD) and 784-500-10 BNN (Adam), weights on differential "
             "pairs"
             + ("; the `mlp_jart*` runs are the JART study's 784-256-128-10 sigmoid MLP, one "
                "device per weight (see the JART section)" if jart else "")
             + ". Reduced scale runs fewer epochs on a subset (see the table).", "",
             markdown(t, ".4g"), "", "![training](train/accuracy.png)", ""]
    acc = dict(zip(s["name"], 100 * s["final_test_acc"], strict=True))
    if "mlp_float" in acc and "mlp_ideal" in acc:
        lines.append(f"- The ideal linear device reaches {acc['mlp_ideal']:.1f} % against "
                     f"{acc['mlp_float']:.1f} % in float: the update rule itself costs "
                     f"{acc['mlp_float'] - acc['mlp_ideal']:+.1f} points.")
    for name, what in (("mlp_tiox", "TiOx (1.5 V) pairs"),
                       ("mlp_synthetic_truth", "the synthetic target (σ = 1.2 nS)"),
                       ("mlp_synthetic_table", "the XBTorch table of that target")):
        if name in acc and "mlp_float" in acc:
            lines.append(f"- {what}: {acc[name]:.1f} % ({acc[name] - acc['mlp_float']:+.1f} "
                         "points from float).")
    if "bnn_float" in acc and "bnn_tiox" in acc:
        lines.append(f"- BNN: {acc['bnn_float']:.1f} % in float, {acc['bnn_tiox']:.1f} % with "
                     "latent weights on TiOx pairs (RESET-only programming with refresh): "
                     "binarized weights need only the sign of G+ − G−, which tolerates the "
                     "device noise far better than the analog MLP.")
    return lines + [""]


def _grid_section(root: Path) -> list[str]:
    lines = []
    for name, title in (("attribution", "reduced scale, `make reproduce`"),
                        ("attribution_full", "full scale: all of MNIST, 10 epochs")):
        path = root / name / "table.csv"
        if not path.exists():
            continue
        t = pd.read_csv(path)
        if not lines:
            lines = ["## 2b. What the device costs, what the algorithm costs "
                     "(`experiments/attribution.yaml`)", "",
                     "Each cell: one network per seed (3 seeds), trained with the device in the "
                     "loop by an update algorithm. Accuracy in %, mean ± standard deviation over "
                     "the seeds, of the final epoch and of the mean over the last k epochs (never "
                     "the best epoch); pulses per weight = pulses received by the devices of a "
                     "weight, averaged over weights; `ideal_18` has as many levels as TiOx.", ""]
        lines += [f"### {title}", "", (root / name / "table.md").read_text(), ""]
        for png in sorted((root / name).glob("accuracy_*.png")):
            lines.append(f"![{png.stem}]({_rel(png, root)})")
        lines.append("")
        lines += _grid_facts(t)
    return lines


def _grid_facts(t: pd.DataFrame) -> list[str]:
    facts = []
    for net, g in t.groupby("network", sort=False):
        flt = g[g["device"] == "float"]["final_acc_pct"]
        if not len(flt):
            continue
        for dev, d in g[g["device"] != "float"].groupby("device", sort=False):
            best = d.loc[d["final_acc_pct"].idxmax()]
            sgd = d[d["algorithm"] == "sgd"]["final_acc_pct"]
            facts.append(f"- {net} on {dev}: best {best['algorithm']} "
                         f"{best['final_acc_pct']:.1f} % (float {flt.iloc[0]:.1f} %)"
                         + (f", sgd {sgd.iloc[0]:.1f} %" if len(sgd) else "")
                         + f"; {best['pulses_per_weight']:.0f} pulses per weight.")
    return facts + [""]


def _truths_with_state(out: Path) -> set[str]:
    """The sweep's truths that are not memoryless (devices keep parameters of their own), on
    which the table-path control measures what the table form costs instead of checking
    the pipeline."""
    from .devices.registry import is_kind_preset, load_truth
    from .io.schema import load_yaml
    from .models.resolve import resolve_ref

    names = set()
    for t in load_yaml(out / "sweep_spec.yaml").get("truths", []):
        ref = t["ref"] if is_kind_preset(t["ref"]) else resolve_ref(t["ref"], out)
        if not load_truth(ref).memoryless:
            names.add(t["name"])
    return names


def _sweep_facts(bias: pd.DataFrame, corr: pd.DataFrame, controls: set[str],
                 with_state: frozenset[str] = frozenset()) -> list[str]:
    facts = []
    for (truth, net), panel in bias.groupby(["truth", "network"], sort=True):
        facts += [f"**{truth}, {net}**", ""]
        fitted = panel[~panel["method"].isin(controls)]
        sizes = sorted(fitted["n"].unique())
        low = fitted[fitted["n"].isin(sizes[:2]) & fitted["method"].str.startswith("bin")]
        if len(low):
            pos = int((low["ci_low"] > 0).sum())
            neg = int((low["ci_high"] < 0).sum())
            half = float(np.nanmedian((low["ci_high"] - low["ci_low"]) / 2))
            verdict = ("both signs occur: binning is unpredictable at low N, as the study "
                       "reports" if pos and neg else
                       f"no interval excludes 0, which is not evidence of no bias: with "
                       f"median half-widths of {half:.1f} pp, a mean bias of 1.4 times that "
                       "is detected only 80 % of the time, and smaller ones less often"
                       if not (pos or neg) else
                       "a consistent sign here (the study saw both signs across devices)")
            facts.append(f"- Binning at N ≤ {sizes[min(1, len(sizes) - 1)]}: biases from "
                         f"{low['bias_pp'].min():+.1f} to {low['bias_pp'].max():+.1f} pp; "
                         f"significant (95 % CI excluding 0): {pos} over-, {neg} "
                         f"under-promising: {verdict}.")
        for method, g in fitted.groupby("method", sort=True):
            g = g.sort_values("n")
            facts.append(f"- {method}: " + ", ".join(
                f"{b:+.1f}" for b in g["bias_pp"]) + " pp for N = "
                + ", ".join(str(n) for n in g["n"]) + ".")
        ctrl = panel[panel["method"].isin(controls)]
        if len(ctrl):
            for method, c in ctrl.groupby("method", sort=True):
                if method == TABLE_CONTROL and truth in with_state:
                    facts.append(_form_limit_fact(c))
                    continue
                covers = int(((c["ci_low"] <= 0) & (c["ci_high"] >= 0)).sum())
                facts.append(f"- Control `{method}`: {covers} of {len(c)} intervals cover 0 "
                             "(its cells share one set of reference runs, so they are not "
                             "independent checks).")
        means = fitted.assign(a=fitted["bias_pp"].abs()).groupby("method")["a"].mean()
        facts.append("- Mean |bias| over N: " + ", ".join(
            f"{m} {v:.1f} pp" for m, v in means.sort_values().items()) + ".")
        facts.append("")
    for net, c in corr.groupby("network", sort=True):
        key = "partial_rho" if "partial_rho" in c else "spearman_abs_bias"
        c = c.dropna(subset=[key]).sort_values(key, ascending=False)
        if not len(c):
            continue
        top = c.iloc[0]
        truths = " and truth" if bias["truth"].nunique() > 1 else ""
        if key == "partial_rho":
            facts.append(
                f"- Device-level metrics vs |bias| given N{truths} ({net}, "
                f"{int(top['cells'])} fitted "
                f"tables): best {top['metric']} (partial Spearman ρ = {top['partial_rho']:.2f}, "
                f"95 % bootstrap CI [{top['partial_low']:.2f}, {top['partial_high']:.2f}]; "
                f"pooled over N it was {top['spearman_abs_bias']:.2f}); ranking "
                + ", ".join(f"{r.metric} {r.partial_rho:.2f}" for r in c.itertuples()) + ".")
        else:
            facts.append(
                f"- Device-level metrics vs |bias| ({net}, {int(top['cells'])} fitted tables):"
                f" best {top['metric']} (Spearman ρ = {top['spearman_abs_bias']:.2f}).")
    return facts


def _form_limit_fact(c: pd.DataFrame) -> str:
    """The table-path control on a truth whose devices keep parameters of their own."""
    excl = int(((c["ci_low"] > 0) | (c["ci_high"] < 0)).sum())
    cells = "; ".join(f"{r.bias_pp:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}] pp"
                      for r in c.sort_values("n").itertuples())
    half = float(np.nanmedian((c["ci_high"] - c["ci_low"]) / 2))
    power = ("" if excl else f"; an interval that includes 0 does not show that the form "
             f"costs nothing: with half-widths of about {half:.1f} pp, smaller costs could not "
             "be detected")
    return (f"- `{TABLE_CONTROL}` is not a control on this truth: its devices keep their own "
            "drawn and walked parameters from pulse to pulse, and a jump table draws every "
            "change afresh from the population's one-pulse distribution, so no table, however "
            "much data, can carry them. Its bias is what the table form itself costs: "
            f"{cells} ({excl} of {len(c)} intervals exclude 0; the cells share one tabulated "
            f"truth and one set of reference runs{power}). Every fitted table's bias includes "
            "it.")


def _unpredictability_facts(table: pd.DataFrame, controls: set[str]) -> list[str]:
    facts = []
    for (truth, net), panel in table.groupby(["truth", "network"], sort=True):
        parts = []
        for method, g in panel.groupby("method", sort=True):
            g = g.sort_values("n")
            cells = ", ".join(
                f"N = {r.n}: {r.sd_ratio:.2f} [{r.sd_ratio_low:.2f}, {r.sd_ratio_high:.2f}]"
                for r in g.itertuples() if np.isfinite(r.sd_ratio_low))
            if cells:
                parts.append(f"{method}{' (control)' if method in controls else ''}: {cells}")
        if parts:
            facts.append(f"- {truth}, {net} — SD of single-table biases over the SD run noise "
                         "gives them (1 = no between-table spread): " + "; ".join(parts) + ".")
    return facts


def _summary(sweeps: list[Path]) -> list[str]:
    """The study's claims next to what these sweeps show, computed from their tables."""
    lines = ["## Summary: the study's claims and what memsim finds", ""]
    low_bin, low_other, top_metrics, nets, high_ok, high_bad = [], [], [], {}, 0, []
    low_counts = [0, 0]  # significantly biased optuna/smooth cells at low N, all such cells
    low_halves = []  # and their interval half-widths
    for out in sweeps:
        bias = pd.read_csv(Path(out) / "bias.csv")
        runs = pd.read_csv(Path(out) / "runs.csv")
        controls = set(runs.loc[runs["control"], "method"])
        fitted = bias[~bias["method"].isin(controls)]
        per_table = runs.groupby(["truth", "network", "method", "n", "data_seed"])[
            "bias_pp"].mean().reset_index()
        for (truth, net), g in fitted.groupby(["truth", "network"], sort=True):
            sizes = sorted(g["n"].unique())
            cut = sizes[min(1, len(sizes) - 1)]
            low = g[g["n"] <= cut]
            lb = low[low["method"].str.startswith("bin")]
            pos, neg = int((lb["ci_low"] > 0).sum()), int((lb["ci_high"] < 0).sum())
            tables = per_table[(per_table["truth"] == truth) & (per_table["network"] == net)
                               & (per_table["n"] <= cut)
                               & per_table["method"].str.startswith("bin")]["bias_pp"]
            low_bin.append(f"{truth}/{net}: at N ≤ {cut} the mean bias of a binning cell is "
                           f"{lb['bias_pp'].min():+.1f} to {lb['bias_pp'].max():+.1f} pp "
                           f"(significant: {pos} over-, {neg} under-promising), and single "
                           f"fitted tables range from {tables.min():+.1f} to "
                           f"{tables.max():+.1f} pp")
            lo = low[~low["method"].str.startswith("bin")]
            sig = lo[(lo["ci_low"] > 0) | (lo["ci_high"] < 0)]
            if len(lo):
                low_other.append(f"{truth}/{net}: {len(sig)} of {len(lo)} optuna/smooth cells "
                                 f"at N ≤ {cut} significantly biased")
                low_counts[0] += len(sig)
                low_counts[1] += len(lo)
                low_halves.extend((lo["ci_high"] - lo["ci_low"]) / 2)
            hi = g[g["n"] == sizes[-1]]
            covers = (hi["ci_low"] <= 0) & (hi["ci_high"] >= 0)
            high_ok += int(covers.sum())
            high_bad += [f"{truth}/{net}/{m} ({b:+.1f} pp)" for m, b in
                         zip(hi.loc[~covers, "method"], hi.loc[~covers, "bias_pp"],
                             strict=True)]
            nets.setdefault(net, []).append(float(g["bias_pp"].abs().mean()))
        corr = pd.read_csv(Path(out) / "metric_bias.csv")
        key = "partial_rho" if "partial_rho" in corr else "spearman_abs_bias"
        for net, c in corr.groupby("network"):
            c = c.dropna(subset=[key])
            if len(c) and net != "all":
                top = c.loc[c[key].idxmax()]
                top_metrics.append((f"{Path(out).name}/{net}", top["metric"], top[key],
                                    top.get("partial_low", np.nan),
                                    top.get("partial_high", np.nan)))
    lines.append("- *Binning is unpredictable at low N, over- and under-promising.* "
                 + "; ".join(low_bin) + ".")
    dynamic = sum(m.startswith("train_") for _, m, *_ in top_metrics)
    lines.append("- *Device-level metrics track the network-level bias.* Both fall with N, so "
                 "metrics are ranked on the partial Spearman correlation with |bias| given N "
                 "(95 % bootstrap interval over data seeds). Strongest: " + "; ".join(
                     f"{w}: {m} (ρ = {r:.2f} [{lo:.2f}, {hi:.2f}])"
                     for w, m, r, lo, hi in top_metrics) + "."
                 + (" In every case a pulse-train metric (the drift of many simulated devices "
                    "under pulse trains) ranks first, ahead of the one-pulse distances "
                    "(KS, W1): a network feels the accumulated drift."
                    if top_metrics and dynamic == len(top_metrics) else
                    f" A pulse-train metric ranks first in {dynamic} of {len(top_metrics)} "
                    "cases."))
    if low_other:
        verdict = ("most are: fitting a few hundred noisy points does not recover the device, "
                   "whatever the method" if low_counts[0] * 2 >= low_counts[1] else
                   "most intervals cover 0, which does not show those cells unbiased: their "
                   f"median half-width is {np.median(low_halves):.1f} pp")
        lines.append("- *Better statistical models (Optuna-optimized binning, memsim's smooth "
                     "fit).* " + "; ".join(low_other) + f": {verdict}. At the largest N "
                     + (f"all {high_ok} fitted cells have intervals covering 0 — "
                        "consistent with no bias, not proof of it: a bias of 1.4 times a "
                        "cell's interval half-width is detected only 80 % of the time." if
                        not high_bad else
                        f"{high_ok} cells have CIs covering 0; significant there: "
                        + ", ".join(high_bad) + "."))
    if len(nets) > 1:
        mean_abs = {n: float(np.mean(v)) for n, v in nets.items()}
        text = ", ".join(f"{n} {v:.1f} pp" for n, v in sorted(mean_abs.items()))
        robust = ("bnn" in mean_abs and "mlp" in mean_abs
                  and mean_abs["bnn"] < mean_abs["mlp"] / 3)
        lines.append("- *Beyond the study.* Mean |bias| by network: " + text + "."
                     + (" Binarized networks, which only need the sign of G+ − G−, barely "
                        "notice which device model they were trained on." if robust else ""))
    return lines + [""]


def _sweep_section(root: Path, out: Path, number: int, kept: bool = False) -> list[str]:
    bias = pd.read_csv(out / "bias.csv")
    corr = pd.read_csv(out / "metric_bias.csv")
    runs = pd.read_csv(out / "runs.csv", usecols=["method", "control"])
    controls = set(runs.loc[runs["control"], "method"])
    name = out.name
    lines = [f"## {number}. Modeling bias: `{name}`", "",
             f"Spec: `{_rel(out / 'sweep_spec.yaml', root)}`; every run: "
             f"`{_rel(out / 'runs.csv', root)}`.", "",
             *(["Not rerun by this `make reproduce`: too long for the reduced scale, it is "
                "kept as the last run of the same spec wrote it (delete its folder to rerun "
                "it).", ""] if kept else []),
             "Bias = accuracy with the fitted table − accuracy with the true device under the "
             "same training seed (the truth's runs repeated with independent device noise and "
             "averaged), in percentage points; mean and 95 % interval over data seeds (each a "
             "different fitted table), the truth's own noise included.", "",
             (out / "bias.md").read_text(), "",
             f"![bias vs N]({_rel(out / 'bias_vs_n.png', root)})", "",
             "How device-level metrics of the fitted tables rank the network-level |bias| "
             "(partial Spearman given N, and pooled; one point per fitted table):", "",
             (out / "metric_bias.md").read_text(),
             "", f"![metric vs bias]({_rel(out / 'metric_vs_bias.png', root)})", ""]
    unpred = None
    if (out / "unpredictability.csv").exists():
        unpred = pd.read_csv(out / "unpredictability.csv")
        lines += ["How unpredictable is a single fitted table? The SD of per-table biases "
                  "(each averaged over the training seeds) over the SD the truth's own "
                  "run-to-run noise gives them, with its 95 % F interval, and the share of "
                  "single tables whose measured bias (over their training seeds, so run noise "
                  "of SD run_sd_pp / √seeds included) over- or under-promises by more than "
                  "1 pp, with 95 % percentile intervals from a bootstrap over the tables and "
                  "the truth's runs (every table is measured against the same truth mean, so "
                  "the tables are no independent trials):", "",
                  (out / "unpredictability.md").read_text(), "",
                  f"![unpredictability]({_rel(out / 'unpredictability_vs_n.png', root)})", ""]
    lines += ["What it shows:", ""]
    lines += _sweep_facts(bias, corr, controls, frozenset(_truths_with_state(out)))
    if unpred is not None:
        lines += _unpredictability_facts(unpred, controls)
    return lines + [""]


TWIN = "_dwtruth"  # a sweep's twin with every controller calibrated on the true device


def _miscalibration_section(root: Path, sweeps: list[Path]) -> list[str]:
    """Bias with each controller calibrated on its own table (the designer's view) minus the
    bias with every controller calibrated on the truth, for sweeps run both ways."""
    lines = []
    names = {Path(s).name for s in sweeps}
    for out in sweeps:
        out = Path(out)
        if out.name.endswith(TWIN) or out.name + TWIN not in names:
            continue
        keys = ["truth", "network", "method", "n"]
        twin_dir = out.parent / (out.name + TWIN)
        own = pd.read_csv(out / "bias.csv")
        twin = pd.read_csv(twin_dir / "bias.csv")
        both = own.merge(twin, on=keys, suffixes=("_table", "_truth"))
        both["miscalibration_pp"], both["low"], both["high"] = _paired_difference(
            out, twin_dir, both[keys])
        show = both[keys].copy()
        show["bias, dw_min table (pp)"] = both["bias_pp_table"].map("{:+.2f}".format)
        show["bias, dw_min truth (pp)"] = both["bias_pp_truth"].map("{:+.2f}".format)
        show["difference [95% CI]"] = [
            f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            for d, lo, hi in zip(both["miscalibration_pp"], both["low"], both["high"],
                                 strict=True)]
        sig = both[(both["low"] > 0) | (both["high"] < 0)]
        lines += [f"## Controller miscalibration: `{out.name}` vs `{out.name + TWIN}`", "",
                  "The same sweep run twice: each network's controller assuming the pulse size "
                  "of its own fitted table (`dw_min: table`, what a designer can do) and of the "
                  "true device (`dw_min: truth`). Their difference is the part of the modeling "
                  "bias that comes from a miscalibrated controller rather than from the "
                  "device's simulated response.", "", markdown(show, ".3g"), "",
                  f"Differences whose interval excludes 0: {len(sig)} of {len(both)} cells"
                  + (": " + ", ".join(f"{r.method} N = {r.n} ({r.miscalibration_pp:+.2f} pp)"
                                      for r in sig.itertuples()) if len(sig) else "")
                  + ". Each difference is paired by fitted table (both sweeps train on the "
                  "same tables, data seed by data seed), its interval a t-interval over the "
                  "tables' differences with both truths' reference noise added "
                  "(Welch-Satterthwaite); a difference of about 1.4 times its half-width would "
                  "be detected 80 % of the time.", ""]
    return lines


def _paired_difference(own: Path, twin: Path, cells: pd.DataFrame):
    """Per cell of ``cells``: the bias in ``own`` minus that in ``twin``, paired by data seed
    (the sweeps share their fitted tables), with its 95 % interval: the tables' paired
    differences plus each sweep's reference-mean noise (replicate variance / reference
    networks, from its unpredictability and bias tables)."""
    from .sweep.statistics import welch_interval

    keys = ["truth", "network", "method", "n"]

    def per_table(out):
        runs = pd.read_csv(out / "runs.csv")
        return runs.groupby([*keys, "data_seed"])["bias_pp"].mean()

    def reference_noise(out):
        noise = pd.read_csv(out / "unpredictability.csv").merge(
            pd.read_csv(out / "bias.csv")[[*keys, "reference_networks"]], on=keys)
        noise["var"] = noise["run_sd_pp"] ** 2 / noise["reference_networks"]
        noise["dof"] = noise["reference_networks"] - noise["train_seeds"]
        return noise.set_index(keys)[["var", "dof"]]

    diff = (per_table(own) - per_table(twin)).dropna()
    noise_own, noise_twin = reference_noise(own), reference_noise(twin)
    out = []
    for cell in cells.itertuples(index=False):
        key = tuple(cell)
        shared = [tuple(noise.loc[key]) for noise in (noise_own, noise_twin)
                  if key in noise.index]
        out.append(welch_interval(diff.loc[key].to_numpy(), shared))
    return [np.array(v) for v in zip(*out, strict=True)] if out else ([], [], [])


FAMILIES = {"xbtorch_tiox": "XBTorch TiOx table", "crosssim_taox": "measured TaOx LUT"}


def _families_section(sweeps: list[Path]) -> list[str]:
    """The XBTorch and the measured truth families side by side, from their bias tables."""
    import yaml

    rows = []
    for out in sweeps:
        doc = yaml.safe_load((Path(out) / "sweep_spec.yaml").read_text())
        refs = " ".join(str(t.get("ref", t.get("model", ""))) for t in doc["truths"])
        family = next((f for f in FAMILIES if f in refs), None)
        if family is None:
            continue
        bias = pd.read_csv(Path(out) / "bias.csv")
        runs = pd.read_csv(Path(out) / "runs.csv")
        fitted = bias[~bias["method"].isin(set(runs.loc[runs["control"], "method"]))
                      & (bias["network"] == "mlp")]
        for method, g in fitted.groupby("method", sort=True):
            sig = int(((g["ci_low"] > 0) | (g["ci_high"] < 0)).sum())
            rows.append({"truths": FAMILIES[family], "sweep": Path(out).name, "method": method,
                         "N": ", ".join(map(str, sorted(g["n"].unique()))),
                         "mean abs. bias (pp)": float(g["bias_pp"].abs().mean()),
                         "largest abs. bias (pp)": float(g["bias_pp"].abs().max()),
                         "cells significant": f"{sig} of {len(g)}"})
    if len({r["sweep"] for r in rows}) < 2:
        return []
    table = pd.DataFrame(rows)
    means = table.groupby("sweep")["mean abs. bias (pp)"].mean()
    return ["## Two families of truth: XBTorch tables and measured LUTs", "",
            "The XBTorch TiOx truth is itself an Optuna-binned 100-level table, piecewise "
            "constant in G, so a binning can reproduce it; the measured TaOx LUTs (CrossSim) "
            "are per-level measurements whose ΔG distribution changes "
            "abruptly from level to level, which no smooth or coarse model matches exactly. "
            "Per fitted method, the MLP's bias cells over the N of each sweep (absolute "
            "values of the cell means; significance: 95 % interval excluding 0):", "",
            markdown(table, ".3g"), "",
            "Mean over methods: " + "; ".join(f"`{k}` {v:.2f} pp" for k, v in means.items())
            + ". The sweeps differ in N and in the networks' accuracy level, so the families "
            "are compared within each sweep (which methods do well), not by one number.", ""]


JART_PUBLISHED = {"mlp_jart_float": 95.49, "mlp_jart_recommended": 93.82,
                  "mlp_jart_published": 93.82, "mlp_jart_recommended_realistic": 88.34,
                  "mlp_jart_published_realistic": 88.34}


def _jart_section(root: Path) -> list[str]:
    """The JART VCM study: the device against the reference implementation's figures, and the
    study's network trained in float and on the device next to the published means."""
    import torch

    from .devices import jart
    from .sweep.statistics import t_interval

    def step(w0: float, is_set: bool, pulses: int = 1) -> tuple[float, float]:
        pop = jart.JartPopulation(1, {}, {}, True, dtype=torch.float64)
        dw = _jart_pulses(pop, w0, is_set, pulses)
        return float(dw[0]), float(pop.n)

    figures = [("one SET pulse at w = 0: Δw", 9.35e-3, step(0.0, True)[0]),
               ("one RESET pulse at w = 0: Δw", -1.51e-2, step(0.0, False)[0]),
               ("one SET pulse at w = −0.5: Δw", 1.1e-4, step(-0.5, True)[0])]
    dw, n = step(0.0, True, 1000)
    figures += [("1000 SET pulses from w = 0: N", 1.472, n),
                ("1000 SET pulses from w = 0: w", 0.531, dw)]
    table = pd.DataFrame({"figure": [f[0] for f in figures],
                          "reference": [f"{f[1]:.4g}" for f in figures],
                          "memsim": [f"{f[2]:.4g}" for f in figures],
                          "difference": [f"{100 * (f[2] / f[1] - 1):+.2f} %" for f in figures]})
    lines = ["## JART VCM v1b (Yu et al. 2022)", "",
             "The nominal device (`jart:noise_free`) against the reference implementation's "
             "figures (../shared/literature/jart_vcm_v1b.md; computed when this file was "
             "written):", "", markdown(table), ""]
    runs = []
    for path in sorted((root / "train").glob("mlp_jart*/summary.csv")):
        rows = pd.read_csv(path)
        r = rows.iloc[0]
        base = path.parent.name.removesuffix("_full")
        # only the published scale compares with the published means
        full = int(r["subset"]) >= 60000 and int(r["epochs"]) >= 30
        pub = JART_PUBLISHED.get(base) if full else None
        acc = 100 * rows["final_test_acc"].to_numpy()
        m, lo, hi = t_interval(acc)
        if not full:  # a reduced check: its seeds as they came out (they may not be normal:
            lo = hi = np.nan  # a network that leaves its plateau or not), no interval
        ci = "" if np.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"
        diff = "-" if pub is None else f"{m - pub:+.2f}" + (
            "" if np.isnan(lo) else f" [{lo - pub:+.2f}, {hi - pub:+.2f}]")
        runs.append({"run": path.parent.name, "device": r["device"],
                     "update": r["algorithm"], "images": int(r["subset"]),
                     "epochs": int(r["epochs"]), "seeds": len(rows),
                     "test accuracy %": f"{m:.2f}{ci}",
                     "per seed %": ", ".join(f"{a:.2f}" for a in acc) if len(acc) > 1 else "-",
                     "published %": "-" if pub is None else f"{pub:.2f}",
                     "minus published, points": diff})
    if runs:
        lines += ["The study's network (784-256-128-10, sigmoid, SGD lr 0.05, batch 32; "
                  "published: means of 5 runs, 30 epochs, all 60,000 images). Runs with fewer "
                  "images or epochs are reduced-scale checks, not compared with the published "
                  "figures. Final-epoch test accuracy, the mean over training seeds with its 95 % "
                  "t-interval at the published scale (percent; none with one seed, and none for "
                  "reduced checks, whose seeds are listed as they came out); the published "
                  "figures are means "
                  "over 5 runs without an interval, and its device figures were made with the "
                  "kit's pulse-train rule:", "",
                  markdown(pd.DataFrame(runs)), "",
                  "`mlp_jart_published*` is the published rule as described (pulse trains, BL "
                  "31, the kit's dw_min of 1e-4, weights from 0) with the kit's periphery "
                  "(`periphery: kit`: 7-bit inputs, 9-bit outputs, output noise 0.06, noise and "
                  "bound management, forward and backward, as the study's runs had). Each "
                  "coincidence is a whole JART pulse (about 1e-2 at w = 0, 90 times dw_min), so "
                  "two minibatches move the second layer's weights by −0.1 to −0.2 on average "
                  "(RESET steps are 1.6 times SET steps) and its sigmoids saturate. With exact "
                  "products (`experiments/mlp_jart_published_ideal_io.yaml`) hardly a pulse is "
                  "sent after that and the network stays at chance; through the kit's periphery "
                  "errors keep flowing and the network leaves the plateau. The authors' own code "
                  "(their fork of the kit, built from source, CPU, their noise-free "
                  "configuration) does the same: with its periphery set perfect, the second "
                  "layer's mean weight is −0.212 after two minibatches (memsim −0.206) and "
                  "nothing moves for 600 minibatches; with the kit's default periphery, 3 runs "
                  "of 3 left the plateau (within 375, 750 and 1500 minibatches) and reached "
                  "80.5, 86.5 and 77.9 % on the first 2000 test images after one epoch. In "
                  "memsim, at 12,000 images and 3 epochs (`*_12k`), a seed either has left the "
                  "plateau or not (the table's seeds); with exact products none did. On the "
                  "realistic mixed device the rule sends about 9 million pulses per epoch and "
                  "the training loss stays above that of a uniform guess (2.30): at lr 0.05 the "
                  "network does not settle, and the study halves its learning rate only after "
                  "10 epochs, beyond these runs. The authors' code on its realistic mixed "
                  "configuration did the same (one run: at chance after 1125 minibatches, "
                  "training loss 2.6–2.8). memsim's "
                  "rule (`mlp_jart_recommended*`: stochastic rounding to whole pulses of the "
                  "device's own step, random initial weights written to the devices, exact "
                  "products) trains without a periphery.", ""]
        lines += _jart_published_full(root)
        lines += _jart_noise_cost(root)
    return lines


def _jart_published_full(root: Path) -> list[str]:
    """How the published rule could run at the published scale on the noise-free device."""
    path = root / "train" / "mlp_jart_published_full" / "summary.csv"
    if not path.exists():
        return []
    runs = pd.read_csv(path)
    compute = runs["compute"].iloc[0] if "compute" in runs else "cpu"
    noisy = root / "train" / "mlp_jart_published_realistic_12k"
    measured = ""
    if (noisy / "summary.csv").exists():  # the noisy rule's cost, scaled to the published run
        seeds = pd.read_csv(noisy / "summary.csv")
        spec = yaml.safe_load((noisy / "spec.yaml").read_text())
        batch = spec["training"]["batch"]
        per_batch = seeds["seconds"].iloc[0] / (spec["training"]["epochs"]
                                                * -(-spec["subset"] // batch))
        measured = (f"; realistic mixed took {per_batch:.2f} s per minibatch for its "
                    f"ensemble of {len(seeds)} in `*_realistic_12k`, about "
                    f"{per_batch * 30 * -(-60000 // batch) / 3600:.0f} h at the published "
                    "30 epochs of 60,000 images")
    return [f"`mlp_jart_published_full` is the published rule at the published scale on the "
            f"noise-free device, its pulses looked up in the device's state table "
            f"(`tabulate: on`: N is float32 between pulses, so the one-pulse map of every "
            f"float32 N is the simulation itself, but for a last float32 bit where vectorized "
            f"and scalar math differ), "
            f"{runs['seconds'].iloc[0] / 3600:.1f} h for its ensemble of {len(runs)} seeds "
            f"({compute}). On a noisy device every pulse is simulated (its drawn and walked "
            f"parameters are no function of N alone), 6 to 20 hours of CPU per network here"
            f"{measured}, so the published rule's realistic mixed figure and its ranking of the "
            f"noise are not measured.", ""]


# full-scale runs under memsim's rule with one noise configuration each, and what the study
# reported for it (points lost against the noise-free device)
JART_NOISE_RUNS = (
    ("mlp_jart_recommended_realistic", "realistic mixed (all of it)",
     "5.48 (difference of the published means)"),
    ("mlp_jart_recommended_d2d", "its device-to-device part alone", "-"),
    ("mlp_jart_recommended_c2c", "its cycle-to-cycle part alone", "-"),
    ("mlp_jart_recommended_c2c_rdisc", "its r_disc cycle-to-cycle walk alone", "-"),
    ("mlp_jart_recommended_d2d_rdisc", "device-to-device r_disc alone",
     "about 4-5 (the worst single imperfection)"),
    ("mlp_jart_recommended_rdisc", "r_disc device to device and cycle to cycle, nothing else",
     "-"))


def _jart_noise_cost(root: Path) -> list[str]:
    """What each noise configuration costs the full-scale network under memsim's rule,
    against the noise-free device and paired by training seed, next to what the study
    reported."""
    from .devices import jart
    from .sweep.statistics import t_interval

    def accuracy(name):
        path = root / "train" / f"{name}_full" / "summary.csv"
        return pd.read_csv(path).set_index("seed")["final_test_acc"] if path.exists() else None

    clean = accuracy("mlp_jart_recommended")
    if clean is None:
        return []
    rows, cost, per_seed = [], {}, {}
    for name, what, study in JART_NOISE_RUNS:
        noisy = accuracy(name)
        seeds = [] if noisy is None else clean.index.intersection(noisy.index)
        if len(seeds) < 2:
            continue
        per_seed[name] = 100 * (clean[seeds] - noisy[seeds])
        cost[name] = t_interval(per_seed[name].to_numpy())
        m, lo, hi = cost[name]
        rows.append({"noise": what, "run": f"{name}_full", "seeds": len(seeds),
                     "test accuracy %": f"{100 * noisy[seeds].mean():.2f}",
                     "cost, points [95 % CI]": f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]",
                     "cost in the study, points": study})
    if not rows:
        return []
    lines = ["What the noise costs at the published scale under memsim's rule: accuracy lost "
             f"against the noise-free device ({100 * clean.mean():.2f} %), paired by training "
             "seed (the same initial weights and data order), mean and 95 % t-interval over "
             "seeds; a negative cost is a gain. The study's figures were made with the kit's "
             "rule.", "", markdown(pd.DataFrame(rows)), ""]
    text = []
    if "mlp_jart_recommended_realistic" in cost:
        text.append("The realistic figure misses the published one mainly through this cost, "
                    "which depends on the update rule (memsim's is calibrated on the device's "
                    "own step, the kit's is not); the kit's rule on a noisy device at the "
                    "published scale is 6 to 20 hours of CPU per run here (above: shorter "
                    "runs).")
    halves = ("mlp_jart_recommended_realistic", "mlp_jart_recommended_d2d",
              "mlp_jart_recommended_c2c")
    if all(h in cost for h in halves):
        whole, d2d, c2c = (per_seed[h] for h in halves)
        seeds = whole.index.intersection(d2d.index).intersection(c2c.index)
        inter = t_interval((whole[seeds] - d2d[seeds] - c2c[seeds]).to_numpy())
        r_d2d = jart.D2D_REALISTIC["rdisc"]["bounds"][0]
        r_both = r_d2d * (1 + jart.PRESETS["realistic_mixed"]["c2c"]["rdisc"]["bounds"][0])
        nominal = _jart_set_step_at(jart.R_DISC * 1e9)
        text.append(
            "Neither half alone is shown to cost accuracy (device-to-device "
            f"{_pp(*cost[halves[1]])}, cycle-to-cycle {_pp(*cost[halves[2]])}), but together "
            f"they cost {_pp(*cost[halves[0]])}: the interaction (the whole's cost minus the "
            f"sum of the halves', paired by seed) is {_pp(*inter)}. The walks are bounded "
            "relative to each device's own value, so a disc drawn at the lower "
            f"device-to-device bound ({r_d2d:g} nm) can walk down to {r_both:g} nm, where one "
            f"SET pulse at w = 0 moves the weight by {_jart_set_step_at(r_both):+.3f} "
            f"({_jart_set_step_at(r_both) / nominal:.0f}× the nominal device's "
            f"{nominal:+.4f}; {_jart_set_step_at(r_d2d):+.3f} at {r_d2d:g} nm). Such nearly "
            "binary devices exist only when both halves act: a likely cause of the "
            "interaction" + (
                ", and the two r_disc terms alone, nothing else, cost "
                f"{_pp(*cost['mlp_jart_recommended_rdisc'])}."
                if "mlp_jart_recommended_rdisc" in cost else ", not isolated here."))
    if "mlp_jart_recommended_d2d_rdisc" in cost:
        m, lo, hi = cost["mlp_jart_recommended_d2d_rdisc"]
        verdict = ("it raises the accuracy (the interval excludes 0)" if hi < 0 else
                   "it costs accuracy (the interval excludes 0)" if lo > 0 else
                   "its interval includes 0, which does not show that it costs nothing")
        nominal = _jart_set_steps("jart:noise_free", 1)[0]
        steps = _jart_set_steps("jart:d2d_rdisc_realistic") / nominal
        spread = jart.PRESETS["d2d_rdisc_realistic"]["d2d"]["rdisc"]
        sigma, bounds = spread["sigma"], spread["bounds"]
        text.append(f"The study's worst single imperfection, device-to-device variation of "
                    f"the disc radius, costs {m:+.2f} [{lo:+.2f}, {hi:+.2f}] points here: "
                    f"{verdict}. Under memsim's rule pulses are counted in the nominal "
                    f"device's step. With this variation (r_disc drawn with σ = {sigma:.0%} "
                    f"and clipped to [{bounds[0]:g}, {bounds[1]:g}] nm, so most devices sit at "
                    "a bound), one SET pulse at w = 0 "
                    f"moves {np.mean(steps > 2):.0%} of 20,000 devices by more than twice "
                    f"the nominal step (median {np.median(steps[steps > 2]):.1f}×: small discs "
                    f"heat more) and {np.mean(steps < 0.5):.0%} by less than half of it "
                    f"(median {np.median(steps[steps < 0.5]):.2f}×); the mean step is "
                    f"{steps.mean():.1f}× nominal. The fast weights learn at a much higher "
                    "rate than the rule assumes, and this network, not trained to convergence "
                    "at lr 0.05, can gain from that. The study's claim is about the kit's "
                    "rule, which is not run at this scale here.")
    text += _jart_terms_alone(root) + _jart_rdisc_wider(root)
    return lines + ([" ".join(text), ""] if text else [])


def _jart_terms_alone(root: Path) -> list[str]:
    """What the on-record ablation of realistic mixed's terms, each alone at the published
    scale, adds to the noise-cost table: how many of them are shown to cost accuracy."""
    out = root / "ablate_jart_realistic"
    if not (out / "ranking.csv").exists():
        return []
    rank = pd.read_csv(out / "ranking.csv")
    table = pd.read_csv(out / "ablation.csv").set_index("variant")
    costly = rank[rank["gain_ci_low"] > 0]["variant"].tolist()
    gains = rank[rank["gain_ci_high"] < 0]["variant"].tolist()
    f = table.loc["full"]
    spec = yaml.safe_load((out / "ablation_spec.yaml").read_text())
    bounds_alone = any("w_bounds" in ((v.get("device") or {}).get("d2d") or {})
                       for v in spec["variants"] if isinstance(v.get("device"), dict))
    epochs = spec["base"]["training"]["epochs"]
    return [f"{len(rank)} terms of realistic mixed, each alone, {epochs} epochs, in one "
            "ablation (`ablate_jart_realistic`, Larger runs on record"
            + ("" if bounds_alone else "; the device-to-device spread of the weight bounds "
               "is not run alone") + "): "
            + (f"{len(costly)} shown to cost accuracy ({', '.join(costly)})" if costly
               else "none is shown to cost accuracy")
            + (f", {len(gains)} to raise it ({', '.join(gains)})" if gains else "")
            + f"; all of them together cost {_full_cost(f)} there"
            + (". Under memsim's rule no term alone is shown to cost accuracy, though each "
               "could cost up to the top of its interval (at most "
               f"{rank['gain_ci_high'].max():+.2f} pp); together they are shown to."
               if not costly and -f["diff_none_ci_high"] > 0 else ".")]


WIDER_ABLATIONS = ("ablate_jart_full", "ablate_jart_wide")  # on record, most complete first


def _jart_rdisc_wider(root: Path) -> list[str]:
    """The disc radius's device-to-device spread at the study's wider settings: what each
    costs against the noise-free device and, where an on-record ablation also holds the other
    parameters' wider settings, where it ranks among them."""
    ranked = next((root / n for n in WIDER_ABLATIONS if (root / n / "ranking.csv").exists()),
                  None)
    out = ranked or root / "ablate_jart_rdisc"
    if not (out / "ranking.csv").exists():
        return []
    rank = pd.read_csv(out / "ranking.csv")
    wide = rank[rank["variant"].isin(["d2d_rdisc_30", "d2d_rdisc_unbounded"])]
    if wide.empty:
        return []
    costs = "; ".join(f"`{r['variant']}` {_pp(r['gain_pp'], r['gain_ci_low'], r['gain_ci_high'])}"
                      for _, r in wide.sort_values("variant").iterrows())
    head = ("At the study's wider spreads of the disc radius, alone on the noise-free device "
            f"(`{out.name}`, Larger runs on record), the same variation costs: {costs}.")
    if ranked is None:
        return [head + " Whether it is the worst single imperfection at those settings needs "
                "the other parameters' settings of the same width, not run at this scale."]
    first = int(wide["rank"].min())
    above = rank[rank["rank"] < first]
    if above.empty:
        rest = rank[~rank["variant"].isin(wide["variant"])]
        resolved = rest.empty or bool((rest["vs_top_ci_high"] < 0).all())
        tail = (f" Among the {len(rank)} single imperfections of that ablation it ranks "
                "first, and its lead over every other " + ("excludes 0." if resolved else
                                                            "is not resolved."))
    else:
        lead = [f"`{r['variant']}` {_pp(r['gain_pp'], r['gain_ci_low'], r['gain_ci_high'])}"
                for _, r in above.iterrows()]
        r = wide[wide["rank"] == first].iloc[0]
        gap = _pp(-r["vs_top_pp"], -r["vs_top_ci_high"], -r["vs_top_ci_low"])
        tail = (f" Among the {len(rank)} single imperfections of that ablation its costlier "
                f"setting ranks {first}: {len(above)} cost more on average ("
                + "; ".join(lead) + f"), and the first's lead over it is {gap}"
                + (" (it excludes 0)." if r["vs_top_ci_high"] < 0 else
                   ", an interval that includes 0."))
    return [head + tail + _jart_rdisc_walks(rank) + _jart_other_parameters(rank)]


def _jart_other_parameters(rank: pd.DataFrame) -> str:
    """Whether any setting of the parameters other than the disc radius (l_disc, N_discmax,
    N_discmin, direct or slope) is shown to cost, against the r_disc settings that do."""
    others = rank[rank["variant"].str.match(r"(d2d|c2c)_(ldisc|ndiscmax|ndiscmin)")]
    rdisc = rank[rank["variant"].str.match(r"(d2d|c2c)_rdisc")]
    if others.empty:
        return ""
    costly = others[others["gain_ci_low"] > 0]["variant"].tolist()
    n = len(others)
    text = (f" The {n} setting{'s' if n > 1 else ''} of l_disc, N_discmax and N_discmin there "
            "cost between "
            f"{others['gain_pp'].min():+.2f} and {others['gain_pp'].max():+.2f} pp, "
            + (f"{len(costly)} shown to cost ({', '.join(costly)})" if costly
               else "none shown to cost"))
    if not costly and (rdisc["gain_ci_low"] > 0).any():
        text += ("; under memsim's rule the disc radius is the one parameter whose noise is "
                 "shown to cost accuracy")
    return text + "."


def _jart_rdisc_walks(rank: pd.DataFrame) -> str:
    """What the cycle-to-cycle r_disc walks of a ranking cost, next to the smallest disc each
    lets a nominal device reach and one SET pulse's weight change there."""
    from .devices import jart
    from .devices.registry import parse_device

    parts = []
    nominal = _jart_set_step_at(jart.R_DISC * 1e9)
    walks = rank[rank["variant"].str.match(r"c2c_rdisc_\d+$")]
    walks = walks.iloc[np.argsort([int(v.rsplit("_", 1)[1]) for v in walks["variant"]])]
    for _, r in walks.iterrows():
        walk = parse_device(f"jart:{r['variant']}").load().population(1).c2c["rdisc"]
        radius = jart.R_DISC * 1e9 * (1 + walk["bounds"][0])
        step = _jart_set_step_at(radius)
        parts.append(f"at {walk['std']:.0%} (down to {radius:g} nm, where one SET pulse at "
                     f"w = 0 moves the weight by {step:+.3f}, {step / nominal:.1f}× nominal) "
                     f"it costs {_pp(r['gain_pp'], r['gain_ci_low'], r['gain_ci_high'])}")
    if not parts:
        return ""
    return (" The cycle-to-cycle walk of the disc radius, bounded at the nominal radius "
            "times (1 ± its setting) and redrawn after every pulse a device fires, makes each "
            "pulse's step a draw from that range: " + "; ".join(parts) + ".")


def _jart_pulses(pop, w0: float = 0.0, is_set: bool = True, pulses: int = 1) -> np.ndarray:
    """Each device of a JART population set to weight ``w0`` (N written directly, as the
    reference figures are made), then pulsed: its weight change."""
    from .devices import jart

    pop.n.fill_(float(jart.n_of_weight(w0)))
    pop._sync(None)
    start = pop.weights().clone()
    pop.pulse_all("set" if is_set else "reset", pulses)
    return (pop.weights() - start).numpy()


def _jart_set_step_at(radius_nm: float) -> float:
    """The weight change of one SET pulse at w = 0 on a device with this disc radius."""
    import math

    import torch

    from .devices import jart

    pop = jart.JartPopulation(1, {}, {}, True, dtype=torch.float64)
    pop.area.fill_(math.pi * (radius_nm * 1e-9) ** 2)
    return float(_jart_pulses(pop)[0])


def _jart_set_steps(ref: str, devices: int = 20000) -> np.ndarray:
    """The weight change of one SET pulse at w = 0 on each of ``devices`` devices."""
    import torch

    from .devices.registry import parse_device

    pop = parse_device(ref).load().population(devices, seed=0, dtype=torch.float64)
    return _jart_pulses(pop)


def _jart_window_gaps(ref, devices: int = 20000) -> tuple[float, float]:
    """How far the SET and RESET window functions, 1 - (N / N_discmax)^10 and
    1 - (N_discmin / N)^10, fall below 1 anywhere in the N range of this device's population
    (its own clipped bounds, N_discmax and N_discmin at the extremes their walks may reach)."""
    import torch

    from .devices.registry import parse_device

    pop = parse_device(ref).load().population(devices, seed=0, dtype=torch.float64)
    walk = {q: 1 + pop.c2c[q]["bounds"][i] for q, i in (("ndiscmax", 0), ("ndiscmin", 1))
            if q in pop.c2c}
    ndmax = pop.ndiscmax * walk.get("ndiscmax", 1.0)
    ndmin = pop.ndiscmin * walk.get("ndiscmin", 1.0)
    set_gap = float(((pop.n_hi / ndmax) ** 10).max())
    reset_gap = float(((ndmin / pop.n_lo) ** 10).max())
    return set_gap, reset_gap


def _jart_inert(table: pd.DataFrame, variants: dict) -> str:
    """Variants that leave every seed's accuracy as on the noise-free device, explained by the
    window functions, the only place N_discmax and N_discmin enter the physics."""
    rows = table[(table["variant"] != "none") & (table["diff_none_pp"] == 0)
                 & (table["diff_none_ci_low"] == 0) & (table["diff_none_ci_high"] == 0)]
    inert = [v for v in rows["variant"] if v in variants]
    if not inert:
        return ""
    gaps = [_jart_window_gaps(variants[v]) for v in inert]
    return (" " + ", ".join(f"`{v}`" for v in inert) + " leave every seed's accuracy as on the "
            "noise-free device: N_discmax and N_discmin enter only the window functions "
            "(the RESET current and the read use the nominal N_discmin), and within each "
            "device's clipped N range these fall below 1 by at most "
            f"{max(g[0] for g in gaps):.1e} (SET, (N / N_discmax)^10) and "
            f"{max(g[1] for g in gaps):.1e} (RESET, (N_discmin / N)^10) on these devices, "
            "a relative change of a pulse's step too small, in these runs, to move N as "
            "float32 stores it between pulses.")


def _pp(m, lo, hi) -> str:
    return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}] pp"


def _full_cost(full: pd.Series) -> str:
    """What the full device costs against `none`, from its row of an ablation table."""
    return _pp(-full["diff_none_pp"], -full["diff_none_ci_high"], -full["diff_none_ci_low"])


def _claim_check(rank: pd.DataFrame, seeds: int) -> str:
    """The HfOx study's claim (device-to-device variability is the most damaging imperfection)
    checked against an ablation's ranking of single removals, with its uncertainty."""
    if rank.empty or "d2d" not in set(rank["switched off"]):
        return "the ablation has no single-removal variant for d2d: the claim is not tested."
    d = rank[rank["switched off"] == "d2d"].iloc[0]
    gain = _pp(d["gain_pp"], d["gain_ci_low"], d["gain_ci_high"])
    if d["rank"] == 1:
        others = rank[rank["rank"] > 1]
        open_ = others[~(others["vs_top_ci_high"] < 0)]
        if d["gain_ci_low"] > 0 and open_.empty:
            return (f"**supported.** Removing d2d gains the most, {gain}, and its lead over "
                    f"every other removal excludes 0 ({seeds} seeds, paired by seed).")
        ties = ", ".join(f"{r['switched off']} (difference "
                         f"{_pp(r['vs_top_pp'], r['vs_top_ci_low'], r['vs_top_ci_high'])})"
                         for _, r in open_.iterrows())
        return (f"**consistent, not established.** Removing d2d gains the most ({gain}; first "
                f"in {d['p_first']:.0%} of bootstrap resamples of the seeds)"
                + (f", but with {seeds} seeds its lead over {ties} is not resolved"
                   if ties else "")
                + ("" if d["gain_ci_low"] > 0 else "; its own gain's interval includes 0")
                + ".")
    top = rank.iloc[0]
    vs = _pp(d["vs_top_pp"], d["vs_top_ci_low"], d["vs_top_ci_high"])
    if d["vs_top_ci_high"] < 0:
        return (f"**not supported.** Removing {top['switched off']} gains the most "
                f"({top['gain_pp']:+.2f} pp); removing d2d gains {gain}, {vs} less (the "
                "interval excludes 0).")
    return (f"**not supported at this scale, not excluded.** Removing {top['switched off']} "
            f"ranks first by mean gain ({top['gain_pp']:+.2f} pp); removing d2d gains {gain}, {vs} "
            "against it: the order of the two is not resolved.")


def _jart_claim_check(rank: pd.DataFrame, seeds: int, table: pd.DataFrame) -> str:
    """The JART study's claim (device-to-device variation of the disc radius is the worst single
    imperfection) against a ranking of single imperfections added alone. Where the
    imperfection-free network trails the full device, the run is too short for the claim:
    noise that makes pulses larger speeds up early learning, and costs measure that."""
    rdisc = rank[rank["variant"].str.startswith("d2d_rdisc")] if not rank.empty else rank
    if rdisc.empty:
        return "the ablation has no r_disc device-to-device variant: the claim is not tested."
    acc = table.set_index("variant")["acc_pct"]
    if acc["none"] < acc["full"]:
        best = rdisc.sort_values("rank").iloc[0]
        return (f"**not tested at this scale.** The imperfection-free network "
                f"({acc['none']:.1f} %) trails the realistic device ({acc['full']:.1f} %): the "
                "network is still early in training, where noise that enlarges the pulses "
                "(smaller discs heat more) speeds learning up, so a cost here measures learning "
                f"speed, not damage (`{best['variant']}`: "
                f"{_pp(best['gain_pp'], best['gain_ci_low'], best['gain_ci_high'])}). The "
                "claim needs the study's 30 epochs (`SCALE=full`; runs at that scale are in "
                "the JART section's noise-cost table and, where kept, under Larger runs on "
                "record).")
    best = rdisc.sort_values("rank").iloc[0]
    cost = _pp(best["gain_pp"], best["gain_ci_low"], best["gain_ci_high"])
    if len(rdisc) == len(rank):
        return (f"**not tested here**: the ablation holds no other single imperfection to "
                f"rank against. `{best['variant']}` alone costs {cost}.")
    if best["rank"] == 1:
        others = rank[(rank["rank"] > 1) & ~rank["variant"].str.startswith("d2d_rdisc")]
        open_ = others[~(others["vs_top_ci_high"] < 0)]
        if best["gain_ci_low"] > 0 and open_.empty:
            return (f"**supported.** `{best['variant']}` alone costs the most, {cost}, and its "
                    f"lead over every other imperfection excludes 0 ({seeds} seeds).")
        return (f"**consistent, not established.** `{best['variant']}` alone costs the most "
                f"({cost}), but with {seeds} seeds its lead over "
                + (", ".join(f"`{v}`" for v in open_["variant"]) or "the others")
                + " is not resolved" + ("" if best["gain_ci_low"] > 0 else
                                        "; its own cost's interval includes 0") + ".")
    top = rank.iloc[0]
    vs = _pp(best["vs_top_pp"], best["vs_top_ci_low"], best["vs_top_ci_high"])
    verdict = "**not supported.**" if best["vs_top_ci_high"] < 0 else \
        "**not supported at this scale, not excluded.**"
    top_open = "" if top["gain_ci_low"] > 0 else ", an interval that includes 0"
    gain = " (it raises the accuracy)" if best["gain_ci_high"] < 0 else ""
    by_variant = table.set_index("variant")
    together = ""
    if "diff_none_pp" in by_variant:
        f = by_variant.loc["full"]
        together = (" All of the full device's imperfections together cost "
                    f"{_full_cost(f)} against `none`.")
    return (f"{verdict} `{top['variant']}` ranks first by its mean cost "
            f"({top['gain_pp']:+.2f} pp{top_open}); `{best['variant']}` costs {cost}{gain}, "
            f"{vs} against the first.{together}")


def _ablation_section(ablations: list[Path]) -> list[str]:
    lines = []
    for out in ablations:
        out = Path(out)
        table = pd.read_csv(out / "ablation.csv")
        rank = pd.read_csv(out / "ranking.csv") if (out / "ranking.csv").stat().st_size > 1 \
            else pd.DataFrame()
        seeds = int(table["seeds"].max())
        doc = yaml.safe_load((out / "ablation_spec.yaml").read_text())
        base = doc["base"]
        net = base["network"]
        layers = (f"conv {' '.join(map(str, net['conv']))}, " if "conv" in net else "") + \
            f"hidden {net['hidden']}"
        setting = (f"Base: a {net['kind']} ({layers}) on `{base['device']['kind']}` devices, "
                   f"{base['dataset']} ({base['subset'] or 60000} training images), "
                   f"{base['training']['epochs']} epochs, batch {base['training']['batch']}."
                   + (" Fashion-MNIST stands in for the study's CIFAR-10, which no package "
                      "registry here provides." if base["dataset"] == "fashion" else ""))
        # rankings written before the "alone" mode existed have no mode column: removals
        alone = not rank.empty and rank.get("mode", pd.Series(["removal"])).iloc[0] == "alone"
        if alone and base["device"]["kind"] != "jart":
            head = ("Ranking of single imperfections, each alone on the imperfection-free "
                    "device (cost = accuracy of `none` minus the variant's):")
            claim = ""
        elif alone:
            head = ("Ranking of single imperfections, each alone on the imperfection-free "
                    "device (cost = accuracy of `none` minus the variant's):")
            claim = ("The study's claim, *device-to-device variation of the disc radius is the "
                     "worst single imperfection*: " + _jart_claim_check(rank, seeds, table))
            claim += _jart_inert(table, {v["name"]: v["device"] for v in
                                         doc.get("variants", []) if v.get("device")})
            algo = base["training"].get("algorithm") or {}
            algo = algo.get("kind") if isinstance(algo, dict) else algo
            if algo != "pulse_trains":
                claim += (f" The update here is memsim's rule (`{algo}`); the study "
                          "ranked its imperfections under the kit's pulse-train rule, so this "
                          "tests the device's noise under another update, not the study's "
                          "runs.")
        else:
            head = ("Ranking of single removals (gain = accuracy with the imperfection off "
                    "minus the full device):")
            claim = ("The study's claim, *device-to-device variability is the most damaging "
                     "imperfection*: " + _claim_check(rank, seeds))
        lines += [f"## Ablation: `{out.name}`", "", setting, "",
                  (out / "ablation.md").read_text().split("\n", 2)[2].strip(), "",
                  f"![ablation]({out.name}/ablation.png)", "", head, "",
                  (out / "ranking.md").read_text().strip(), "", claim, ""]
    return lines


def _on_record(root: Path, ablations: list[Path]) -> list[str]:
    """Larger runs kept in results/ that the reduced reproduce does not rerun: full-scale
    trainings (`memsim train`, the whole training set) and other ablations."""
    runs = []
    for path in sorted(root.glob("train/*/summary.csv")):
        summary = pd.read_csv(path)
        if int(summary["subset"].iloc[0]) >= 60000:
            r = summary.iloc[0]
            final, last_k = (", ".join(f"{100 * v:.2f}" for v in summary[c])
                             for c in ("final_test_acc", "last_k_test_acc"))
            per = "" if len(summary) == 1 else (
                f", {len(summary)} seeds ({', '.join(map(str, summary['seed']))}), each")
            minutes = ", ".join(f"{v / 60:.1f}" for v in summary["seconds"])
            runs.append(f"- `train/{path.parent.name}`: {r['network']} on {r['device']}, "
                        f"{int(r['epochs'])} epochs on all {int(r['subset'])} training "
                        f"images{per}: final test accuracy {final} %, mean of the last "
                        f"{int(r['k'])} epochs {last_k} % ({minutes} min on {r['compute']}).")
    known = {Path(a).name for a in ablations}
    extra = [p.parent for p in sorted(root.glob("*/ablation.csv")) if p.parent.name not in known]
    if not runs and not extra:
        return []
    lines = ["## Larger runs on record", "",
             "Written by `memsim train experiments/NAME.yaml` and `memsim ablate "
             "experiments/NAME.yaml` (each directory keeps its spec), not rerun by the reduced "
             "`make reproduce`.", ""]
    lines += runs + ([""] if runs else [])
    # each subset is named with the largest ablation holding it, itself never a subset
    within = {a: max((b for b in extra if b != a and _runs_within(a, b)), default=None,
                     key=lambda b: len(pd.read_csv(b / "runs.csv"))) for a in extra}
    shown = [a for a in extra if within[a] is None]
    lines += [ln.replace("## Ablation:", "### Ablation:") for ln in _ablation_section(shown)]
    parts = [f"`{a.name}` ({len(pd.read_csv(a / 'ablation.csv'))} variants, in "
             f"`{within[a].name}`)" for a in extra if within[a] is not None]
    if parts:
        lines += ["Subsets of a larger ablation above, run first (the same network, seeds and "
                  "training batches, so their figures are the larger one's): "
                  + ", ".join(parts) + ".", ""]
    return lines


def _runs_within(small: Path, big: Path) -> bool:
    """Whether every run of ablation ``small`` is a run of the larger ablation ``big``: the
    same base network and, variant by variant and seed by seed, the same outcome."""
    specs = [yaml.safe_load((p / "ablation_spec.yaml").read_text()) for p in (small, big)]
    if specs[0]["base"] != specs[1]["base"]:
        return False
    cols = ["variant", "seed", "acc_pct", "pulses"]
    runs = [pd.read_csv(p / "runs.csv") for p in (small, big)]
    if len(runs[0]) >= len(runs[1]) or not all(set(cols) <= set(r) for r in runs):
        return False
    both = runs[0][cols].merge(runs[1][cols].drop_duplicates(), how="left", indicator=True)
    return bool((both["_merge"] == "both").all())


TOLERANCE_PP = 1.0  # an accuracy loss a design review would still call "tolerated"


def _tolerated(g: pd.DataFrame) -> str:
    """The largest scale up to which every tested scale keeps the mean accuracy within
    TOLERANCE_PP of float, as text."""
    g = g.sort_values("scale")
    ok = (g["accuracy_change_pp"] >= -TOLERANCE_PP).to_numpy()
    bad = np.flatnonzero(~ok)
    last = len(g) - 1 if not len(bad) else bad[0] - 1
    if last < 0:
        return "none tested (already at the smallest scale)"
    top = g["scale"].iloc[last]
    tail = "" if last == len(g) - 1 else \
        f"; at {g['scale'].iloc[last + 1]:g} the mean change is " \
        f"{g['accuracy_change_pp'].iloc[last + 1]:+.2f} pp"
    return f"up to {top:g}{' (the largest tested)' if last == len(g) - 1 else ''}{tail}"


def _which_bits(t: pd.DataFrame, out: Path) -> list[str]:
    """Plain float32 against float32 with sign and exponent in reliable cells, in every cell
    (read time, scale) where the plain coding reads bit errors: the same bit error rate, very
    different damage."""
    plain = t[t["coding"] == "float_bits:float32"]
    guarded = t[t["coding"] == "float_bits:float32+protect_sign_exponent"]
    if not len(plain) or not len(guarded):
        return []
    keys = ["lut", "time", "scale"]
    both = plain.merge(guarded, on=keys, suffixes=("", "_protected"))
    both = both[both["ber"] > 0].sort_values(["lut", "ber"])
    if not len(both):
        return ["**Which bits matter:** no bit errors at any tested scale and read time.", ""]
    rows = pd.DataFrame({
        "LUT": both["lut"], "read time (s)": both["time"].map("{:g}".format),
        "scale": both["scale"].map("{:g}".format),
        "bit error rate": both["ber"].map("{:.2g}".format),
        "float32: relative error": both["relative_error"].map("{:.3g}".format),
        "float32: Δ accuracy (pp)": both["accuracy_change_pp"].map("{:+.2f}".format),
        "protected: relative error": both["relative_error_protected"].map("{:.3g}".format),
        "protected: Δ accuracy (pp)": both["accuracy_change_pp_protected"].map("{:+.2f}".format)})
    lines = ["**Which bits matter** (float32, one cell per bit, against float32 with the sign "
             "and exponent bits in reliable cells; every read time and scale at which the "
             "plain coding reads bit errors; means over seeds):", "", markdown(rows), ""]
    lines.append(f"Worst mean accuracy change over these cells: plain "
                 f"{both['accuracy_change_pp'].min():+.2f} pp, protected "
                 f"{both['accuracy_change_pp_protected'].min():+.2f} pp; largest relative "
                 f"error of the layer output: plain {both['relative_error'].max():.3g}, "
                 f"protected {both['relative_error_protected'].max():.3g}.")
    bits_path = out / "ber_by_bit.csv"
    if bits_path.exists():
        b = pd.read_csv(bits_path)
        b = b[b["coding"] == "float_bits:float32"]
        worst = both.iloc[-1]
        cell = b[(b["lut"] == worst["lut"]) & (b["time"] == worst["time"])
                 & (b["scale"] == worst["scale"])]
        if len(cell):
            by_field = cell.groupby("field")["ber"].mean()
            rates = ", ".join(f"{f} {by_field[f]:.2g}" for f in ("sign", "exponent", "mantissa")
                              if f in by_field)
            lines.append("Per field in the cell with the most errors (bit error rate): " + rates
                         + " — bits of one weight share the two states, so their "
                         "rates differ only by how often each bit is a 0 or a 1.")
    lines.append("")
    return lines


def _inference_section(root: Path, inferences: list[Path]) -> list[str]:
    """§ memsim infer: which bits matter, how much variability is tolerated, read time."""
    lines = []
    for out in inferences:
        out = Path(out)
        table_path = out / "inference.csv"
        if not table_path.exists():
            continue
        t = pd.read_csv(table_path)
        md = (out / "inference.md").read_text().splitlines()
        float_line = next((x for x in md if "test accuracy in float" in x), "")
        seeds = int(t["seeds"].max())
        lines += [f"### Inference: `{out.name}`", "", float_line, "",
                  f"Tables: `{_rel(out, root)}/inference.md` (every cell with 95 % t-intervals "
                  f"over {seeds} seeds), `draws.csv`, `ber_by_bit.csv`, `lut_states.csv`; "
                  "figures `accuracy_vs_scale.png`, `relative_error_vs_scale.png`, "
                  "`ber_by_bit.png`, `accuracy_vs_time.png`.", ""]
        first = t["time"] == t.groupby("lut")["time"].transform("min")
        latest = t["time"] == t.groupby("lut")["time"].transform("max")
        lines += ["**Variability tolerated** (scale multiplies the measured spread; tolerated = "
                  f"mean accuracy within {TOLERANCE_PP:g} pp of float at that scale and every "
                  "smaller one; at the reference read time and, where the LUT has later reads, "
                  "at the latest, with readers calibrated at the reference time):", ""]
        for (lut, coding), g in t[first].groupby(["lut", "coding"], sort=False):
            later = t[latest & (t["lut"] == lut) & (t["coding"] == coding)]
            text = f"- {lut} × {coding}: read at {g['time'].iloc[0]:g} s, {_tolerated(g)}"
            if later["time"].iloc[0] != g["time"].iloc[0]:
                text += f"; read at {later['time'].iloc[0]:g} s, {_tolerated(later)}"
            lines.append(text + ".")
        lines.append("")
        lines += _which_bits(t, out)
        times = t.groupby(["lut", "coding"])["time"].nunique()
        if (times > 1).any():
            s1 = t[t["scale"] == (1.0 if (t["scale"] == 1.0).any() else t["scale"].min())]
            lines += [f"**Read time** (scale {s1['scale'].iloc[0]:g}, the measured spread; "
                      "readers calibrated at the reference time): mean accuracy change vs "
                      "float, pp, at each read time:", ""]
            for (lut, coding), g in s1.groupby(["lut", "coding"], sort=False):
                if g["time"].nunique() < 2:
                    continue
                steps = ", ".join(f"{r.time:g} s: {r.accuracy_change_pp:+.2f}"
                                  for r in g.sort_values("time").itertuples())
                lines.append(f"- {lut} × {coding}: {steps}")
            lines.append("")
    if lines:
        lines = ["## Inference on measured states (`memsim infer`)", "",
                 "The fourth study (literature §4: layer-1 weights of a CNN coded in binary "
                 "floating point, one device per bit, each bit read from a measured LRS/HRS "
                 "distribution; relative error of the layer output) has no public numbers and "
                 "its AlexNet/ImageNet setting cannot be had here: memsim runs it on a LeNet "
                 "trained in float on MNIST, with measured (Levy techC, 32 write-verified "
                 "levels, reads up to 1e5 s) and generated (synaptogen HfOx 1T1R) states.",
                 ""] + lines
    return lines


def write_results_readme(root: Path, sweeps: list[Path], scale: str, seconds: float,
                         ablations: list[Path] | None = None,
                         inferences: list[Path] | None = None,
                         physics: list[Path] | None = None,
                         kept: list[Path] | None = None) -> None:
    """``physics``: sweeps on physics-model truths, reported on their own (not in the study's
    summary); ``kept``: those of them this run did not redo."""
    import torch

    lines = ["# memsim results", "",
             f"Written by `make reproduce` (scale: **{scale}**) in {seconds / 60:.1f} minutes "
             f"on {torch.get_num_threads()} CPU threads ({platform.machine()}, torch "
             f"{torch.__version__}{', CUDA' if torch.cuda.is_available() else ''}). "
             "Regenerate with `make reproduce`; `make reproduce SCALE=full` runs the full "
             "specs of `experiments/` (meant for a GPU).", "",
             "The study reproduced is *Device Modeling Bias in ReRAM-based Neural Network "
             "Simulations* (Yousuf et al., JETCAS 2023): jump tables fitted from N measured "
             "points, by binning or Optuna-optimized binning, promise an accuracy that differs "
             "from the true device's; binning behaves unpredictably at low N, over- and "
             "under-promising; device-level metrics are proposed to track the bias. memsim "
             "adds a smooth statistical model (kernel-smoothed conditional distributions, "
             "cross-validated), an Optuna search over both, the "
             "truth itself as a control, and confidence intervals.", ""]
    main = [s for s in sweeps if not Path(s).name.endswith(TWIN)]  # twins: their own panel
    if main:
        lines += _summary(main)
    lines += _fit_section(root)
    lines += _fidelity_section(root)
    lines += _train_section(root)
    lines += _grid_section(root)
    for i, out in enumerate(sweeps, start=3):
        lines += _sweep_section(root, Path(out), i)
    kept = {Path(k) for k in kept or []}
    for i, out in enumerate(physics or [], start=3 + len(sweeps)):
        lines += _sweep_section(root, Path(out), i, kept=Path(out) in kept)
    lines += _families_section([s for s in sweeps if not Path(s).name.endswith(TWIN)])
    lines += _miscalibration_section(root, sweeps)
    lines += _jart_section(root)
    lines += _ablation_section(ablations or [])
    lines += _on_record(root, ablations or [])
    lines += _inference_section(root, inferences or [])
    lines += ["## Scale", ""]
    for out in [*sweeps, *(physics or [])]:
        import yaml

        doc = yaml.safe_load((Path(out) / "sweep_spec.yaml").read_text())
        nets = ", ".join(f"{n['name']} ({n['training']['epochs']} epochs)"
                         for n in doc["networks"])
        lines.append(f"- `{Path(out).name}`: truths {', '.join(t['name'] for t in doc['truths'])}"
                     f"; N = {', '.join(map(str, doc['n']))}; {len(doc['data_seeds'])} data "
                     f"seeds × {len(doc['train_seeds'])} training seeds, "
                     f"{doc['reference_replicates']} noise replicates of each truth run; "
                     f"MNIST {doc['subset'] or 60000} training images; networks {nets}.")
    if scale == "reduced":
        lines += ["", "This is the reduced scale of `make reproduce`; `make reproduce "
                  "SCALE=full` runs the specs in `experiments/` as written (more seeds, all "
                  "truths, N up to 30,000, full MNIST, 10 epochs)."]
    lines.append("")
    write_text(root / "README.md", "\n".join(lines))
