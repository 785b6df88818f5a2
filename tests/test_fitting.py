"""Fitting: consistency with N, cross-validated Optuna search, resumable studies, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from memsim.fit.binning import fit_binning
from memsim.fit.optuna_binning import OptunaSettings, fit_optuna
from memsim.fit.smooth import SmoothSettings, fit_smooth, gaussian_nll, spline_basis
from memsim.metrics import compare_models
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic, synthetic_from_spec

SIZES = (300, 3000, 30000)


def _distances(model, truth):
    rows = compare_models(model, truth, pulses=20, devices=50)
    return (np.mean([r["ks"] for r in rows]), np.mean([r["w1_rel"] for r in rows]))


@pytest.fixture(scope="module")
def consistency():
    truth = load_synthetic("asymmetric")
    fits = {  # binning as a user would: bins growing like N^(1/3), equal-count edges
        "binning": lambda d: fit_binning(d, round(d.n("set") ** (1 / 3)), "count"),
        "optuna": lambda d: fit_optuna(d, OptunaSettings(trials=25, progress=False), seed=1)[0],
        "smooth": lambda d: fit_smooth(d, SmoothSettings(max_df=5, max_df_std=4))[0],
    }
    out = {}
    for n in SIZES:
        data = sample_points(truth, n, seed=n)
        for name, f in fits.items():
            out[name, n] = _distances(f(data), truth)
    return out


@pytest.mark.parametrize("method", ["binning", "optuna", "smooth"])
def test_distances_to_the_truth_shrink_with_n(consistency, method):
    ks = [consistency[method, n][0] for n in SIZES]
    w1 = [consistency[method, n][1] for n in SIZES]
    assert ks[0] > ks[1] > ks[2], ks
    assert w1[0] > w1[1] > w1[2], w1
    limit = {"binning": 0.05, "optuna": 0.035, "smooth": 0.01}[method]
    assert ks[2] < limit


def test_truncated_likelihood_gradient():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 300)
    y = rng.normal(0.2, 0.5, 300)
    bm, bs = spline_basis(x, 4), spline_basis(x, 3)
    bounds = (-0.4 - x, 1.2 - x)
    theta = rng.normal(0, 0.3, 7)
    for b in (None, bounds):
        val, grad = gaussian_nll(theta, bm, bs, y, b, ridge=1e-3)
        num = optimize.approx_fprime(theta, lambda t, b=b: gaussian_nll(t, bm, bs, y, b,
                                                                        ridge=1e-3)[0], 1e-6)
        np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-3)


def test_optuna_scores_held_out_data_not_the_fit():
    """A device whose dG does not depend on G: in-sample CRPS would reward many bins, the
    cross-validated objective must not."""
    flat = synthetic_from_spec({
        "unit": "uS", "g_min": 1, "g_max": 10,
        "set": {"mean": {"kind": "constant", "value": 0.0},
                "std": {"kind": "constant", "value": 0.01}},
        "reset": {"mean": {"kind": "constant", "value": 0.0},
                  "std": {"kind": "constant", "value": 0.01}}})
    data = sample_points(flat, 2000, seed=3)
    table, records = fit_optuna(data, OptunaSettings(trials=30, progress=False), seed=0)
    best = table.metadata["params"]["best"]
    assert best["set"]["bins"] <= 8 and best["reset"]["bins"] <= 8
    assert max(r["bins"] for r in records) > 20  # the search did look at many bins


def test_optuna_study_resumes_from_sqlite(tmp_path):
    data = sample_points(load_synthetic("softbounds"), 400, seed=0)
    db = tmp_path / "study.db"
    settings = OptunaSettings(trials=4, progress=False, storage=str(db), study_name="s")
    _, first = fit_optuna(data, settings, seed=0)
    settings.trials = 7
    _, second = fit_optuna(data, settings, seed=0)
    assert len(first) == 8 and len(second) == 14  # 4 then 7 trials per polarity, resumed
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")]
    set_study = [n for n in names if n.startswith("s-set-")]
    assert len(set_study) == 1
    assert len(optuna.load_study(study_name=set_study[0], storage=f"sqlite:///{db}").trials) == 7
    other = sample_points(load_synthetic("softbounds"), 400, seed=1)
    _, fresh = fit_optuna(other, settings, seed=0)  # other data: a new study, not a resume
    assert len(fresh) == 14
    assert len(optuna.get_all_study_summaries(f"sqlite:///{db}")) == 4


def test_fits_are_deterministic_given_the_seed():
    data = sample_points(load_synthetic("asymmetric"), 1500, seed=5)
    a, _ = fit_optuna(data, OptunaSettings(trials=10, progress=False), seed=2)
    b, _ = fit_optuna(data, OptunaSettings(trials=10, progress=False), seed=2)
    assert a.metadata["params"]["best"] == b.metadata["params"]["best"]
    s1, _ = fit_smooth(data, SmoothSettings(max_df=4, max_df_std=3), seed=1)
    s2, _ = fit_smooth(data, SmoothSettings(max_df=4, max_df_std=3), seed=1)
    np.testing.assert_array_equal(s1.tables["set"].means, s2.tables["set"].means)
