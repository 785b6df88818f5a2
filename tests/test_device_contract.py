"""One contract, every registered device kind (as the analog hardware kit runs one test class
over every device model). A kind added to the registry is covered here without a new test."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from memsim.devices import registry
from memsim.devices.base import DeviceKind
from memsim.devices.ideal import IdealPopulation
from memsim.errors import MemsimError
from memsim.io.schema import Section

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
SHAPE = (3, 40)


def pulsed_kinds():
    return [name for name, cls in registry.KINDS.items() if not cls.is_float]


def _counts(kind: DeviceKind, seed: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(-3, 4, SHAPE, generator=gen)
    if "set" not in kind.polarities:
        counts = -counts.abs()
    if "reset" not in kind.polarities:
        counts = counts.abs()
    return counts.to(device)


def check_contract(name: str, device: str = "cpu") -> None:
    kind = registry.KINDS[name].example()
    lo, hi = kind.g_range()
    assert hi > lo
    step = kind.nominal_step(kind.polarities)
    assert 0 < step < hi - lo
    for dtype in (torch.float32, torch.float64):
        pops = [kind.population(SHAPE, device=device, seed=s, dtype=dtype) for s in (7, 7, 8)]
        for pop in pops:
            mid = torch.full(SHAPE, (lo + hi) / 2, dtype=dtype)
            pop.program(mid)
            g = pop.conductance()
            assert g.shape == SHAPE and g.dtype == dtype and g.device.type == device
            # programming reaches its targets: exactly where the range is the model's, and for
            # the typical device of a physics model (others may not reach them: d2d spread)
            err = (g.cpu().double() - mid.double()).abs() / (hi - lo)
            if pop.clips:
                assert float(err.max()) < 1e-6
            elif pop.exact_programming:
                assert float(err.median()) < 0.01
            else:  # open loop: the population's median lands near the target
                assert abs(float(g.double().median()) - (lo + hi) / 2) < 0.15 * (hi - lo)
        for pop in pops:
            total = 0
            for r in range(5):
                counts = _counts(kind, r, device)
                applied = pop.apply(counts)
                assert applied == int(counts.abs().sum())  # every pulse, none more
                total += applied
            assert pop.pulses_applied == total
            assert int(pop.device_pulses.sum()) == total
            g = pop.conductance()
            assert g.dtype == dtype and torch.isfinite(g).all()
            if pop.clips:
                assert (g >= pop.g_min - 1e-12).all() and (g <= pop.g_max + 1e-12).all()
            else:
                assert (g > 0).all()  # a physics model: conductances stay physical
        # the same seed gives the same devices; another seed other ones (where there is noise)
        assert torch.equal(pops[0].conductance(), pops[1].conductance())
        if kind.noisy:
            assert not torch.equal(pops[0].conductance(), pops[2].conductance())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", pulsed_kinds())
def test_every_device_kind_meets_the_contract(name, device):
    check_contract(name, device)


@pytest.mark.parametrize("name", pulsed_kinds())
def test_every_device_kind_reads_its_spec_and_refuses_unknown_keys(name):
    cls = registry.KINDS[name]
    ex = cls.example()
    if ex.path_fields and all(str(p).startswith("example") for f in ex.path_fields
                              for p in ([getattr(ex, f)] if isinstance(getattr(ex, f), str)
                                        else getattr(ex, f))):
        pytest.skip("the example's models are built in code, not read from files")
    doc = ex.resolved()
    dev = registry.parse_device(doc)
    assert type(dev) is cls and dev.resolved() == doc  # what an output records parses back
    with pytest.raises(Exception, match="unknown key"):
        registry.parse_device({**doc, "no_such_key": 1})


@dataclass
class _DummyKind(DeviceKind):
    """A made-up device family: the registry line below is all it takes."""

    kind: ClassVar[str] = "dummy"
    noisy: ClassVar[bool] = False
    levels: int = 50

    @classmethod
    def from_spec(cls, sec: Section, base):
        return cls(sec.take("levels", int, 50))

    def g_range(self):
        return 0.0, 1.0

    def nominal_step(self, polarities=("set",)):
        return 1.0 / self.levels

    def population(self, shape, *, device="cpu", seed=0, choice=None, dtype=torch.float32):
        return IdealPopulation(0.0, 1.0, self.levels, shape, device, seed, dtype)


def test_a_new_kind_needs_only_its_registry_line(monkeypatch):
    monkeypatch.setitem(registry.KINDS, "dummy", _DummyKind)
    assert "dummy" in pulsed_kinds()
    check_contract("dummy")
    dev = registry.parse_device({"kind": "dummy", "levels": 20})
    assert isinstance(dev, _DummyKind) and dev.levels == 20


def test_neurosim_labels_solve_to_curves_of_that_nonlinearity():
    """label = 10.1 x the curve's largest gap from a line (NeuroSim's table within ~1 %):
    every label of a device-to-device spread is solved at once, to float64 precision."""
    import numpy as np

    from memsim.devices.neurosim import _curve_deviation, nonlinearity_to_a

    labels = np.array([0.01, 0.5, 2.4, 4.88, 9.0, 9.9])
    a = nonlinearity_to_a(labels)
    assert np.allclose(10.1 * _curve_deviation(a), labels, rtol=1e-9)
    assert a[2] == pytest.approx(0.50, abs=0.01) and a[3] == pytest.approx(0.20, abs=0.01)
    assert nonlinearity_to_a(np.array([0.0]))[0] == 1e9  # linear
    with pytest.raises(MemsimError, match="beyond the NeuroSim range"):
        nonlinearity_to_a(np.array([1.0, 10.5]))
