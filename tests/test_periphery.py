"""The analog kit's periphery (converters, output noise, noise and bound management)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from memsim.io.schema import load_yaml
from memsim.train.periphery import Noise, Periphery, backward_mvm, forward_mvm
from memsim.train.spec import parse_train_spec
from memsim.train.trainer import Trainer, prepare

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "tests" / "data" / "kit_periphery.npz"


@pytest.mark.parametrize("case", ["small", "saturating"])
def test_periphery_matches_the_kit_output_for_output(case):
    """The kit's own forward and backward (noise off) on one tile, including outputs up to 3.5x
    the bound that only iterative bound management brings back."""
    z = np.load(KIT)
    w = torch.tensor(z[f"{case}_W"]).T.contiguous()[None]  # memsim: x @ w, w (fan_in, fan_out)
    x, d = torch.tensor(z[f"{case}_x"])[None], torch.tensor(z[f"{case}_d"])[None]
    p = Periphery(out_noise=0.0)
    y = forward_mvm(x, w, p, Noise([0], "cpu"))[0]
    g = backward_mvm(d, w, p, Noise([0], "cpu"))[0]
    ky, kg = torch.tensor(z[f"{case}_y"]), torch.tensor(z[f"{case}_g"])
    assert torch.allclose(y, ky, atol=1e-4), float((y - ky).abs().max())
    assert torch.allclose(g, kg, atol=1e-6), float((g - kg).abs().max())
    exact = x[0] @ w[0]
    if case == "saturating":  # the control: these outputs are far from exact products
        assert exact.abs().max() > 3 * p.out_bound
        assert (y - exact).abs().max() > 0.1


def test_bound_management_brings_back_outputs_beyond_the_bound():
    x, w = torch.ones(1, 1, 1), torch.full((1, 1, 1), 20.1)
    p = Periphery(out_noise=0.0)
    y = forward_mvm(x, w, p, Noise([0], "cpu"))
    # halved once (10.05 fits), scaled back: off only by the coarser DAC step it then sees
    assert abs(float(y) - 20.1) <= 20.1 * p.inp_res + 2 * p.out_res
    clipped = forward_mvm(x, w, Periphery(out_noise=0.0, bound_management="none"),
                          Noise([0], "cpu"))
    assert float(clipped) == p.out_bound


def test_output_noise_is_the_kits_in_units_of_the_input_scale():
    """Noise 0.06 is added to the product of the *scaled* input: its size follows max|x|."""
    p = Periphery(out_bits=0)  # no output rounding: the noise alone
    w = torch.zeros(1, 8, 4000)
    x = torch.zeros(1, 2, 8)
    x[0, 0, 0], x[0, 1, 0] = 0.5, 4.0
    y = forward_mvm(x, w, p, Noise([1], "cpu"))[0]
    for row, scale in ((0, 0.5), (1, 4.0)):
        std = float(y[row].std())
        assert abs(std / (0.06 * scale) - 1) < 0.05, (row, std)  # 4000 draws: SE 1.1 %
        assert abs(float(y[row].mean())) < 4 * 0.06 * scale / 4000 ** 0.5
    zero = forward_mvm(torch.zeros(1, 1, 8), w, p, Noise([1], "cpu"))
    assert not zero.any()  # an all-zero input is not converted at all (the kit's shortcut)


def test_noise_streams_are_per_member_and_reproducible():
    p = Periphery()
    w = torch.randn(2, 16, 8)
    x = torch.rand(2, 5, 16)
    a = forward_mvm(x, w, p, Noise([3, 4], "cpu"))
    b = forward_mvm(x, w, p, Noise([3, 4], "cpu"))
    alone = forward_mvm(x[:1], w[:1], p, Noise([3], "cpu"))
    assert torch.equal(a, b)
    assert torch.equal(a[:1], alone)  # member 0 does not depend on the ensemble around it


def _spec(periphery, **extra):
    return parse_train_spec({"network": {"kind": "mlp", "hidden": [32], "activation": "sigmoid"},
                             "subset": 1000, "seed": 1, "periphery": periphery,
                             "training": {"epochs": 1, "batch": 50, "lr": 0.5}} | extra)


def test_an_ideal_periphery_is_the_exact_network():
    """Converters with no bits, no noise, no management: the same numbers as no periphery."""
    ideal = {"out_noise": 0.0, "inp_bits": 0, "out_bits": 0, "noise_management": "none",
             "bound_management": "none"}
    runs = []
    for periphery in (None, ideal):
        spec = _spec(periphery)
        runs.append(Trainer(spec, prepare(spec, "cpu"), "cpu").run(progress=False))
    assert runs[0]["test_acc"].tolist() == pytest.approx(runs[1]["test_acc"].tolist(), abs=2e-3)
    assert runs[0]["train_loss"].tolist() == pytest.approx(runs[1]["train_loss"].tolist(),
                                                           rel=1e-4)


def test_a_network_trains_through_the_kits_periphery_as_well_and_its_spec_reads_back():
    """The kit's converters and 6 % noise are small next to an MLP's signals: accuracy stays
    within a few points of the exact network (seen: 82.8 % vs 81.8 %)."""
    accs = []
    for periphery in (None, "kit"):
        spec = _spec(periphery, network={"kind": "mlp", "hidden": [32]}, subset=2000,
                     training={"epochs": 2, "batch": 50, "lr": 0.2})
        accs.append(Trainer(spec, prepare(spec, "cpu"), "cpu").run(progress=False)
                    ["test_acc"].iloc[-1])
    assert accs[1] > 0.75 and abs(accs[1] - accs[0]) < 0.04, accs
    assert spec.periphery == Periphery()
    again = parse_train_spec({k: v for k, v in spec.resolved().items() if k != "out"})
    assert again.periphery == spec.periphery


def test_the_published_jart_rule_needs_the_kits_periphery_to_keep_learning():
    """The JART study's network under its pulse-train rule: with exact products its sigmoids
    saturate within two minibatches and hardly a pulse is sent after that (seen: 3 in batches
    11 to 30); through the kit's periphery errors keep flowing and pulses keep coming (seen:
    17,053), as in the authors' own code."""
    after = {}
    for periphery in ("none", "kit"):
        spec = parse_train_spec({**load_yaml(ROOT / "experiments" / "mlp_jart_published.yaml"),
                                 "periphery": periphery, "subset": 320, "out": None},
                                ROOT / "experiments" / "x.yaml")
        h = Trainer(spec, prepare(spec, "cpu"), "cpu").run(epochs=2, progress=False)
        pulses = h["pulses"].to_numpy()
        assert pulses[0] > 0
        after[periphery] = pulses[-1] - pulses[0]  # epoch 2: batches 11 to 20
    assert after["kit"] > 100 * max(after["none"], 1), after
