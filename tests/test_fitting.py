"""Fitting: consistency with N (synthetic and measured truths), cross-validated searches,
resumable studies, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import ROOT

from memsim.errors import MemsimError
from memsim.fit.binning import Binning
from memsim.fit.optuna_binning import OptunaBinning, OptunaSettings, fit_optuna
from memsim.fit.smooth import (
    CONTINUOUS_SHAPES,
    SHAPES,
    Smooth,
    SmoothSettings,
    conditional_rows,
    fit_smooth,
    jump_cuts,
    lattice_step,
    smooth_table,
    weighted_quantile_rows,
)
from memsim.io.data import Points, PulseData
from memsim.metrics import compare_models
from memsim.metrics.distances import w1_to_truth
from memsim.models.resolve import load_model
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic, synthetic_from_spec

SIZES = (300, 3000, 30000)
METHODS = {  # every method with its defaults (a shorter Optuna search, for time)
    "binning": Binning(),
    "optuna": OptunaBinning(OptunaSettings(trials=25, progress=False)),
    "smooth": Smooth(),
}


def _distances(model, truth):
    rows = compare_models(model, truth, pulses=20, devices=50)
    return (np.mean([r["ks"] for r in rows]), np.mean([r["w1_rel"] for r in rows]))


@pytest.fixture(scope="module")
def consistency():
    truth = load_synthetic("asymmetric")
    out = {}
    for n in SIZES:
        data = sample_points(truth, n, seed=n)
        for name, method in METHODS.items():
            out[name, n] = _distances(method.fit(data, seed=1).table, truth)
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_distances_to_the_truth_shrink_with_n(consistency, method):
    ks = [consistency[method, n][0] for n in SIZES]
    w1 = [consistency[method, n][1] for n in SIZES]
    assert ks[0] > ks[1] > ks[2], ks
    assert w1[0] > w1[1] > w1[2], w1
    assert ks[2] < {"binning": 0.05, "optuna": 0.03, "smooth": 0.03}[method], ks


@pytest.fixture(scope="module")
def measured_consistency():
    """W1 to a measured TaOx LUT (the truth) of fits of 300, 3000 and 30,000 of its points."""
    truth = load_model(ROOT / "device_data/crosssim_taox/10")
    out = {}
    for n in SIZES:
        data = sample_points(truth, n, seed=1)
        for name, method in METHODS.items():
            table = method.fit(data, seed=1, g_range=(truth.g_min, truth.g_max)).table
            out[name, n] = np.mean(list(w1_to_truth(table, truth).values()))
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_distances_to_a_measured_truth_shrink_with_n(measured_consistency, method):
    w1 = [measured_consistency[method, n] for n in SIZES]
    assert w1[0] > w1[1] > w1[2], w1
    assert w1[2] < 0.5 * w1[0]


def test_weighted_quantiles_match_the_unweighted_ones_and_stay_in_the_data():
    rng = np.random.default_rng(0)
    v = np.sort(rng.standard_normal(2001))
    rows = weighted_quantile_rows(v, np.ones((1, len(v))), 8)
    np.testing.assert_allclose(rows[0, 1:-1], np.quantile(v, np.linspace(0, 1, 9))[1:-1],
                               atol=2e-3)
    assert rows[0, 0] == v[0] and rows[0, -1] == v[-1]
    w = rng.uniform(0, 1, (5, len(v)))
    rows = weighted_quantile_rows(v, w, 32)
    assert (np.diff(rows, axis=1) >= 0).all() and rows.min() >= v[0] and rows.max() <= v[-1]


def test_smooth_keeps_discrete_changes_discrete():
    """An ENODe-like cell changes mostly by whole steps (9 in 10 of its SET changes; its
    lowest column's are not): the local shape keeps as many whole as the data show."""
    truth = load_model(ROOT / "device_data/crosssim_enode_lut")
    data = sample_points(truth, 3000, seed=0)
    table, _ = fit_smooth(data, SmoothSettings(shape="local"), seed=0)
    rows, dg = table.tables["set"].quantiles * 1e6, data.points["set"].dg * 1e6  # steps of 1 uS
    on_step = np.abs(rows - np.round(rows)) < 1e-6
    assert on_step.mean() > np.mean(np.abs(dg - np.round(dg)) < 1e-6) - 0.02 > 0.85


def test_jump_cuts_find_a_jump_and_propose_few_elsewhere():
    """A mean shift of 1.2 noise sds at G = 0.3 is found, within a window, in every data set;
    a smooth trend with no jump draws a candidate in a few (the scan is liberal: the search
    scores every candidate by cross-validation), and never many."""
    found, proposed = 0, []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x = rng.uniform(size=3000)
        smooth = np.sin(6 * x) + 0.5 * rng.standard_normal(3000)
        proposed.append(len(jump_cuts(x, smooth)))
        found += np.any(np.abs(jump_cuts(x, smooth + 0.6 * (x > 0.3)) - 0.3) < 0.01)
    assert found == 10
    assert sum(n > 0 for n in proposed) <= 5 and max(proposed) <= 2, proposed


def test_a_fit_apart_at_a_jump_keeps_it_sharp():
    """Changes whose median jumps from 0 to 3 at G = 0.5: fitted apart at the cut, the rows
    just either side have their own side's median (a kernel across it blurs both), and the
    table has a bin edge at the cut."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=3000)
    y = rng.standard_normal(3000) + 3.0 * (x > 0.5)
    centres = np.array([0.49, 0.51])
    cuts = jump_cuts(x, y)
    assert len(cuts) == 1 and abs(cuts[0] - 0.5) < 0.005
    apart = conditional_rows(x, y, centres, 0.05, "local", 64, cuts=cuts)[:, 32]
    across = conditional_rows(x, y, centres, 0.05, "local", 64)[:, 32]
    assert np.all(np.abs(apart - [0.0, 3.0]) < 0.3), apart
    assert np.all(np.abs(across - [0.0, 3.0]) > 0.6), across
    table = smooth_table(x, y, 0.0, 1.0, 0.05, "local", 64, 64, jumps=True)
    assert np.min(np.abs(table.edges - cuts[0])) < 1e-12 and len(table.edges) == 66


def test_fits_apart_at_jumps_are_offered_only_where_jumps_show():
    rng = np.random.default_rng(1)
    g = rng.uniform(0, 1, 2000)
    jump = rng.standard_normal(2000) + 3.0 * (g > 0.5)
    data = PulseData({"set": Points(g, jump), "reset": Points(g, -np.abs(jump))})
    table, records = fit_smooth(data, seed=0)
    assert {r["jumps"] for r in records if r["polarity"] == "set"} == {False, True}
    chosen = table.metadata["params"]["chosen"]["set"]
    assert chosen["jumps"] and len(chosen["cuts"]) == 1 and abs(chosen["cuts"][0] - 0.5) < 0.01
    _, records = fit_optuna(data, OptunaSettings(trials=10, progress=False), seed=0)
    assert any(r.get("jumps") for r in records if r["polarity"] == "set")
    flat = PulseData({"set": Points(g, rng.standard_normal(2000)),
                      "reset": Points(g, -rng.uniform(size=2000))})
    assert len(jump_cuts(g, flat.points["set"].dg)) == 0
    _, records = fit_smooth(flat, seed=0)
    assert {r["jumps"] for r in records if r["polarity"] == "set"} == {False}
    _, records = fit_optuna(flat, OptunaSettings(trials=10, progress=False), seed=0)
    assert not any(r.get("jumps") for r in records if r["polarity"] == "set")
    with pytest.raises(MemsimError, match="jumps must be"):
        fit_smooth(data, SmoothSettings(jumps="maybe"), seed=0)


def test_lattice_step_is_found_in_quantised_changes_only():
    rng = np.random.default_rng(0)
    steps = 0.25 * rng.integers(-8, 9, 2000) * (1 + 1e-13 * rng.standard_normal(2000))
    off = rng.uniform(-2, 2, 2000)  # changes between the steps, as a LUT's interpolation gives
    some = np.where(rng.uniform(size=2000) < 0.15, off, steps)
    assert lattice_step(some) == pytest.approx(0.25, rel=1e-9)
    assert lattice_step(np.where(rng.uniform(size=2000) < 0.4, off, steps)) is None
    assert lattice_step(rng.standard_normal(2000)) is None  # continuous: nothing repeats
    coincide = np.r_[off[:10], off[:10]]  # a few values met twice among very many
    assert lattice_step(np.r_[rng.standard_normal(20000), coincide]) is None
    many = np.where(rng.uniform(size=40000) < 0.15, rng.uniform(-2, 2, 40000),
                    0.25 * rng.integers(-8, 9, 40000))
    assert lattice_step(np.r_[many, coincide]) == pytest.approx(0.25, rel=1e-9)
    assert lattice_step(np.r_[steps, np.full(20, 0.1)]) is None  # 0.1 is no multiple of 0.25
    enode = sample_points(load_model(ROOT / "device_data/crosssim_enode_lut"), 300, seed=0)
    assert lattice_step(enode.points["set"].dg) == pytest.approx(1e-6, rel=1e-6)
    taox = sample_points(load_model(ROOT / "device_data/crosssim_taox/1"), 300, seed=0)
    assert lattice_step(taox.points["set"].dg) is None


def test_lattice_shape_keeps_the_data_values_and_beats_the_local_shape_on_a_quantised_truth():
    """ENODe changes mostly by whole 1 uS steps; at N = 3000 the lattice shape (the
    kernel-weighted changes mixed with a discretized normal on the steps along smooth
    profiles) is closer to the truth than the kernel-weighted changes alone, each at its
    cross-validated bandwidth (two data sets)."""
    truth = load_model(ROOT / "device_data/crosssim_enode_lut")
    w1 = {"local": 0.0, "lattice": 0.0}
    for seed, shape in itertools.product((0, 1), w1):
        data = sample_points(truth, 3000, seed=seed)
        table, _ = fit_smooth(data, SmoothSettings(shape=shape), seed=0)
        w1[shape] += np.mean(list(w1_to_truth(table, truth).values()))
        if shape == "lattice":
            for pol in ("set", "reset"):
                rows, dg = table.tables[pol].quantiles, data.points[pol].dg
                assert dg.min() <= rows.min() and rows.max() <= dg.max()
                # every entry a change of the data, to the last bit (else a KS between two
                # step distributions sees whole steps apart), or else a whole step
                seen = np.isin(rows, dg)
                assert seen.mean() > 0.99
                np.testing.assert_allclose(rows[~seen] * 1e6, np.round(rows[~seen] * 1e6),
                                           atol=1e-6)
    assert w1["lattice"] < 0.95 * w1["local"], w1


def test_lattice_shape_only_for_quantised_changes():
    taox = sample_points(load_model(ROOT / "device_data/crosssim_taox/1"), 400, seed=0)
    with pytest.raises(MemsimError, match="not quantised"):
        fit_smooth(taox, SmoothSettings(shape="lattice"), seed=0)
    _, records = fit_smooth(taox, seed=0)
    assert {r["shape"] for r in records} == set(CONTINUOUS_SHAPES)
    _, records = fit_optuna(taox, OptunaSettings(trials=12, progress=False), seed=0)
    assert {r.get("shape") for r in records} <= {None, *CONTINUOUS_SHAPES}
    enode = sample_points(load_model(ROOT / "device_data/crosssim_enode_lut"), 400, seed=0)
    _, records = fit_smooth(enode, seed=0)
    assert {r["shape"] for r in records} == set(SHAPES)
    _, records = fit_optuna(enode, OptunaSettings(trials=6, progress=False), seed=0)
    assert "lattice" in {r.get("shape") for r in records}  # one of the starting points


def test_optuna_scores_held_out_data_not_the_fit():
    """A device whose dG does not depend on G: in-sample CRPS would reward many bins or a
    narrow kernel, the cross-validated objective must not."""
    flat = synthetic_from_spec({
        "unit": "uS", "g_min": 1, "g_max": 10,
        "set": {"mean": {"kind": "constant", "value": 0.0},
                "std": {"kind": "constant", "value": 0.01}},
        "reset": {"mean": {"kind": "constant", "value": 0.0},
                  "std": {"kind": "constant", "value": 0.01}}})
    data = sample_points(flat, 2000, seed=3)
    table, records = fit_optuna(data, OptunaSettings(trials=30, progress=False,
                                                     families=("binning",)), seed=0)
    best = table.metadata["params"]["best"]
    assert best["set"]["bins"] <= 8 and best["reset"]["bins"] <= 8
    assert max(r["bins"] for r in records) > 20  # the search did look at many bins
    table, records = fit_optuna(data, OptunaSettings(trials=30, progress=False,
                                                     families=("smooth",)), seed=0)
    best = table.metadata["params"]["best"]
    assert best["set"]["bandwidth"] >= 0.1 and best["reset"]["bandwidth"] >= 0.1
    assert min(r["bandwidth"] for r in records) < 0.02


def test_optuna_starts_from_plain_binning_and_never_scores_worse():
    data = sample_points(load_model(ROOT / "device_data/crosssim_taox/1"), 400, seed=0)
    table, records = fit_optuna(data, OptunaSettings(trials=12, progress=False), seed=0)
    for pol in ("set", "reset"):
        trials = [r for r in records if r["polarity"] == pol]
        first = min(trials, key=lambda r: r["trial"])
        assert (first["family"], first["bins"], first["edges"], first["stat"]) == (
            "binning", 20, "width", "empirical")
        assert table.metadata["params"]["best"][pol]["cv_crps"] <= first["cv_crps"]


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


def test_a_study_of_other_code_or_optuna_is_not_resumed(monkeypatch):
    """Trials scored by other memsim code, or proposed by another Optuna's sampler, are not
    mixed into a search: the study's name changes with either."""
    import importlib.metadata

    from memsim.fit import optuna_binning

    pts = sample_points(load_synthetic("softbounds"), 100, seed=0).points["set"]
    settings = OptunaSettings(progress=False)
    ours = optuna_binning._study_digest(pts, settings, 0, 0.0, 1.0)
    assert optuna_binning._study_digest(pts, settings, 0, 0.0, 1.0) == ours
    with monkeypatch.context() as m:
        m.setattr(optuna_binning, "code_identity", lambda: "0.1.0+other")
        assert optuna_binning._study_digest(pts, settings, 0, 0.0, 1.0) != ours
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "0.0.1" if name == "optuna" else real(name))
    assert optuna_binning._study_digest(pts, settings, 0, 0.0, 1.0) != ours


