"""The HfOx weak-RESET model: published behaviour, RESET-only, programming, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memsim.devices.hfox import HfOxPopulation, draw_parameters
from memsim.errors import MemsimError
from memsim.train.spec import parse_train_spec
from memsim.train.trainer import Trainer, prepare


def test_parameters_follow_the_truncated_distributions():
    p = draw_parameters(50_000, seed=1)
    assert p["m1"].min() >= 3.74e-5 and p["m1"].max() <= 0.0076
    assert p["t_star"].min() >= 41 and p["t_star"].max() <= 2000
    assert np.median(p["t_star"]) == pytest.approx(540, rel=0.08)
    assert p["r0"].mean() == pytest.approx(6988, rel=0.01)


def test_devices_match_the_published_sanity_figures():
    """Median resistance rise over a population: about 1.07x after 100 pulses, 1.23x after
    about 540, then much slower."""
    pop = HfOxPopulation(4000, seed=0, dtype=torch.float64)
    r_start = float(torch.median(1 / pop.conductance()))
    ratios = {}
    for k, n in ((100, 100), (540, 440), (1540, 1000)):
        pop.pulse_all("reset", n)
        ratios[k] = float(torch.median(1 / pop.conductance())) / r_start
    assert ratios[100] == pytest.approx(1.07, abs=0.02)
    assert ratios[540] == pytest.approx(1.23, abs=0.03)
    # then much slower: the rise per pulse after t* at most half of the rise before
    assert (ratios[1540] - ratios[540]) / 1000 < 0.5 * (ratios[540] - 1) / 540


def test_reset_only_and_programming():
    pop = HfOxPopulation(1000, seed=2, dtype=torch.float64)
    with pytest.raises(MemsimError, match="no SET"):
        pop.apply(torch.ones(1000, dtype=torch.long))
    target = torch.full((1000,), 1.2e-4, dtype=torch.float64)
    pop.program(target)
    err = (pop.conductance() - target).abs()
    # within half a pulse of each device's own step (write-verify reads the noise too)
    slope = torch.where(pop.t < pop.t_star, pop.m1, pop.m2)
    local_step = target * slope
    # a device whose fresh conductance is already below the target, or whose plateau stays
    # above it, cannot reach it with RESET pulses: those are a few percent
    reachable = (pop.t > 0) & (pop.t < 1e6)
    assert float(reachable.double().mean()) > 0.9
    assert bool((err <= 0.51 * local_step + 1e-12)[reachable].all())
    before = pop.conductance().clone()
    for _ in range(20):
        pop.apply(-torch.full((1000,), 10, dtype=torch.long))
    assert float((pop.conductance() < before).double().mean()) > 0.8  # RESET lowers G


def test_bnn_on_hfox_trains():
    spec = parse_train_spec({"network": {"kind": "bnn", "hidden": [128]}, "subset": 3000,
                             "device": {"kind": "hfox"},
                             "mapping": {"policy": "reset", "refresh_every": 20,
                                         "max_pulses": 14},
                             "training": {"epochs": 1, "optimizer": "adam", "lr": 0.005,
                                          "batch": 100}})
    h = Trainer(spec, prepare(spec)).run(progress=False)
    assert h["test_acc"].iloc[-1] > 0.7 and h["pulses"].iloc[-1] > 0
