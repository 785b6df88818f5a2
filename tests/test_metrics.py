"""Device-level metrics: CRPS is exact, distances vanish when the model is the truth."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, ENODE
from scipy import special

from memsim.metrics import compare_models, compare_to_data, crps_gaussian, crps_quantile_rows
from memsim.models.resolve import load_model
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic


def test_crps_of_quantile_rows_matches_closed_forms():
    p = np.linspace(0, 1, 4097)
    z = special.ndtri(np.clip(p, 1e-9, 1 - 1e-9))
    y = np.array([-2.0, -0.5, 0.0, 0.3, 3.0])
    np.testing.assert_allclose(crps_quantile_rows(np.tile(z, (5, 1)), y),
                               crps_gaussian(y, 0.0, 1.0), atol=1e-5)
    # uniform on [0, 1]: CRPS(y) = E|X - y| - 1/6
    rows = np.tile(np.linspace(0, 1, 9), (3, 1))
    np.testing.assert_allclose(crps_quantile_rows(rows, np.array([0.0, 0.5, 2.0])),
                               [1 / 3, 1 / 12, 4 / 3])
    # a point mass at 1: CRPS = |y - 1|
    np.testing.assert_allclose(crps_quantile_rows(np.ones((3, 9)), np.array([0.0, 1.0, 2.5])),
                               [1.0, 0.0, 1.5])


@pytest.mark.parametrize("name", ["xbtorch_target", "asymmetric"])
def test_a_model_against_itself_has_zero_distance(name):
    truth = load_synthetic(name)
    for row in compare_models(truth, truth, devices=2000, pulses=50):
        assert row["ks"] < 1e-9 and row["w1"] < 1e-20 and row["rmse_mean"] < 1e-20
        assert row["train_mean"] < 0.015 and row["train_std"] < 0.015  # two seeds differ


def test_table_against_itself_and_against_data():
    tiox = load_model("device_data/xbtorch_tiox/optuna_exp_1.5V")
    for row in compare_models(tiox, tiox, devices=300, pulses=30):
        assert row["ks"] < 1e-9
    data = sample_points(tiox, 20000, seed=0)
    for row in compare_to_data(tiox, data):
        assert row["pit_ks"] < 0.015  # calibrated: PIT values are uniform
        assert row["ks"] < 0.1  # per-bin KS with ~1000 points per bin


def _point_masses():
    """One atom per polarity: dG = +0.1 on SET, -0.1 on RESET, on [0, 1]."""
    from memsim.models.table import ConditionalTable, JumpTable

    rows = {"set": np.full((1, 5), 0.1), "reset": np.full((1, 5), -0.1)}
    return JumpTable({pol: ConditionalTable([0.0, 1.0], "quantile", quantiles=r)
                      for pol, r in rows.items()}, 0.0, 1.0, "norm")


@pytest.mark.parametrize("truth", ["enode", "point_masses", "taox"])
def test_a_model_scores_well_against_its_own_draws_with_or_without_atoms(truth):
    """KS and PIT-KS of a model against its own draws are near zero whether its
    distributions have atoms (ENODe's LUT changes in whole steps; a point-mass table) or not
    (and stay deterministic for a seed: the PIT is randomised within atoms)."""
    model = {"enode": lambda: load_model(ENODE), "point_masses": _point_masses,
             "taox": lambda: load_model(DATA / "crosssim_taox" / "10")}[truth]()
    data = sample_points(model, 20000, seed=0)
    rows = compare_to_data(model, data, seed=0)
    assert len(rows) == 2
    for row in rows:
        assert row["ks"] < 0.05 and row["ks_max"] < 0.06  # ~1000 points per bin
        assert row["pit_ks"] < 0.02
    assert compare_to_data(model, data, seed=0) == rows


def test_data_metrics_see_a_wrong_model():
    truth = load_synthetic("softbounds")
    wrong = load_synthetic("asymmetric")
    data = sample_points(truth, 5000, seed=1)
    good = compare_to_data(truth, data)
    bad = compare_to_data(wrong, data)
    for g, b in zip(good, bad, strict=True):
        assert b["crps"] > g["crps"] and b["pit_ks"] > 5 * g["pit_ks"]


def test_reference_pulse_trains_are_simulated_once_per_model(monkeypatch):
    """A sweep compares every table fitted to one truth with that truth's pulse trains: they
    are simulated once per model object and seed, and the figures are those of a fresh
    simulation."""
    from memsim.metrics import pulse_trains

    truth, other = load_synthetic("softbounds"), load_synthetic("asymmetric")
    fresh = pulse_trains.pulse_train_distance(other, truth, pulses=20, devices=200, seed=3)
    calls = []
    real = pulse_trains.simulate_pulse_train
    monkeypatch.setattr(pulse_trains, "simulate_pulse_train",
                        lambda model, *a, **k: calls.append(model) or real(model, *a, **k))
    for _ in range(3):
        again = pulse_trains.pulse_train_distance(other, truth, pulses=20, devices=200, seed=3)
        assert again == fresh
    def count(model):
        return sum(m is model for m in calls)

    assert count(truth) == 0 and count(other) == 3  # the truth's trains from the first call
    pulse_trains.pulse_train_distance(other, truth, pulses=20, devices=200, seed=4)
    assert count(truth) == 1  # another seed is another simulation
    copy = load_synthetic("softbounds")  # an equal model, another object: simulated anew
    pulse_trains.pulse_train_distance(other, copy, pulses=20, devices=200, seed=3)
    assert count(copy) == 1
