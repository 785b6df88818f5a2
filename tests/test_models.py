"""Jump tables and populations: the vectorized sampler draws exactly the table's distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DEVICES, TIOX
from scipy import stats

from memsim.devices.ideal import IdealPopulation
from memsim.devices.population import Workspace
from memsim.devices.registry import population_for
from memsim.devices.table import TablePopulation, TableStack
from memsim.errors import MemsimError
from memsim.fit.binning import bin_edges, fit_bins
from memsim.models import ConditionalTable, JumpTable
from memsim.models.resolve import load_model
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic


def _table(kind: str, edges: np.ndarray, seed: int = 0) -> ConditionalTable:
    rng = np.random.default_rng(seed)
    k = len(edges) - 1
    if kind == "gaussian":
        return ConditionalTable(edges, "gaussian", means=rng.normal(0, 0.01, k),
                                stds=rng.uniform(0.005, 0.02, k))
    # skewed, with a point mass: exercise flat quantile segments
    z = np.sort(rng.exponential(0.01, (k, 65)), axis=1) - 0.005
    z[:, :8] = z[:, 8:9]
    return ConditionalTable(edges, "quantile", quantiles=z)


def _one_pulse_sample(table: JumpTable, g0: float, n: int, device: str, pol="set"):
    pop = population_for(table, n, device=device, seed=5, dtype=torch.float64)
    pop.program(g0)
    pop.pulse_all(pol)
    return (pop.conductance().cpu().numpy() - g0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["gaussian", "quantile"])
@pytest.mark.parametrize("edge_rule", ["width", "count"])
def test_population_draws_the_table_distribution(kind, edge_rule, device):
    rng = np.random.default_rng(1)
    g_fit = rng.beta(2, 5, 5000)  # uneven data: equal-count edges are far from uniform
    edges = bin_edges(g_fit, 12, edge_rule, 0.0, 1.0)
    cond = _table(kind, edges)
    table = JumpTable({"set": cond, "reset": cond}, 0.0, 1.0)
    for g0 in (0.31, edges[3] + 1e-9, 0.77):
        dg = _one_pulse_sample(table, g0, 100_000, device)
        assert_same_distribution(dg, cond, g0)


def assert_same_distribution(sample, cond: ConditionalTable, g0: float, tol=0.01):
    """Every sample quantile Q(p) must satisfy F(Q-) - tol <= p <= F(Q) + tol under the model
    (a KS-type check that also holds where the table has point masses)."""
    p = np.linspace(0.002, 0.998, 300)
    qs = np.quantile(sample, p)
    g = np.full(len(p), g0)
    eps = 1e-12 * (1 + np.abs(qs[:, None]))  # G + dG - G rounds atoms by an ulp
    right = cond.cdf(g, qs[:, None] + eps)[:, 0]
    left = cond.cdf(g, qs[:, None] - eps)[:, 0]
    assert np.all(p <= right + tol) and np.all(p >= left - tol), np.max(
        np.maximum(p - right, left - p))


def test_bin_lookup_matches_numpy_for_irregular_edges():
    rng = np.random.default_rng(2)
    edges = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 40), [0.5, 0.5 + 1e-7]]))
    cond = ConditionalTable(edges, "gaussian", means=np.zeros(len(edges) - 1),
                            stds=np.ones(len(edges) - 1))
    stack = TableStack([cond], [(0.0, 1.0)], "cpu", torch.float64)
    g = np.concatenate([rng.uniform(-0.1, 1.1, 100_000), edges])
    got = stack.bins(torch.from_numpy(g), 0, Workspace(torch.device("cpu"))).numpy()
    np.testing.assert_array_equal(got, cond.bin_of(g))


def test_imported_levels_use_the_fast_regular_grid():
    tiox = load_model(TIOX)
    pop = population_for(tiox, 10)
    assert pop.stack.identity  # uniform levels -> half-width end bins, still arithmetic lookup


@pytest.mark.parametrize("shape", [-3, 0, (4, 0), 2.5, True])
def test_a_population_of_no_devices_is_refused_in_one_line(shape):
    with pytest.raises(MemsimError, match="number of devices must be a positive integer"):
        population_for(load_synthetic("softbounds"), shape)
    assert population_for(load_synthetic("softbounds"), (2, 3)).g.numel() == 6


@pytest.mark.parametrize("device", DEVICES)
def test_multi_pulse_counts_and_clipping(device):
    pop = IdealPopulation(0.0, 1.0, levels=100, shape=(6,), device=device)
    pop.program(torch.tensor([0.5, 0.5, 0.5, 0.5, 0.02, 0.98]))
    applied = pop.apply(torch.tensor([3, -2, 0, 7, -5, 5], device=device))
    assert applied == 22
    got = pop.conductance().cpu().numpy()
    np.testing.assert_allclose(got, [0.53, 0.48, 0.5, 0.57, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_per_device_table_choice(device):
    lo = ConditionalTable([0, 1], "gaussian", means=[-0.01], stds=[0.0])
    hi = ConditionalTable([0, 1], "gaussian", means=[0.02], stds=[0.0])
    tables = [JumpTable({"set": lo, "reset": lo}, 0, 1), JumpTable({"set": hi, "reset": hi}, 0, 1)]
    choice = torch.tensor([0, 1, 1, 0])
    pop = TablePopulation(tables, 4, choice=choice, device=device)
    pop.program(0.5)
    pop.apply(torch.ones(4, dtype=torch.long, device=device))
    np.testing.assert_allclose(pop.conductance().cpu().numpy(), [0.49, 0.52, 0.52, 0.49],
                               atol=1e-6)


def test_same_seed_same_numbers():
    table = JumpTable({"set": _table("quantile", np.linspace(0, 1, 9)),
                       "reset": _table("gaussian", np.linspace(0, 1, 9))}, 0, 1)
    runs = []
    for _ in range(2):
        pop = population_for(table, 300_000, seed=11)  # large: the split parallel draws
        pop.program(0.5)
        counts = torch.randint(-3, 4, (300_000,), generator=torch.Generator().manual_seed(0))
        pop.apply(counts)
        runs.append(pop.conductance().clone())
    assert torch.equal(runs[0], runs[1])


def test_synthetic_population_matches_profiles():
    dev = load_synthetic("asymmetric")
    g0 = 20e-6
    for pol in ("set", "reset"):
        pop = population_for(dev, 200_000, seed=1, dtype=torch.float64)
        pop.program(g0)
        pop.pulse_all(pol)
        dg = pop.conductance().numpy() - g0
        assert dg.mean() == pytest.approx(dev.mean(pol, [g0])[0], rel=0.01)
        assert dg.std() == pytest.approx(dev.std(pol, [g0])[0], rel=0.01)


def test_algorithm2_rejects_points_leaving_the_range():
    dev = load_synthetic("xbtorch_target")
    data = sample_points(dev, 5000, seed=0)
    for pol in ("set", "reset"):
        p = data.points[pol]
        assert len(p) == 5000
        assert np.all(p.g + p.dg >= dev.g_min) and np.all(p.g + p.dg <= dev.g_max)
    again = sample_points(dev, 5000, seed=0)
    np.testing.assert_array_equal(again.points["set"].dg, data.points["set"].dg)


def test_binning_an_exact_gaussian_truth_recovers_it():
    dev = load_synthetic("softbounds")
    data = sample_points(dev, 40_000, seed=4)
    pts = data.points["set"]
    edges = np.linspace(dev.g_min, dev.g_max, 9)
    table = fit_bins(pts.g, pts.dg, edges, "gaussian")
    inner = (edges[1:-1] + edges[2:]) / 2  # avoid the edge bins truncated by Algorithm 2
    centres_mean = dev.mean("set", inner)
    np.testing.assert_allclose(table.means[1:], centres_mean, atol=0.02 * dev.std("set", [0])[0]
                               + 0.01 * np.abs(centres_mean).max())


@pytest.mark.cuda
def test_cuda_and_cpu_agree_in_distribution():
    dev = load_model(TIOX)
    cpu = _one_pulse_sample(dev, 15e-6, 200_000, "cpu")
    gpu = _one_pulse_sample(dev, 15e-6, 200_000, "cuda")
    assert stats.ks_2samp(cpu, gpu).statistic < 0.01


def test_split_policy_moves_both_devices_of_a_pair():
    from memsim.devices.ideal import IdealKind
    from memsim.train.cells import Mapping
    from memsim.train.synapses import DeviceSynapses

    syn = DeviceSynapses([(20, 20)], 1, "cpu", IdealKind(levels=1000),
                         Mapping(policy="split", w_max=1.0), seed=0)
    assert syn.dw_min == pytest.approx(1e-3)  # one pulse: 1/1000 of the range, w_max = 1
    syn.initialise(torch.zeros(400))
    start = syn.pop.g.clone().view(2, -1)
    for _ in range(200):
        syn.update(torch.full((400,), 4e-4))  # 0.4 pulses per step: single pulses
    moved = (syn.pop.g.view(2, -1) != start).double().mean(dim=1)
    assert moved[0] > 0.9 and moved[1] > 0.9  # G+ up (SET) and G- down (RESET) alike
    assert float(syn.flat.mean()) == pytest.approx(0.08, rel=0.05)  # unbiased rounding


def test_tables_refuse_decreasing_rows_but_flatten_rounding_noise():
    rows = np.tile(np.linspace(-1.0, 1.0, 9), (3, 1))
    rows[1] = rows[1, ::-1]  # a reversed row: no longer made a point mass at its first value
    with pytest.raises(MemsimError, match="quantile row decreases") as err:
        ConditionalTable([0.0, 1.0, 2.0, 3.0], "quantile", quantiles=rows)
    assert err.value.where == "row 2"
    noisy = np.tile(np.linspace(-1.0, 1.0, 9), (3, 1))
    noisy[2, 5] = noisy[2, 4] - 1e-13  # float noise below ROW_RTOL of the row's scale
    table = ConditionalTable([0.0, 1.0, 2.0, 3.0], "quantile", quantiles=noisy)
    assert np.all(np.diff(table.quantiles, axis=1) >= 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_tables_refuse_non_finite_edges_and_ranges(bad):
    rows = np.tile(np.linspace(-1.0, 1.0, 5), (2, 1))
    with pytest.raises(MemsimError, match="bin edges hold NaN or inf"):
        ConditionalTable([-bad, 1.0, 2.0], "quantile", quantiles=rows)
    with pytest.raises(MemsimError, match="bin edges hold NaN or inf"):
        ConditionalTable([0.0, 1.0, bad], "gaussian", means=[0, 0], stds=[1, 1])
    table = ConditionalTable([0.0, 1.0, 2.0], "quantile", quantiles=rows)
    for g_min, g_max in ((0.0, bad), (-bad, 2.0)):
        with pytest.raises(MemsimError, match="not finite"):
            JumpTable({"set": table, "reset": table}, g_min, g_max)
