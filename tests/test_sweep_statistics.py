"""Statistics of bias sweeps: variance-ratio intervals cover 1 when a table is the truth,
partial correlations remove the N confound, exceedance shares are calibrated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from memsim.sweep.statistics import (
    exceedance,
    partial_spearman,
    replicate_variance,
    table_units,
    variance_ratio,
)


def _simulated_cell(rng, between_sd: float, run_sd: float = 0.5, tables: int = 10,
                    seeds: int = 3, replicates: int = 4):
    """Accuracies (fractions) of fitted networks and of the truth's reference runs: each
    training seed has its own level; each run adds device noise of run_sd pp; each fitted
    table adds a bias drawn with between_sd pp."""
    level = rng.normal(90, 1.0, seeds)
    ref = pd.DataFrame([{"train_seed": s, "acc": (level[s] + rng.normal(0, run_sd)) / 100}
                        for s in range(seeds) for _ in range(replicates)])
    shift = rng.normal(0, between_sd, tables)
    fits = pd.DataFrame([{"data_seed": d, "train_seed": s,
                          "acc_fit": (level[s] + shift[d] + rng.normal(0, run_sd)) / 100}
                         for d in range(tables) for s in range(seeds)])
    return fits, ref


def test_variance_ratio_covers_one_when_the_table_is_the_truth():
    rng = np.random.default_rng(0)
    covered, ratios = 0, []
    reps = 200
    for _ in range(reps):
        fits, ref = _simulated_cell(rng, between_sd=0.0)
        var, dof = replicate_variance(ref)
        out = variance_ratio(table_units(fits, ref), var, dof, seeds=3)
        covered += out["sd_ratio_low"] <= 1 <= out["sd_ratio_high"]
        ratios.append(out["sd_ratio"])
    assert covered / reps >= 0.90  # nominal 95 %
    assert abs(np.median(ratios) - 1) < 0.15


def test_variance_ratio_sees_between_table_spread():
    rng = np.random.default_rng(1)
    fits, ref = _simulated_cell(rng, between_sd=3.0, tables=20)
    var, dof = replicate_variance(ref)
    out = variance_ratio(table_units(fits, ref), var, dof, seeds=3)
    assert out["sd_ratio_low"] > 1
    assert 1.5 < out["between_sd_pp"] < 5


def test_partial_spearman_removes_the_n_confound():
    rng = np.random.default_rng(2)
    rows = []
    for seed in range(10):
        for n in (100, 300, 1000, 3000, 10000):
            for _method in range(3):
                rows.append({"data_seed": seed, "n": n,
                             "metric": 1 / np.sqrt(n) * rng.lognormal(0, 0.2),
                             "abs_bias": 5 / np.sqrt(n) * rng.lognormal(0, 0.5)})
    cells = pd.DataFrame(rows)
    raw = cells["metric"].rank().corr(cells["abs_bias"].rank())
    part = partial_spearman(cells, "metric", boot=300)
    assert raw > 0.5  # pooled over N: strongly "associated"
    assert abs(part["partial_rho"]) < 0.15
    assert part["partial_low"] < 0 < part["partial_high"]
    # a metric that does track the bias within N keeps its partial correlation
    cells["tracking"] = cells["abs_bias"] * rng.lognormal(0, 0.3, len(cells))
    assert partial_spearman(cells, "tracking", boot=300)["partial_low"] > 0.5


def test_partial_spearman_removes_the_truth_confound():
    """Two truths differing in both the metric and |bias| (a noisy device is harder to fit
    and costs more) look associated when pooled; given the truth they are not."""
    rng = np.random.default_rng(3)
    rows = [{"data_seed": seed, "n": n, "truth": truth,
             "metric": level * rng.lognormal(0, 0.2), "abs_bias": level * rng.lognormal(0, 0.5)}
            for truth, level in (("quiet", 1.0), ("noisy", 8.0))
            for seed in range(10) for n in (300, 3000, 30000) for _method in range(4)]
    cells = pd.DataFrame(rows)
    assert cells["metric"].rank().corr(cells["abs_bias"].rank()) > 0.5
    part = partial_spearman(cells, "metric", boot=300)
    assert abs(part["partial_rho"]) < 0.15 and part["partial_low"] < 0 < part["partial_high"]
    # without the truth column the same cells pass for associated
    assert partial_spearman(cells.drop(columns="truth"), "metric", boot=0)["partial_rho"] > 0.5


def _design(gen, tables, seeds, reps, sd, bias=0.0):
    """Fitted tables (biased by ``bias`` pp) and the truth's replicate runs, accuracy in [0, 1]."""
    g = pd.DataFrame([{"data_seed": d, "train_seed": s,
                       "acc_fit": (90 + bias + sd * gen.standard_normal()) / 100}
                      for d in range(tables) for s in range(seeds)])
    ref = pd.DataFrame([{"train_seed": s, "acc": (90 + sd * gen.standard_normal()) / 100}
                        for s in range(seeds) for _ in range(reps)])
    return g, ref