def test_a_study_resumed_after_kills_ends_where_an_uninterrupted_one_does(tmp_path):
    """A worker killed mid-fit leaves a trial 'running'; a retry, or a second process on the
    same study at once, resumes it. The table and the trials must be those of an
    uninterrupted search (a Dask retry changes nothing)."""
    import optuna

    from memsim.models.formats import table_document

    data = sample_points(load_synthetic("asymmetric"), 600, seed=3)
    straight, straight_trials = fit_optuna(data, OptunaSettings(trials=14, progress=False), 1)
    db = tmp_path / "study.db"
    url = f"sqlite:///{db}"
    for stop in (2, 11):  # killed among the starting points, then after TPE took over
        fit_optuna(data, OptunaSettings(trials=stop, progress=False, storage=str(db)), 1)
        for summary in optuna.get_all_study_summaries(url):
            study = optuna.load_study(study_name=summary.study_name, storage=url)
            study.ask()  # left running by a killed worker
            study.enqueue_trial({"family": "binning", "bins": 3, "edges": "width",
                                 "stat": "gaussian"})  # queued by hand: not ours to run
            first = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))[0]
            study.add_trial(optuna.trial.create_trial(  # a second writer at position 0
                params=first.params, distributions=first.distributions, value=-1.0,
                user_attrs={"position": 0}))
    resumed, resumed_trials = fit_optuna(
        data, OptunaSettings(trials=14, progress=False, storage=str(db)), 1)
    assert table_document(resumed) == table_document(straight)
    assert resumed_trials == straight_trials  # the same trials, in order, numbered alike
    fewer, _ = fit_optuna(data, OptunaSettings(trials=11, progress=False, storage=str(db)), 1)
    alone, _ = fit_optuna(data, OptunaSettings(trials=11, progress=False), 1)
    assert table_document(fewer) == table_document(alone)  # a longer stored study: its start


