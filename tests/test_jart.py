"""The JART VCM v1b device: the reference implementation's figures, the noise model's
invariants, and ``memsim pulse`` over every registered device kind."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from memsim.cli import main
from memsim.devices import jart, registry
from memsim.devices.jart import JartKind, JartPopulation
from memsim.errors import MemsimError
from memsim.io.schema import Section

REPO = Path(__file__).resolve().parents[1]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def nominal(n=1, device="cpu", clip_n=True, tabulate=False):
    return JartPopulation(n, {}, {}, clip_n, device=device, tabulate=tabulate)


@pytest.mark.parametrize("tabulate", [False, True], ids=["simulated", "tabulated"])
@pytest.mark.parametrize("device", DEVICES)
def test_nominal_device_matches_the_reference_figures(device, tabulate, monkeypatch):
    """The literature note's figures of the reference implementation (nominal device, +-0.6
    mapping), within 1 % relative, simulated and looked up in the state table (its blocks
    made small here: 1000 pulses visit 1000 blocks)."""
    monkeypatch.setattr(jart.StateTable, "BLOCK", 64)
    monkeypatch.setattr(jart, "_STATE_TABLES", {})
    assert float(jart.n_of_weight(0.0)) == pytest.approx(0.3421, rel=1e-3)
    for is_set, dw in ((True, 9.35e-3), (False, -1.51e-2)):
        pop = nominal(device=device, tabulate=tabulate)
        w0 = float(pop.weights())
        pop._pulse(None, is_set)
        assert float(pop.weights()) - w0 == pytest.approx(dw, rel=0.01)
    pop = nominal(device=device, tabulate=tabulate)
    pop.pulse_all("set", 1000)
    assert float(pop.n) == pytest.approx(1.472, rel=0.01)
    assert float(pop.weights()) == pytest.approx(0.531, rel=0.01)
    # the step shrinks steeply towards the bounds: about +1.1e-4 at w = -0.5
    pop = nominal(device=device, tabulate=tabulate)
    pop.program(torch.tensor([(jart.I_MIN + (jart.I_MAX - jart.I_MIN) * 0.1 / 1.2)
                              / jart.V_READ]))
    w0 = float(pop.weights())
    assert w0 == pytest.approx(-0.5, abs=1e-6)
    pop._pulse(None, True)
    assert float(pop.weights()) - w0 == pytest.approx(1.1e-4, rel=0.05)


@pytest.mark.parametrize("clip_n", [True, False])
def test_state_table_is_the_simulation_whatever_the_order_of_visits(clip_n):
    """Every entry of a fresh table equals the pulse simulated on whole blocks of states, in
    whichever order blocks are first visited; a table-driven device follows the simulated one
    to within one float32 step (the last bit where vectorized and scalar math may differ)."""
    gen = torch.Generator().manual_seed(7)
    for is_set in (True, False):
        tables = [jart.StateTable(is_set, clip_n, "cpu") for _ in range(2)]
        size = tables[0].table.numel()
        block = jart.StateTable.BLOCK
        blocks = torch.randint(0, size // block, (3, 1), generator=gen)
        offsets = torch.randint(0, block, (3, 50), generator=gen)
        k = (blocks * block + offsets).reshape(-1).to(torch.int32)
        n = (k + tables[0].base).view(torch.float32)
        looked = tables[0](n)
        for b in reversed(range(3)):  # the other table visits the blocks one by one, reversed
            tables[1](n[50 * b:50 * (b + 1)])
        assert torch.equal(tables[1](n), looked)
        bulk = nominal(3 * block, clip_n=clip_n)  # the three whole blocks, in a row
        bulk.n = ((blocks * block + torch.arange(block)).reshape(-1).to(torch.int32)
                  + tables[0].base).view(torch.float32)
        bulk._pulse_one(None, is_set)
        assert torch.equal(bulk.n[(torch.arange(3)[:, None] * block + offsets).reshape(-1)],
                           looked)
        alone = nominal(len(n), clip_n=clip_n)
        alone.n = n.clone()
        alone._pulse_one(None, is_set)
        assert (alone.n.view(torch.int32) - looked.view(torch.int32)).abs().max() <= 1
        assert (looked != n).any()  # the pulses moved the states


def test_tabulate_is_refused_on_a_noisy_device_and_written_only_when_on():
    with pytest.raises(MemsimError, match="tabulate.*noise-free"):
        JartKind.from_spec(Section({"preset": "d2d_realistic", "tabulate": True}, None,
                                   "device"), None)
    with pytest.raises(MemsimError, match="noise-free"):
        JartPopulation(4, {"rdisc": {"sigma": 0.1, "bounds": None}}, {}, tabulate=True)
    on = JartKind.from_spec(Section({"tabulate": True}, None, "device"), None)
    assert on.resolved()["tabulate"] is True
    assert "tabulate" not in JartKind.from_preset("noise_free").resolved()
    pop = on.population(5)
    pop.pulse_all("reset", 3)
    ref = JartKind.from_preset("noise_free").population(5)
    ref.pulse_all("reset", 3)
    assert torch.allclose(pop.weights(), ref.weights(), rtol=1e-6)


def test_devices_advance_together_exactly_as_alone():
    """Vectorizing over devices changes nothing: each device of a noisy population follows the
    same trajectory when it is pulsed alone (its parameters copied)."""
    dev = JartKind.from_preset("d2d_realistic")
    pop = dev.population(6, seed=3)
    ref = pop.n.clone()
    pop._pulse(None, torch.tensor([True, False, True, False, True, False]))
    for k in range(6):
        one = dev.population(1, seed=0)
        for name in ("ndiscmax", "ndiscmin", "ldisc", "area", "n_lo", "n_hi"):
            setattr(one, name, getattr(pop, name)[k:k + 1].clone())
        one.n = ref[k:k + 1].clone()
        one._pulse(None, bool(k % 2 == 0))
        assert float(one.n) == float(pop.n[k])


def test_clipping_and_the_unclipped_variant():
    clipped, free = nominal(clip_n=True), nominal(clip_n=False)
    for pop in (clipped, free):  # start just below the upper weight bound
        pop.n.fill_(float(jart.n_of_weight(0.59999)))
        pop.pulse_all("set", 5)
    assert float(clipped.n) == pytest.approx(jart.N_HI, rel=1e-6)
    assert float(clipped.weights()) == pytest.approx(0.6, abs=1e-6)
    assert float(free.weights()) > 0.6 + 1e-6  # drifts past +-0.6, limited only by N_discmax
    # a pulse towards the bound a device sits at is skipped
    before = clipped.n.clone()
    clipped._pulse(None, True)
    assert torch.equal(clipped.n, before)


def test_cycle_to_cycle_walk_stays_within_its_bounds():
    dev = JartKind.from_preset("realistic_mixed")
    pop = dev.population(500, seed=1)
    start = {"ndiscmax": pop.ndiscmax.clone(), "ndiscmin": pop.ndiscmin.clone(),
             "ldisc": pop.ldisc.clone(), "area": pop.area.clone()}
    for _ in range(20):
        pop.pulse_all("set", 1)
        pop.pulse_all("reset", 1)
    for name, lim in (("ndiscmax", 0.1), ("ndiscmin", 0.9), ("ldisc", 0.1)):
        ratio = getattr(pop, name) / start[name]
        assert float(ratio.min()) >= 1 - lim - 1e-9 and float(ratio.max()) <= 1 + lim + 1e-9
        assert float(ratio.std()) > 0  # the walk moved
    r = (pop.area / start["area"]).sqrt()
    assert float(r.min()) >= 0.9 - 1e-9 and float(r.max()) <= 1.1 + 1e-9


def test_device_to_device_draws_respect_their_bounds():
    pop = JartKind.from_preset("d2d_realistic").population(4000, seed=0)
    r = (pop.area / torch.pi).sqrt() * 1e9
    assert float(r.min()) == pytest.approx(40.5) and float(r.max()) == pytest.approx(49.5)
    # sigma 1.0 with tight bounds: devices pile up at the bounds (as published)
    assert float(((r - 40.5).abs() < 1e-9).float().mean()) > 0.4
    assert float(pop.ndiscmax.min()) >= 18 and float(pop.ndiscmax.max()) <= 22


def test_presets_and_yaml_configurations():
    for name in jart.PRESETS:
        dev = registry.parse_device(f"jart:{name}")
        assert dev.preset == name
    assert not registry.parse_device("jart:noise_free").noisy
    dev = registry.parse_device({"kind": "jart", "preset": "noise_free",
                                 "c2c": {"rdisc": {"std": 0.05, "slope": 0.2}},
                                 "d2d": {"ldisc": {"sigma": 0.3, "bounds": None}},
                                 "clip_n": False})
    assert dev.c2c["rdisc"]["bounds"] == [-0.2, 0.2] and dev.d2d["ldisc"]["bounds"] is None
    for bad in ({"c2c": {"radius": {"std": 0.1}}}, {"c2c": {"ndiscmax": {"slope": 0.1}}},
                {"d2d": {"rdisc": {"sigma": 1.0, "bounds": [50, 60]}}},
                {"d2d": {"rdisc": {"sigma": -1.0}}}):
        with pytest.raises(MemsimError):
            registry.parse_device({"kind": "jart", **bad})
    off = JartKind.from_preset("realistic_mixed").switched({"all": False})
    assert not off.noisy


def test_kind_section_reads_presets():
    sec = Section({"preset": "realistic_mixed"}, None, "device")
    dev = JartKind.from_spec(sec, None)
    assert set(dev.d2d) == {"ndiscmax", "ndiscmin", "ldisc", "rdisc", "w_bounds"}


def pulsed(name):
    cls = registry.KINDS[name]
    return "+20" if "set" in cls.polarities else "-20"


@pytest.mark.parametrize("name", [n for n, c in registry.KINDS.items() if not c.is_float])
def test_pulse_works_on_every_registered_kind(name, tmp_path):
    """``memsim pulse`` on every kind, started at its lower or upper weight bound."""
    kind = registry.KINDS[name].example()
    doc = {"kind": name, **{k: v for k, v in kind.resolved(tmp_path).items() if k != "kind"}}
    import yaml

    spec = tmp_path / "device.yaml"
    spec.write_text(yaml.safe_dump(doc))
    if name == "table":  # its example holds tables built in code: a shipped table instead
        spec = REPO / "device_data" / "xbtorch_tiox" / "optuna_exp_1.5V"
    seq = pulsed(name)
    start = "-1" if seq.startswith("+") else "1"
    wb = getattr(kind, "w_bound", 1.0)
    res = CliRunner().invoke(main, ["pulse", str(spec), "--sequence", seq, "--devices", "200",
                                    "--from-weight", str(float(start) * wb),
                                    "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "out" / "trajectory.csv")
    assert list(table.columns) == ["pulse", "g_mean", "g_std", "w_mean", "w_std"]
    assert table["pulse"].tolist() == list(range(21))
    assert (tmp_path / "out" / "trajectory.png").stat().st_size > 0
    # the weight moves in the direction of the pulses
    moved = table["w_mean"].iloc[-1] - table["w_mean"].iloc[0]
    assert moved > 0 if seq.startswith("+") else moved < 0


def test_pulse_command_as_the_issue_writes_it(tmp_path):
    res = CliRunner().invoke(main, ["pulse", "jart:noise_free", "--set", "1000",
                                    "--from-weight", "0", "--devices", "1",
                                    "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "trajectory.csv")
    assert len(table) == 1001
    assert table["w_mean"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert table["w_mean"].iloc[-1] == pytest.approx(0.531, rel=0.01)


@pytest.mark.parametrize("args, problem", [
    (["jart:noise_free", "--set", "-3"], "'--set': -3 is not in the range x>=1"),
    (["jart:noise_free", "--reset", "0"], "'--reset': 0 is not in the range x>=1"),
    (["jart:noise_free", "--set", "3", "--from-weight", "0.7"], "outside the weight range"),
    (["jart:nonsense", "--set", "3"], "preset"),
    (["jart:noise_free", "--sequence", "+3,x"], "signed counts"),
    (["jart:noise_free", "--set", "3", "--devices", "0"], "'--devices': 0 is not in the range"),
    (["jart:noise_free", "--set", "1", "--devices", "99999999999"], "at most 10,000,000"),
    (["hfox", "--set", "3"], "only reset"),
    (["float", "--set", "3"], "no pulses"),
])
def test_pulse_refuses_bad_options_in_one_line(args, problem, tmp_path):
    res = CliRunner().invoke(main, ["pulse", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, problem", [
    # beyond W_BOUNDS_MAX x 0.6 the read current would pass its limit g(0.2 V): no N reads it
    ("kind: jart\nd2d: {w_bounds: {sigma: 0.3, bounds: [0.5, 2.0]}}\n",
     "upper bound must be below 1.373"),
    ("kind: [jart]\n", "key 'device.kind': must be a string"),
])
def test_pulse_refuses_a_bad_device_yaml_in_one_line(text, problem, tmp_path):
    spec = tmp_path / "device.yaml"
    spec.write_text(text)
    res = CliRunner().invoke(main, ["pulse", str(spec), "--set", "2", "--out",
                                    str(tmp_path / "o")])
    assert res.exit_code == 2 and problem in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_unbounded_weight_bound_draws_stay_readable():
    kind = registry.parse_device({"kind": "jart", "d2d": {"w_bounds": {"sigma": 0.5,
                                                                       "bounds": None}}})
    pop = kind.population((20000,), seed=0)
    pop.pulse_all("set", 2)
    assert torch.isfinite(pop.n).all() and torch.isfinite(pop.g).all()


def test_jart_serves_as_the_truth_of_a_bias_sweep():
    """``jart:PRESET`` is a device model: Algorithm-2 data from fresh devices, a one-pulse
    distribution consistent with its draws, and a sweep spec that names it as a truth."""
    import numpy as np

    from memsim.models.sampling import sample_points
    from memsim.sweep.spec import load_sweep_spec

    quiet = registry.load_truth("jart:noise_free")
    data = sample_points(quiet, 300, seed=0)
    pts = data.points["set"]
    assert (pts.dg >= 0).all() and (pts.g >= quiet.g_min).all() and (pts.g <= quiet.g_max).all()
    # deterministic given G: the model's mean is the sampled change
    assert np.allclose(quiet.mean("set", pts.g[:20]), pts.dg[:20], rtol=1e-3, atol=1e-12)
    noisy = registry.load_truth("jart:realistic_mixed")
    # only the noise-free device is a function of G that a jump table can hold exactly
    assert quiet.memoryless and not noisy.memoryless
    assert registry.load_truth("jart:d2d_rdisc_realistic").memoryless is False
    g = np.linspace(noisy.g_min, noisy.g_max, 7)[1:-1]
    q = noisy.quantile("reset", g, np.array([0.1, 0.5, 0.9]))
    assert (np.diff(q, axis=1) >= 0).all() and (noisy.std("reset", g) > 0).all()
    # the CDF and the quantiles agree (a fixed sample of devices per G; devices piled up at
    # the clipping bounds of their parameters tie)
    median = q[:, 1:2]
    assert (noisy.cdf("reset", g, median)[:, 0] >= 0.5).all()
    assert (noisy.cdf("reset", g, median - 1e-6 * np.abs(median) - 1e-15)[:, 0] <= 0.5).all()
    # a sweep names it as a truth; its identity is its settings, stable across runs
    spec = load_sweep_spec(REPO / "experiments" / "bias_jart.yaml")
    assert [t.ref for t in spec.truths] == ["jart:noise_free", "jart:realistic_mixed"]
    assert registry.truth_ident("jart:noise_free") == registry.truth_ident("jart:noise_free")
    assert registry.truth_ident("jart:noise_free") != registry.truth_ident("jart:realistic_mixed")


@pytest.mark.parametrize("preset", ["c2c_rdisc_30", "d2d_rdisc_30", "realistic_mixed"])
def test_extreme_discs_never_leave_the_physical_limits(preset):
    """A disc 30 % smaller than nominal heats so much that one explicit Euler step overshoots
    N_discmin / N_discmax: the state is held at the limit, never NaN."""
    pop = JartKind.from_preset(preset).population(400, seed=2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(15):
        pop.apply(torch.randint(-4, 5, (400,), generator=gen))
        assert torch.isfinite(pop.g).all() and torch.isfinite(pop.area).all()
    assert (pop.n.double() >= pop.ndiscmin - 1e-6).all()
    assert (pop.n.double() <= pop.ndiscmax + 1e-6).all()
    # a disc at -30 % radius RESETs to N_discmin within one pulse (no overshoot below it)
    small = JartPopulation(1, {}, {}, True)
    small.area = small.area * 0.49
    small.n_lo = torch.zeros(1, dtype=torch.float64)
    small._pulse(None, False)
    assert float(small.n) == pytest.approx(jart.N_DISCMIN, rel=1e-6)


def test_unbounded_spreads_stay_physical_and_switched_devices_round_trip():
    """sigma 0.3 without bounds: about 1 device in 2300 would draw a negative size; sizes stay
    positive and every device starts within its own bounds. A switched device written to a
    spec reads back as itself."""
    for preset in ("d2d_ndiscmax_unbounded", "d2d_ldisc_unbounded", "d2d_rdisc_unbounded"):
        pop = JartKind.from_preset(preset).population(20000, seed=0)
        assert float(pop.ndiscmax.min()) > 0 and float(pop.ldisc.min()) > 0
        assert float(pop.area.min()) > 0
        assert (pop.n.double() >= pop._lower()).all() and (pop.n.double() <= pop._upper()).all()
        pop._pulse(None, True)
        assert torch.isfinite(pop.g).all()
    off = JartKind.from_preset("realistic_mixed").switched({"d2d": False})
    doc = off.resolved()
    back = registry.parse_device(doc)
    assert (back.d2d, back.c2c) == (off.d2d, off.c2c) and not back.d2d and back.c2c
    none = JartKind.from_preset("realistic_mixed").switched({"all": False})
    assert none.describe() == "jart:noise_free"
    assert not registry.parse_device(none.resolved()).noisy


def test_kind_presets_pass_through_command_line_paths():
    from memsim.cli import _cwd_path

    assert _cwd_path("jart:realistic_mixed") == "jart:realistic_mixed"


def test_results_readme_jart_runs_pool_seeds_with_an_interval(tmp_path):
    """A full-scale run trained with several seeds is shown as their mean with its t-interval
    and compared with the published mean; a reduced-scale run is not compared."""
    import numpy as np

    from memsim.results_readme import JART_PUBLISHED, _jart_section

    acc = [0.9396, 0.9410, 0.9380]
    full = tmp_path / "train" / "mlp_jart_recommended_realistic_full"
    full.mkdir(parents=True)
    pd.DataFrame({"device": "jart:realistic_mixed", "algorithm": "sgd", "subset": 60000,
                  "epochs": 30, "seed": [0, 1, 2], "final_test_acc": acc}).to_csv(
        full / "summary.csv", index=False)
    small = tmp_path / "train" / "mlp_jart_recommended"
    small.mkdir()
    pd.DataFrame({"device": "jart:noise_free", "algorithm": "sgd", "subset": [10000],
                  "epochs": [1], "seed": [0], "final_test_acc": [0.27]}).to_csv(
        small / "summary.csv", index=False)
    text = "\n".join(_jart_section(tmp_path))
    row = next(line for line in text.splitlines() if "realistic_full" in line)
    m = 100 * np.mean(acc)
    half = 4.303 * 100 * np.std(acc, ddof=1) / np.sqrt(3)  # t(0.975, 2 dof)
    pub = JART_PUBLISHED["mlp_jart_recommended_realistic"]
    assert f"{m:.2f} [{m - half:.2f}, {m + half:.2f}]" in row
    assert f"{m - pub:+.2f} [{m - half - pub:+.2f}, {m + half - pub:+.2f}]" in row
    reduced = next(line for line in text.splitlines() if "| mlp_jart_recommended |" in line)
    assert "27.00" in reduced and reduced.rstrip("| ").endswith("-")
    assert "mlp_jart_published_full" not in text  # not run: nothing said of it
    published = tmp_path / "train" / "mlp_jart_published_full"
    published.mkdir()
    pd.DataFrame({"device": "jart:noise_free", "algorithm": "pulse_trains", "subset": 60000,
                  "epochs": 30, "seed": [0, 1, 2], "final_test_acc": [0.935, 0.936, 0.934],
                  "seconds": 5400.0}).to_csv(published / "summary.csv", index=False)
    text = "\n".join(_jart_section(tmp_path))
    row = next(line for line in text.splitlines() if "| mlp_jart_published_full |" in line)
    assert "93.50 [" in row and "| 93.82 |" in row  # compared with the published mean
    assert "1.5 h for its ensemble of 3 seeds" in text and "state table" in text
    # a reduced noisy run of the published rule prices the full one: 1800 s for 2 epochs of
    # 64 minibatches is 14.06 s each, 220 h for 30 epochs of 1875
    noisy = tmp_path / "train" / "mlp_jart_published_realistic_12k"
    noisy.mkdir()
    pd.DataFrame({"device": "jart:realistic_mixed", "algorithm": "pulse_trains",
                  "subset": 2048, "epochs": 2, "seed": [0, 1, 2], "final_test_acc": 0.1,
                  "seconds": 1800.0}).to_csv(noisy / "summary.csv", index=False)
    (noisy / "spec.yaml").write_text("subset: 2048\ntraining: {epochs: 2, batch: 32}\n")
    text = "\n".join(_jart_section(tmp_path))
    assert "14.06 s per minibatch for its ensemble of 3" in text and "about 220 h" in text


def test_results_readme_costs_each_noise_against_the_noise_free_runs_by_seed(tmp_path):
    """Each full-scale noise run is costed against the noise-free runs of the same seeds
    (paired), with a t-interval; a gain reads as a gain, not as 'no cost'."""
    from memsim.results_readme import _jart_noise_cost

    def write(name, acc):
        out = tmp_path / "train" / f"{name}_full"
        out.mkdir(parents=True)
        pd.DataFrame({"seed": [0, 1, 2], "final_test_acc": acc}).to_csv(
            out / "summary.csv", index=False)

    assert _jart_noise_cost(tmp_path) == []  # no noise-free runs: nothing to cost against
    write("mlp_jart_recommended", [0.950, 0.952, 0.954])
    write("mlp_jart_recommended_realistic", [0.940, 0.940, 0.940])  # costs 1.0, 1.2, 1.4
    write("mlp_jart_recommended_d2d_rdisc", [0.960, 0.961, 0.963])  # gains 1.0, 0.9, 0.9
    text = "\n".join(_jart_noise_cost(tmp_path))
    half = 4.303 * 0.2 / 3**0.5  # t(0.975, 2 dof) x sd of the paired differences / sqrt(3)
    assert f"+1.20 [{1.2 - half:+.2f}, {1.2 + half:+.2f}]" in text
    assert "-0.93 [" in text and "it raises the accuracy (the interval excludes 0)" in text
    assert "c2c" not in text and "interaction" not in text  # no runs, no row, no sentence
    # both halves of realistic mixed: the interaction is the whole's cost minus theirs
    write("mlp_jart_recommended_d2d", [0.960, 0.961, 0.963])  # costs -1.0, -0.9, -0.9
    write("mlp_jart_recommended_c2c", [0.955, 0.957, 0.958])  # costs -0.5, -0.5, -0.4
    text = "\n".join(_jart_noise_cost(tmp_path))
    half = 4.303 * 0.1 / 3**0.5  # per seed 2.5, 2.6, 2.7
    assert f"the interaction (the whole's cost minus the sum of the halves', paired by seed) " \
           f"is +2.60 [{2.6 - half:+.2f}, {2.6 + half:+.2f}] pp" in text
    assert "not isolated here" in text
    write("mlp_jart_recommended_rdisc", [0.941, 0.942, 0.944])  # costs 0.9, 1.0, 1.0
    text = "\n".join(_jart_noise_cost(tmp_path))
    assert "the two r_disc terms alone, nothing else, cost +0.97 [" in text
    assert "not isolated here" not in text


def test_sparse_benchmark_compares_the_table_with_the_simulation():
    from memsim import bench

    r = bench.bench_jart_sparse(devices=3000, per_round=20, rounds=6)
    # the same device, looked up: a float32 step or two apart where a pulse's last bit differed
    assert r["max_ulps_from_simulated"] <= 4