def test_exceedance_counts_tables_against_the_truth_mean_per_seed():
    g = pd.DataFrame({"data_seed": [0, 0, 1, 1, 2, 2], "train_seed": [0, 1] * 3,
                      "acc_fit": [0.92, 0.93, 0.90, 0.89, 0.905, 0.90]})
    ref = pd.DataFrame({"train_seed": [0, 0, 1, 1], "acc": [0.90, 0.90, 0.90, 0.90]})
    out = exceedance(g, ref, 1.0, boot=200)
    # biases +2.5, -0.5, +0.25 pp: one over, none under
    assert out["p_over"] == pytest.approx(1 / 3) and out["p_under"] == 0
    assert out["p_over_low"] <= out["p_over"] <= out["p_over_high"]


def test_exceedance_intervals_cover_the_share_of_perfect_tables():
    """Perfect tables (no bias) measured over 2 seeds against 8 truth runs per seed: the share
    beyond +1 pp is 1 - Phi(1 / (sd / sqrt 2)). The tables share the truth's mean, so
    intervals that treat them as independent trials cover it too rarely; resampling both
    levels covers it at about the nominal rate."""
    gen = np.random.default_rng(1)
    sd, seeds = 2.0, 2
    true = 1 - stats.norm.cdf(1.0 / (sd / np.sqrt(seeds)))
    hits = []
    for k in range(300):
        g, ref = _design(gen, tables=10, seeds=seeds, reps=8, sd=sd)
        out = exceedance(g, ref, 1.0, boot=1000, seed=k)
        hits.append(out["p_over_low"] <= true <= out["p_over_high"])
    assert np.mean(hits) >= 0.9


def test_miscalibration_panel_pairs_the_twin_sweeps_by_fitted_table(tmp_path):
    """The twins train on the same tables: the difference is a t-interval over the tables'
    paired differences plus both truths' reference noise (Welch-Satterthwaite)."""
    from memsim.results_readme import _miscalibration_section

    keys = {"truth": "t", "network": "mlp", "method": "bin8", "n": 100}
    for name, biases in (("s", [-5.0, -3.0, -7.0]), ("s_dwtruth", [-1.0, 0.0, -2.0])):
        out = tmp_path / name
        out.mkdir()
        pd.DataFrame([{**keys, "data_seed": d, "train_seed": 0, "bias_pp": b}
                      for d, b in enumerate(biases)]).to_csv(out / "runs.csv", index=False)
        pd.DataFrame([{**keys, "bias_pp": np.mean(biases), "ci_low": -99, "ci_high": 99,
                       "reference_networks": 4}]).to_csv(out / "bias.csv", index=False)
        pd.DataFrame([{**keys, "run_sd_pp": 1.0, "train_seeds": 1}]).to_csv(
            out / "unpredictability.csv", index=False)
    # differences -4, -3, -5: mean -4, variance of the mean 1/3 (2 dof); each reference
    # mean adds 1 / 4 (3 dof)
    var = 1 / 3 + 0.25 + 0.25
    dof = var**2 / ((1 / 3) ** 2 / 2 + 2 * 0.25**2 / 3)
    half = stats.t.ppf(0.975, dof) * np.sqrt(var)
    text = "\n".join(_miscalibration_section(tmp_path, [tmp_path / "s",
                                                        tmp_path / "s_dwtruth"]))
    assert f"-4.00 [{-4 - half:+.2f}, {-4 + half:+.2f}]" in text
    assert "1 of 1 cells: bin8 N = 100 (-4.00 pp)" in text


def test_table_control_on_a_truth_with_device_state_reads_as_the_form_limit(tmp_path):
    """On a truth whose devices keep parameters of their own (JART with noise), the tabulated
    truth is not a control: the README says what its bias measures instead of counting how
    often it covers 0; on a memoryless truth it stays a control."""
    from memsim.results_readme import _sweep_facts, _truths_with_state

    (tmp_path / "sweep_spec.yaml").write_text(
        "truths:\n- {name: quiet, ref: 'jart:noise_free'}\n"
        "- {name: noisy, ref: 'jart:realistic_mixed'}\n")
    with_state = _truths_with_state(tmp_path)
    assert with_state == {"noisy"}
    cols = ["truth", "network", "method", "n", "bias_pp", "ci_low", "ci_high"]
    bias = pd.DataFrame([[t, "mlp", m, n, b, b - 1, b + 1]
                         for t, b in (("quiet", 0.2), ("noisy", 6.0))
                         for m in ("bin8", "truth-table") for n in (300, 3000)], columns=cols)
    corr = pd.DataFrame(columns=["network", "metric", "spearman_abs_bias"])
    text = "\n".join(_sweep_facts(bias, corr, {"truth-table"}, frozenset(with_state)))
    noisy, quiet = text.split("**quiet, mlp**")
    assert "Control `truth-table`: 2 of 2 intervals cover 0" in quiet
    assert "is not a control on this truth" in noisy and "Control `truth-table`" not in noisy
    assert "+6.0 [+5.0, +7.0] pp" in noisy and "2 of 2 intervals exclude 0" in noisy
    # the sweep's own bias table says so under the table, for that truth only
    from memsim.sweep.report import bias_markdown

    table = bias.assign(ci_unit="data seed", units=10, networks=10, reference_networks=8,
                        acc_fit_pct=80.0, acc_truth_pct=79.0)
    assert "On noisy, `truth-table` is not a control" in bias_markdown(table, with_state)
    assert "not a control" not in bias_markdown(table)