def test_a_configuration_that_cannot_be_scored_is_never_chosen(monkeypatch):
    import memsim.fit.optuna_binning as ob

    real = ob.cv_crps_binning
    monkeypatch.setattr(ob, "cv_crps_binning", lambda *a: float("nan") if a[3] == 20 else
                        real(*a))  # the plain 20-bin start: NaN
    data = sample_points(load_synthetic("softbounds"), 400, seed=0)
    table, records = fit_optuna(data, OptunaSettings(trials=5, progress=False), seed=0)
    assert len(records) == 10  # the search went on
    assert all(r["bins"] != 20 for r in records if r["family"] == "binning"
               and r["cv_crps"] < float("inf"))
    for pol in ("set", "reset"):
        assert table.metadata["params"]["best"][pol]["cv_crps"] < float("inf")


def test_fits_are_deterministic_given_the_seed():
    data = sample_points(load_synthetic("asymmetric"), 1500, seed=5)
    a, _ = fit_optuna(data, OptunaSettings(trials=10, progress=False), seed=2)
    b, _ = fit_optuna(data, OptunaSettings(trials=10, progress=False), seed=2)
    assert a.metadata["params"]["best"] == b.metadata["params"]["best"]
    s1, _ = fit_smooth(data, SmoothSettings(), seed=1)
    s2, _ = fit_smooth(data, SmoothSettings(), seed=1)
    np.testing.assert_array_equal(s1.tables["set"].quantiles, s2.tables["set"].quantiles)


def test_jumps_setting_reads_yaml_on_and_off():
    """YAML reads a bare `on` / `off` as true / false: both mean what they say; others are
    refused in one line."""
    import yaml

    from memsim.fit.registry import get_method
    from memsim.io.schema import SpecLoader

    for text, want in (("on", "on"), ("off", "off"), ("auto", "auto"), ("true", "on")):
        keys = yaml.load(f"jumps: {text}", Loader=SpecLoader)
        assert get_method("smooth", keys).settings.jumps == want
    with pytest.raises(MemsimError, match="jumps.*must be auto, on or off"):
        get_method("smooth", {"jumps": "maybe"})
