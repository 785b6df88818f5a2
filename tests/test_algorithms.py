"""Update algorithms: accumulators conserve what they are given, algorithms agree in
expectation where they should, Tiki-Taka transfers A into C, pulse trains average to
-lr x delta, and bad settings are refused before training."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

from memsim.devices.ideal import IdealKind
from memsim.train.algorithms.mixed_precision import MixedPrecision
from memsim.train.algorithms.pulse_trains import PulseTrains
from memsim.train.algorithms.sgd import SGD
from memsim.train.algorithms.tiki_taka import TikiTaka
from memsim.train.cells import Mapping
from memsim.train.synapses import DeviceSynapses

SHAPES = [(40, 30), (30, 10)]


def _syn(algorithm, noise=0.0, levels=100, members=2, max_pulses=8):
    dev = IdealKind(levels=levels, noise=noise)
    syn = DeviceSynapses(SHAPES, members, "cpu", dev, Mapping(w_max=1.0, max_pulses=max_pulses),
                         seed=3, algorithm=algorithm)
    syn.initialise(torch.zeros(syn.size))
    return syn


def _dw_stream(size, steps, scale, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(size, generator=gen) * 2 - 1) * scale for _ in range(steps)]


@pytest.mark.parametrize(("verify", "noise"), [(False, 0.0), (True, 0.0), (True, 0.7)])
def test_accumulator_conserves_every_desired_change(verify, noise):
    """chi + (what the devices changed) = sum of desired changes: nothing lost or counted
    twice. Without verify this holds for the commanded pulses (exact on a noise-free device);
    with verify for the change read back, whatever the write noise."""
    syn = _syn(MixedPrecision(verify=verify), noise=noise)
    w0 = syn.flat.clone()
    total = torch.zeros(syn.size)
    for dw in _dw_stream(syn.size, 60, 0.004):
        total += dw
        syn.update(dw.clone())
    chi = syn.algorithm.chi
    assert torch.allclose(chi + (syn.flat - w0), total, atol=1e-5)
    if noise == 0:  # whatever reached a pulse was sent (a noisy pulse leaves a residual
        assert (chi.abs() < syn.dw_min + 1e-6).all()  # that waits for the next step)
    assert torch.equal(syn.flat, syn.array.read())  # the network sees what the devices hold


def test_mixed_precision_equals_sgd_in_expectation_on_a_fine_ideal_device():
    steps = 40
    sgd, mp = _syn(SGD()), _syn(MixedPrecision())
    g = torch.Generator().manual_seed(1)
    rate = (torch.rand(sgd.size, generator=g) * 2 - 1) * 0.3 * sgd.dw_min  # per step
    for _ in range(steps):
        sgd.update(rate.clone())
        mp.update(rate.clone())
    want = steps * rate
    # SGD: stochastic rounding, unbiased; its mean error over n weights has standard error
    # dw_min sqrt(steps p (1 - p) / n), p the fractional pulse per step
    p = (rate / sgd.dw_min).abs()
    se = float(sgd.dw_min[0] * torch.sqrt(steps * (p * (1 - p)).mean() / sgd.size))
    assert abs(float((sgd.flat - want).mean())) < 4 * se
    # mixed precision: deterministic, within one pulse of the desired total everywhere
    assert ((mp.flat - want).abs() <= mp.dw_min + 1e-6).all()
    assert abs(float((mp.flat - want).mean())) < 4 * se + float(mp.dw_min[0])
    assert mp.pulses < sgd.pulses  # the accumulator sends no pulse pair that cancels


def test_tiki_taka_transfer_moves_a_into_c():
    algo = TikiTaka(max_transfer_pulses=127, transfer_lr=0.5)
    syn = _syn(algo, levels=200)
    fast, slow = algo.fast, syn.array
    # the fast array's reference is each device's symmetry point: A reads 0 at the start
    assert torch.allclose(fast.read(), torch.zeros(syn.size), atol=1e-6)
    g = torch.Generator().manual_seed(2)
    a = ((torch.rand(syn.size, generator=g) * 2 - 1) * 0.2)
    fast.program(a)
    a = fast.read()
    c0 = slow.read()
    sweeps = 3
    for _ in range(sweeps * max(fi for fi, _ in SHAPES)):  # every column visited >= 3 times
        algo.transfer()
    assert torch.allclose(fast.read(), a)  # reading A does not change it
    visits = torch.cat([torch.full((syn.members * fi * fo,),
                                   float(sweeps * max(f for f, _ in SHAPES) // fi))
                        for fi, fo in SHAPES])
    moved = slow.read() - c0
    expected = visits * 0.5 * a  # C += transfer_lr * A per visit, H keeps the rest
    held = algo.buffer * slow.dw_min
    assert torch.allclose(moved + held, expected, atol=1e-5)
    assert (held.abs() < slow.dw_min + 1e-6).all()
    assert torch.equal(syn.flat, slow.read())  # gamma = 0: the network sees C


def test_pulse_trains_average_to_minus_lr_x_delta():
    algo = PulseTrains(bl=31)
    syn = _syn(algo)
    g = float(syn.dw_min[0])
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(1, 1, 6, generator=gen) * 2 - 1
    d = (torch.rand(1, 1, 5, generator=gen) * 2 - 1) * 0.1
    lr = 0.05
    batch = 4000  # the same example many times: the mean of the coincidences
    xb, db = x.expand(1, batch, 6).contiguous(), d.expand(1, batch, 5).contiguous()
    up, down = algo.coincidences(xb, db, lr, g)
    net = (up - down) * g / batch  # the mean weight change per example
    want = -lr * x[0, 0, :, None] * d[0, 0, None, :]
    p_x, p_d, bl = algo.probabilities(x, d, lr, g)
    assert float(bl) < 31 or (p_x <= 1).all()
    p = (p_x[0, 0, :, None] * p_d[0, 0, None, :])
    # each example: BL slots, each a coincidence with probability p: variance BL p (1 - p)
    sd = g * torch.sqrt(float(bl) * p * (1 - p) / batch)
    z = (net[0] - want) / sd.clamp(min=1e-12)
    assert z.abs().max() < 5, z
    assert ((up > 0) & (down > 0)).sum() == 0  # one example's pulses on a device share a sign


@pytest.mark.parametrize(("training", "expected"), [
    ("{algorithm: adagrad}", "must be one of"),
    ("{algorithm: {kind: pulse_trains, bl: 0}}", "'training.algorithm.bl': must be in"),
    ("{algorithm: {kind: tiki_taka, transfer_every: 0}}", "transfer_every': must be positive"),
    ("{algorithm: {kind: tiki_taka, speed: 2}}", "unknown key"),
    ("{schedule: {kind: cosine, min_lr: -1}}", "'training.schedule.min_lr': must be >= 0"),
    ("{schedule: exponential}", "must be one of constant, step, cosine"),
    ("{schedule: {kind: step}}", "'training.schedule.every': is required"),
    ("{algorithm: pulse_trains, optimizer: adam}", "use optimizer sgd"),
])
def test_bad_algorithm_settings_are_one_line(runner, tmp_path, training, expected):
    spec = tmp_path / "t.yaml"
    spec.write_text(f"device: ideal\ntraining: {training}\n")
    result = run_cli(runner, ["train", spec, "--out", tmp_path / "o"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and expected in line and "t.yaml" in line, line
    assert not (tmp_path / "o").exists()


def test_grid_runs_every_cell_once_and_tabulates_over_seeds(tmp_path):
    from memsim.train.grid import parse_grid, run_grid, write_grid_outputs

    doc = {"name": "g", "subset": 300, "seeds": [0, 1],
           "networks": {"mlp": {"network": {"kind": "mlp", "hidden": [8]},
                                "training": {"epochs": 2, "report_last": 2}}},
           "devices": {"float": "float", "ideal": {"kind": "ideal", "levels": 50}},
           "algorithms": {"sgd": "sgd", "mp": {"kind": "mixed_precision"}}}
    grid = parse_grid(doc)
    assert [c[1:3] for c in grid.cells] == [("float", "-"), ("ideal", "sgd"), ("ideal", "mp")]
    history = run_grid(grid, log=lambda m: None)
    table = write_grid_outputs(grid, history, tmp_path)
    assert len(table) == 3 and (table["seeds"] == 2).all() and (table["last_k"] == 2).all()
    assert (tmp_path / "accuracy_ideal.png").exists() and (tmp_path / "table.md").exists()
    h = history[history["device"] == "ideal"]
    final = h[h["epoch"] == 2].groupby("algorithm")["test_acc"].mean()
    lastk = h.groupby("algorithm")["test_acc"].mean()
    got = table.set_index("algorithm")
    assert got.loc["sgd", "final_acc_pct"] == pytest.approx(100 * final["sgd"])
    assert got.loc["mp", "last_k_acc_pct"] == pytest.approx(100 * lastk["mp"])
    assert got.loc["-", "pulses_per_weight"] == 0 and got.loc["sgd", "pulses_per_weight"] > 0
    bad = {**doc, "algorithms": {"x": {"kind": "tiki_taka", "n_reads": 0}}}
    with pytest.raises(Exception, match="n_reads"):
        parse_grid(bad)


def test_tiki_taka_reset_returns_read_columns_to_the_symmetry_point():
    algo = TikiTaka(reset_prob=1.0, n_reads=5)
    syn = _syn(algo, levels=200)
    algo.fast.program(torch.full((syn.size,), 0.1))
    idx = algo.next_columns()
    algo.columns = [0] * len(SHAPES)  # transfer the same columns
    algo.transfer()
    a = algo.fast.read()
    rest = torch.ones(syn.size, dtype=torch.bool)
    rest[idx] = False
    assert torch.allclose(a[idx], torch.zeros(idx.numel()), atol=1e-6)
    assert torch.allclose(a[rest], torch.full((int(rest.sum()),), 0.1), atol=1e-6)
    # what was read went to C or stays in H (transfer_lr 1; C started at 0)
    moved = algo.buffer[idx] * syn.array.dw_min[idx] + syn.flat[idx]
    assert torch.allclose(moved, torch.full((idx.numel(),), 0.1), atol=1e-5)


def test_tiki_taka_with_gamma_computes_with_c_plus_gamma_a_through_resets_and_refresh():
    """The network's weights stay C + gamma A: after A is reset without a transfer pulse,
    and after a saturated C is re-programmed (to w - gamma A, not to w)."""
    algo = TikiTaka(gamma=0.5, reset_prob=1.0, transfer_lr=0.1)
    syn = _syn(algo, levels=1000)
    for _ in range(3):  # small steps: A grows, H stays below one pulse at each transfer
        syn.update(torch.full((syn.size,), 1.0) * algo.fast.dw_min)
        assert torch.allclose(syn.flat, algo.weights(), atol=1e-7)
    algo = TikiTaka(gamma=2.0, transfer_every=1000)
    syn = DeviceSynapses([(2, 2)], 1, "cpu", IdealKind(levels=1000),
                         Mapping(w_max=1.0, refresh_every=1), seed=0, algorithm=algo)
    syn.initialise(torch.full((4,), 0.9))  # near the top of the range: refreshed each step
    syn.update(torch.full((4,), 20.0) * algo.fast.dw_min)
    a = algo.fast.read()
    assert torch.all(a > 0)
    assert torch.allclose(syn.flat, 0.9 + 2.0 * a, atol=1e-5)  # the weight moved by gamma A
    assert torch.allclose(syn.array.read(), torch.full((4,), 0.9), atol=1e-5)
    assert torch.allclose(syn.flat, algo.weights(), atol=1e-6)


def test_tiki_taka_reads_each_column_of_a_narrow_layer_once():
    """n_reads above a layer's fan-in (a conv layer has 9) reads every column once, not some
    twice: a repeated index would pulse once and book two pulses."""
    algo = TikiTaka(n_reads=64)
    syn = _syn(algo)
    idx = algo.next_columns()
    assert idx.numel() == idx.unique().numel() == syn.size  # both layers have fan-in < 64
    algo = TikiTaka(n_reads=25)
    syn = _syn(algo, members=1)
    first = algo.next_columns()
    assert first.numel() == first.unique().numel() == 25 * 30 + 25 * 10
    # the next read of the 30-column layer wraps round: columns 25-29, then 0-19
    second = algo.next_columns()[25 * 30:] - 40 * 30
    assert sorted({int(i) // 10 for i in second}) == [*range(0, 20), *range(25, 30)]
