"""The HfOx weak-RESET model: published behaviour, its switches, RESET-only, programming,
training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memsim.devices.hfox import (
    P_HIGH,
    PINK_SCALE,
    R0_MEDIAN,
    HfOxKind,
    HfOxPopulation,
    draw_parameters,
    median_mean_log_r,
)
from memsim.errors import MemsimError
from memsim.train.spec import parse_train_spec
from memsim.train.trainer import Trainer, prepare

SWITCHES = ("d2d", "rtn", "pink", "nonlinearity")


def _log_r(pop) -> torch.Tensor:
    return torch.log(1 / (pop.g.double() * pop.r0))  # log R/R0 as read


def test_parameters_follow_the_truncated_distributions():
    p = draw_parameters(50_000, seed=1)
    assert p["m1"].min() >= 3.74e-5 and p["m1"].max() <= 0.0076
    assert p["t_star"].min() >= 41 and p["t_star"].max() <= 2000
    assert np.median(p["t_star"]) == pytest.approx(540, rel=0.08)
    assert p["r0"].mean() == pytest.approx(6988, rel=0.01)


def test_population_median_matches_the_published_sanity_figures():
    """The population median of R/R0 (mean model) is about 1.07 after 100 pulses and 1.23
    after 540, then rises much more slowly; the d2d-off device follows that median behaviour
    (the device of median parameters would read 1.31 after 540)."""
    pop = HfOxPopulation(8000, seed=0, dtype=torch.float64, rtn=False, pink=False)
    med = HfOxPopulation(3, seed=0, dtype=torch.float64, d2d=False, rtn=False, pink=False)
    ratios, med_ratios = {}, {}
    for k, n in ((100, 100), (540, 440), (1540, 1000)):
        pop.pulse_all("reset", n)
        med.pulse_all("reset", n)
        ratios[k] = float(torch.exp(_log_r(pop)).median())
        med_ratios[k] = float(torch.exp(_log_r(med))[0])
    assert ratios[100] == pytest.approx(1.07, abs=0.01)
    assert ratios[540] == pytest.approx(1.23, abs=0.01)
    for k in ratios:
        assert med_ratios[k] == pytest.approx(ratios[k], abs=0.01)
    assert (ratios[1540] - ratios[540]) / 1000 < 0.5 * (ratios[540] - 1) / 540


def test_telegraph_chain_starts_and_stays_stationary():
    pop = HfOxPopulation(40_000, seed=3, dtype=torch.float64)
    sd = np.sqrt(P_HIGH * (1 - P_HIGH) / 40_000)
    assert float(pop.high.double().mean()) == pytest.approx(P_HIGH, abs=4 * sd)
    assert float(pop.rtn[~pop.high].abs().max()) == 0.0
    assert float(pop.rtn[pop.high].min()) > 0.0
    pop.pulse_all("reset", 300)
    assert float(pop.high.double().mean()) == pytest.approx(P_HIGH, abs=4 * sd)


def test_every_switch_off_is_the_deterministic_mean_curve():
    off = dict.fromkeys(SWITCHES, False)
    a = HfOxPopulation(50, seed=1, dtype=torch.float64, **off)
    b = HfOxPopulation(50, seed=2, dtype=torch.float64, **off)
    for n in (10, 200, 800):
        a.pulse_all("reset", n)
        b.pulse_all("reset", n)
        assert torch.equal(a.g, b.g)  # no randomness left
        t = float(a.t[0])
        w0, w1 = median_mean_log_r([0.0, 2000.0])
        line = w0 + (w1 - w0) * t / 2000
        assert torch.allclose(a.g, torch.full_like(a.g, 1 / (R0_MEDIAN * np.exp(line))))


@pytest.mark.parametrize("switch", SWITCHES)
def test_each_switch_changes_only_what_it_names(switch):
    """Only ``switch`` on, against every switch off (same seed, same pulses): the read log R
    differs by exactly the term the switch names."""
    off = dict.fromkeys(SWITCHES, False)
    base = HfOxPopulation(400, seed=5, dtype=torch.float64, **off)
    one = HfOxPopulation(400, seed=5, dtype=torch.float64, **{**off, switch: True})
    for pop in (base, one):
        pop.pulse_all("reset", 150)
    diff = torch.log(1 / one.g.double()) - torch.log(1 / base.g.double())
    if switch == "rtn":
        expected = one.rtn
    elif switch == "pink":
        expected = PINK_SCALE * (one.buf.double() @ one.b)
    elif switch == "nonlinearity":
        expected = torch.full_like(diff, float(median_mean_log_r(150.0))
                                   - float(base._curve(base.t[:1], None)[0]))
    else:  # d2d: each device its own R0 and mean curve (here one slope), no noise
        own = torch.log(one.r0) + one._curve(one.t, None)
        expected = own - (np.log(R0_MEDIAN) + base._curve(base.t, None))
        assert float(diff.std()) > 0.01  # the devices differ from each other
    assert torch.allclose(diff, expected, atol=1e-6)


def test_switched_noise_is_still_drawn():
    """Variants of an ablation share their random numbers: switching rtn off changes no other
    draw (the pink buffer and the chain evolve identically)."""
    a = HfOxPopulation(100, seed=9, dtype=torch.float64)
    b = HfOxPopulation(100, seed=9, dtype=torch.float64, rtn=False)
    a.pulse_all("reset", 50)
    b.pulse_all("reset", 50)
    assert torch.equal(a.buf, b.buf) and torch.equal(a.high, b.high)


def test_reset_only_and_open_loop_programming():
    pop = HfOxPopulation(4000, seed=2, dtype=torch.float64)
    with pytest.raises(MemsimError, match="no SET"):
        pop.apply(torch.ones(4000, dtype=torch.long))
    span = pop.g_max - pop.g_min
    target = torch.full((4000,), pop.g_min + 0.5 * span, dtype=torch.float64)
    pop.program(target)
    # open loop: one pulse count for every device, the written values spread by d2d ...
    assert torch.unique(pop.t).numel() == 1
    assert float(pop.g.std()) > 0.2 * span
    # ... around the target (the programmer is calibrated on the median behaviour as read)
    assert float(pop.g.median()) == pytest.approx(float(target[0]), abs=0.05 * span)
    # without d2d and noise, open loop reaches the target to within one pulse
    ideal = HfOxPopulation(10, seed=2, dtype=torch.float64, d2d=False, rtn=False, pink=False)
    ideal.program(target[:10])
    step = ideal.nominal_reset_step()
    assert float((ideal.g - target[:10]).abs().max()) < 5 * step
    before = pop.conductance().clone()
    for _ in range(20):
        pop.apply(-torch.full((4000,), 10, dtype=torch.long))
    assert float((pop.conductance() < before).double().mean()) > 0.8  # RESET lowers G


def test_write_verify_reaches_each_device_target():
    pop = HfOxPopulation(1000, seed=2, dtype=torch.float64, write_verify=True)
    target = torch.full((1000,), 1.2e-4, dtype=torch.float64)
    pop.program(target)
    err = (pop.conductance() - target).abs()
    slope = pop._curve(pop.t + 1, None) - pop._curve(pop.t, None)  # log R per pulse, here
    # devices that read below the target fresh (or stay above it for ever) cannot reach it
    reachable = (pop.t > 0) & (pop.t < 1e6)
    assert float(reachable.double().mean()) > 0.8
    # within half a pulse of each device's own step (verify reads the noise too)
    assert bool((err <= 0.51 * target * slope + 1e-12)[reachable].all())


def test_kind_switches_and_spec():
    kind = HfOxKind()
    assert kind.switched({"d2d": False}).d2d is False
    only = kind.switched({"all": False, "rtn": True})
    assert (only.d2d, only.rtn, only.pink, only.nonlinearity) == (False, True, False, False)
    with pytest.raises(MemsimError, match="unknown switch 'telegraph'"):
        kind.switched({"telegraph": False})
    spec = parse_train_spec({"device": {"kind": "hfox", "rtn": False, "write_verify": True},
                             "network": {"kind": "bnn"}, "mapping": {"policy": "reset"}})
    assert spec.device.rtn is False and spec.device.write_verify is True
    with pytest.raises(MemsimError, match="must be"):
        parse_train_spec({"device": {"kind": "hfox", "rtn": 0.5}, "network": {"kind": "bnn"},
                          "mapping": {"policy": "reset"}})


def test_published_rounding_rule():
    """``rounding: nearest`` with dw_min 1: the pulse count is round(clamp(step, +-14))."""
    spec = parse_train_spec({"network": {"kind": "bnn", "hidden": [8]}, "subset": 200,
                             "device": {"kind": "hfox"},
                             "mapping": {"policy": "reset", "max_pulses": 14, "dw_min": 1.0},
                             "training": {"algorithm": {"kind": "sgd", "rounding": "nearest"},
                                          "optimizer": "adam", "lr": 1.0, "batch": 50}})
    trainer = Trainer(spec, prepare(spec))
    syn = trainer.net.syn
    dw = torch.linspace(-20, 20, syn.size)
    before = syn.pop.device_pulses.clone()
    syn.update(dw.clone())
    sent = (syn.pop.device_pulses - before).view(2, -1).sum(dim=0)
    assert torch.equal(sent.long(), dw.clamp(-14, 14).round().abs().long())


def test_bnn_on_hfox_trains():
    spec = parse_train_spec({"network": {"kind": "bnn", "hidden": [128]}, "subset": 3000,
                             "device": {"kind": "hfox"},
                             "mapping": {"policy": "reset", "refresh_every": 20,
                                         "max_pulses": 14},
                             "training": {"epochs": 1, "optimizer": "adam", "lr": 0.005,
                                          "batch": 100}})
    h = Trainer(spec, prepare(spec)).run(progress=False)
    assert h["test_acc"].iloc[-1] > 0.6 and h["pulses"].iloc[-1] > 0


def test_an_update_applies_its_pulses_at_once():
    """n pulses in one update: the counter advances by n, the 1/f buffer by n fresh samples
    (the older ones shift along), and every pulse is counted."""
    pop = HfOxPopulation(6, seed=4, dtype=torch.float64)
    before = pop.buf.clone()
    counts = -torch.tensor([0, 1, 2, 5, 14, 20], dtype=torch.int32)
    applied = pop.apply(counts)
    assert applied == 42 and torch.equal(pop.device_pulses, -counts)
    assert torch.equal(pop.t, (-counts).double())
    for i, k in enumerate((-counts).tolist()):
        if k < 15:
            assert torch.equal(pop.buf[i, k:], before[i, :15 - k])


def test_refresh_reforms_devices_that_spent_their_pulse_budget():
    """With device-to-device variation a conductance says little about how far a device has
    gone, so an HfOx pair is re-formed when one of its devices has used its pulse budget."""
    spec = parse_train_spec({"network": {"kind": "bnn", "hidden": [8]}, "subset": 400,
                             "device": {"kind": "hfox", "levels": 50},
                             "mapping": {"policy": "reset", "max_pulses": 14,
                                         "refresh_every": 1, "refresh_threshold": 0.9,
                                         "dw_min": 0.0005},
                             "training": {"epochs": 1, "batch": 50}})
    trainer = Trainer(spec, prepare(spec))
    trainer.run(progress=False)
    syn = trainer.net.syn
    assert syn.refreshes > 0
    assert float(syn.pop.budget_used().max()) <= 0.9  # every spent device was re-formed
