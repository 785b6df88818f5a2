"""memsim infer: state LUTs, weight codings and the inference run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import DATA, DEVICES

from memsim.cli import main
from memsim.errors import MemsimError
from memsim.infer.codings import CODINGS, FORMATS, from_bits, to_bits
from memsim.infer.spec import parse_infer_spec
from memsim.io.schema import Section
from memsim.states import StateLUT, best_threshold, empirical_ber, parse_lut, read_state_csv

LEVY = DATA / "levy_multilevel" / "techC_relaxdata.min.tsv.gz"


def synthetic_lut(n_states: int = 2, per_state: int = 400, spread: float = 0.08,
                  seed: int = 0) -> StateLUT:
    """Lognormal states a factor 2.5 apart in conductance (uS scale), some overlap at scale 3+."""
    rng = np.random.default_rng(seed)
    medians = 1e-6 * 2.5 ** np.arange(n_states)
    g = np.concatenate([rng.lognormal(np.log(m), spread * (1 + s), per_state)
                        for s, m in enumerate(medians)])
    data = pd.DataFrame({"state": np.repeat(np.arange(n_states), per_state), "time": 0.0,
                         "g": g, "device": np.tile(np.arange(per_state) % 20, n_states)})
    return StateLUT("synthetic", [f"S{i}" for i in range(n_states)], data)


def coding(name: str, **options):
    return CODINGS[name](Section({k: v for k, v in options.items()}, None))


def weights(n: int = 5000, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.2


CASES = [("float_bits", {"format": "float32"}, 2), ("float_bits", {"format": "float16"}, 2),
         ("float_bits", {"format": "bfloat16"}, 2), ("multilevel", {"format": "float32"}, 8),
         ("multilevel", {"format": "float16", "grouping": "interleaved", "gray": True}, 8),
         ("multilevel", {"format": "float32", "bits_per_cell": 2}, 4), ("analog", {}, 8)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,options,states", CASES)
def test_zero_variability_reads_back_exactly(name, options, states, device):
    lut = synthetic_lut(states)
    c = coding(name, **options)
    c.check(lut, "test")
    w = weights().to(device)
    sampler = lut.sampler("empirical", device=device)
    cells = c.write(w, lut)
    g = torch.stack([sampler.draw(cells, 0.0, torch.Generator(device=device).manual_seed(s))
                     for s in range(3)])
    out = c.read(g, w, sampler, 0.0)
    fmt = options.get("format")
    expected = from_bits(to_bits(w, fmt), fmt) if fmt else w
    assert torch.equal(out.weights, expected.expand_as(out.weights))  # bit-exact
    if out.bit_errors is not None:
        assert float(out.bit_errors.sum()) == 0
    assert int(out.nonfinite.sum()) == 0


def test_float16_and_bfloat16_round_as_torch_does():
    w = weights(1000)
    for fmt, dtype in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        assert torch.equal(from_bits(to_bits(w, fmt), fmt), w.to(dtype).float())
    assert to_bits(torch.tensor([-2.0]), "float32")[0, 0] == 1  # the sign comes first


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16"])
def test_a_flipped_exponent_bit_decodes_as_the_ieee_layout_predicts(fmt):
    """0.75 = 1.5 × 2^-1; flipping exponent bit k (k = 0 the most significant) adds or
    subtracts 2^(E-1-k) to the biased exponent: the value is 1.5 × 2^(e ± 2^(E-1-k))."""
    _, _, nbits, exp_bits = FORMATS[fmt]
    lut = synthetic_lut(2)
    c = coding("float_bits", format=fmt)
    w = torch.tensor([0.75])
    sampler = lut.sampler("empirical")
    medians = sampler.median
    bits = to_bits(w, fmt)[0]
    for k in range(exp_bits):
        pos = 1 + k
        flipped = bits.clone()
        flipped[pos] ^= 1
        g = medians[flipped.long()].view(1, 1, nbits)
        out = c.read(g, w, sampler, 0.0)
        step = 2 ** (exp_bits - 1 - k)
        new_exp = -1 + (step if flipped[pos] == 1 else -step)
        bias = 2 ** (exp_bits - 1) - 1
        if new_exp + bias == 2 ** exp_bits - 1:  # all ones: inf/NaN, counted and zeroed
            assert int(out.nonfinite[0]) == 1 and float(out.weights[0, 0]) == 0
        else:
            assert float(out.weights[0, 0]) == math.ldexp(1.5, new_exp)
        assert float(out.bit_errors[0, pos]) == 1 and float(out.bit_errors.sum()) == 1


def test_threshold_minimises_the_empirical_bit_error_rate():
    rng = np.random.default_rng(3)
    for _ in range(5):
        low = rng.lognormal(0, 0.5, 300)
        high = rng.lognormal(rng.uniform(0.3, 1.5), rng.uniform(0.2, 0.8), 200)
        t = best_threshold(low, high)
        grid = np.unique(np.concatenate([low, high, np.linspace(0, high.max() * 1.1, 2000)]))
        brute = min(empirical_ber(low, high, x) for x in grid)
        assert empirical_ber(low, high, t) <= brute + 1e-12
    # point masses (scale 0): the midpoint, zero errors
    assert best_threshold(np.full(5, 1.0), np.full(5, 3.0)) == 2.0


GROWTH = [("float_bits", {"format": "float32"}, 2),
          ("float_bits", {"format": "float32", "protect": ["sign", "exponent"]}, 2),
          ("multilevel", {"format": "float16", "gray": True}, 8), ("analog", {}, 8)]


@pytest.mark.parametrize("name,options,states", GROWTH)
def test_errors_grow_with_the_variability_scale(name, options, states):
    """Against scale, over 6 draws of 5000 weights: the bit error rate, the share of weights
    read wrong and (where an error cannot decode to the format's largest numbers, which
    saturates it) the relative weight error; each step up may not fall by more than 3
    standard errors of the draws, and the last is above the first."""
    lut = synthetic_lut(states)
    c = coding(name, **options)
    w = weights()
    sampler = lut.sampler("empirical")
    cells = c.write(w, lut)
    exact = from_bits(to_bits(w, c.fmt), c.fmt) if c.fmt else w
    series = {"ber": [], "wrong": [], "relative": []}
    for scale in (0.5, 1.0, 2.0, 4.0, 8.0):
        g = torch.stack([sampler.draw(cells, scale, torch.Generator().manual_seed(100 + s))
                         for s in range(6)])
        out = c.read(g, w, sampler, scale)
        values = {}
        if name != "analog":  # an analog read is never exactly right at a positive scale
            values["wrong"] = (out.weights != exact).double().mean(1).numpy()
        if out.bit_errors is not None:
            values["ber"] = out.bit_errors.mean(1).numpy()
        if name == "analog" or options.get("protect"):
            values["relative"] = ((out.weights.double() - w).norm(dim=1) / w.norm()).numpy()
        for key, v in values.items():
            series[key].append((v.mean(), v.std(ddof=1) / np.sqrt(len(v))))
    assert (series["wrong"] and series["ber"]) or series["relative"]
    for points in series.values():
        for (m0, s0), (m1, s1) in zip(points, points[1:], strict=False):
            assert m1 >= m0 - 3 * math.hypot(s0, s1)
        if points:
            assert points[-1][0] > points[0][0]


def test_reads_follow_the_measured_distribution_and_d2d_keeps_a_device():
    lut = synthetic_lut(2)
    states = torch.ones(20000, dtype=torch.long)
    g = lut.sampler("empirical").draw(states, 1.0, torch.Generator().manual_seed(0)).numpy()
    measured = lut.samples(1, 0.0)
    assert abs(np.median(g) - np.median(measured)) < 0.02 * np.median(measured)
    assert set(np.round(g, 18)) <= set(np.round(measured, 18))  # resampled, not invented
    d2d = lut.sampler("empirical", d2d=True).draw(states, 1.0, torch.Generator().manual_seed(0))
    assert set(np.round(d2d.numpy(), 18)) <= set(np.round(measured, 18))
    scaled = lut.sampler("lognormal").draw(states, 2.0, torch.Generator().manual_seed(0))
    unit = lut.sampler("lognormal").draw(states, 1.0, torch.Generator().manual_seed(0))
    med = float(lut.sampler("lognormal").median[1])
    assert float((scaled - med).std()) == pytest.approx(2 * float((unit - med).std()), rel=1e-6)


def test_levy_lut_states_match_the_source_notes():
    lut = parse_lut(Section({"source": "levy", "file": str(LEVY), "levels": [0, 31],
                             "times": [0, 100000]}, None), None)
    s = lut.summary()
    t0 = s[s["time"] == 0]
    assert t0["median"].iloc[0] == pytest.approx(0.78e-6, rel=0.05)
    assert t0["median"].iloc[1] == pytest.approx(39.3e-6, rel=0.02)
    assert (t0["sd"] < 0.5e-6).all()  # write-verify: tight right after programming
    late = s[s["time"] == 100000]
    assert (late["sd"].to_numpy() > 2 * t0["sd"].to_numpy()).all()  # relaxation spreads them


def test_synaptogen_lut_is_seeded_and_ordered():
    spec = {"source": "synaptogen", "cells": 50, "cycles": 5, "reset_stops": [1.1]}
    a = parse_lut(Section(dict(spec), None), None)
    b = parse_lut(Section(dict(spec), None), None)
    assert a.data.equals(b.data)
    assert a.states == ["HRS", "RESET_1.1V", "LRS"]
    assert np.all(np.diff(a.medians()) > 0)
    assert a.has_devices


def write(path, text):
    path.write_text(text)
    return path


def test_state_csv_reads_resistances_and_refuses_bad_files(tmp_path):
    ok = write(tmp_path / "ok.csv", "state,value,device\nLRS,10,0\nLRS,11,1\nHRS,100,0\n"
                                    "HRS,120,1\n")
    lut = read_state_csv(ok, "kohm")
    assert lut.states == ["HRS", "LRS"]  # ascending conductance
    assert lut.medians()[1] == pytest.approx((1 / 10e3 + 1 / 11e3) / 2)  # median of G
    bad = {"state,val\nA,1\n": "missing column 'value'",
           "state,value\nA,1\nA,2\nB,x\nB,3\n": "line 4",
           "state,value\nA,1\nA,2\nB,-3\nB,3\n": "positive",
           "state,value\nA,1\nA,2\nA,3\n": "at least 2 states",
           "state,value\nA,1\nB,2\nB,3\n": "fewer than 2 values",
           "state,value,colour\nA,1,r\n": "unknown column",
           "state,value,VALUE\nA,1,1\n": "'value' is given twice"}
    for i, (text, problem) in enumerate(bad.items()):
        path = write(tmp_path / f"bad{i}.csv", text)
        with pytest.raises(MemsimError, match=problem) as exc:
            read_state_csv(path, "ohm")
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(MemsimError, match="is a folder"):
        read_state_csv(tmp_path, "ohm")


def test_state_csv_takes_a_str_path_as_a_path(tmp_path):
    ok = write(tmp_path / "ok.csv", "state,value\nLRS,10\nLRS,11\nHRS,100\nHRS,120\n")
    assert read_state_csv(str(ok), "kohm").data.equals(read_state_csv(ok, "kohm").data)
    with pytest.raises(MemsimError, match="nofile.csv: file not found"):
        read_state_csv(str(tmp_path / "nofile.csv"), "S")
    lut = parse_lut(Section({"source": "csv", "file": "ok.csv", "unit": "kohm"}, None),
                    str(tmp_path))  # a str base folder too
    assert lut.states == ["HRS", "LRS"]


def test_the_default_levy_lut_is_the_shipped_one_wherever_the_spec_lies(tmp_path, monkeypatch):
    """The form the spec docstring shows, in a spec outside the repository (and run from
    another folder), reads the shipped table, not one beside the spec."""
    monkeypatch.chdir(tmp_path)
    entry = {"name": "levy_2", "source": "levy", "levels": [0, 31]}
    spec = parse_infer_spec({"luts": [entry], "codings": [{"coding": "analog"}]},
                            tmp_path / "specs" / "infer.yaml")
    shipped = parse_lut(Section({**entry, "file": str(LEVY)}, None), None)
    assert spec.luts[0].lut.data.equals(shipped.data)


def tiny_spec(tmp_path, lut_csv, **over) -> dict:
    spec = {"name": "t", "network": {"epochs": 1, "subset": 3000, "batch": 100},
            "layers": ["conv1"], "luts": [{"name": "mine", "source": "csv", "file": str(lut_csv),
                                           "unit": "uS"}],
            "codings": [{"coding": "float_bits"}, {"coding": "analog"}],
            "scales": [0, 4], "seeds": [0, 1], "test_subset": 300, "out": str(tmp_path / "o")}
    spec.update(over)
    return spec


def state_csv(tmp_path) -> str:
    rng = np.random.default_rng(0)
    rows = ["state,value"] + [f"HRS,{v}" for v in rng.normal(2.0, 0.3, 200)] + \
        [f"LRS,{v}" for v in rng.normal(8.0, 0.5, 200)]
    return write(tmp_path / "states.csv", "\n".join(rows) + "\n")


def test_infer_cli_writes_its_tables_and_zero_scale_is_the_float_network(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(tmp_path, state_csv(tmp_path))))
    res = CliRunner().invoke(main, ["infer", str(spec), "--seeds", "2", "--no-plots"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "inference.csv")
    for col in ("lut", "coding", "scale", "time", "ber", "relative_error", "accuracy"):
        assert col in table
    draws = pd.read_csv(tmp_path / "o" / "draws.csv")
    zero = draws[draws["scale"] == 0]
    assert (zero["relative_error"] == 0).all()
    assert zero["accuracy"].nunique() == 1  # every zero-scale draw is the float network
    assert (table.loc[table["scale"] == 0, "accuracy_change_pp"] == 0).all()
    noisy = draws[(draws["scale"] == 4) & (draws["coding"] == "analog")]
    assert (noisy["relative_error"] > 0).all()
    assert (tmp_path / "o" / "ber_by_bit.csv").exists()
    assert str(tmp_path) not in (tmp_path / "o" / "inference.md").read_text()
    # the spec written beside the results holds no machine path and reruns from there
    written = tmp_path / "o" / "infer_spec.yaml"
    assert str(tmp_path) not in written.read_text()
    again = parse_infer_spec(yaml.safe_load(written.read_text()), written)
    assert again.luts[0].lut.data.equals(parse_infer_spec(
        yaml.safe_load(spec.read_text()), spec).luts[0].lut.data)
    # a rerun without bit codings leaves no bit table of the earlier run behind
    analog = tiny_spec(tmp_path, state_csv(tmp_path), codings=[{"coding": "analog"}])
    spec.write_text(yaml.safe_dump(analog))
    res = CliRunner().invoke(main, ["infer", str(spec), "--seeds", "2", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "o" / "ber_by_bit.csv").exists()


def test_the_api_records_a_spec_that_reruns_from_its_output(tmp_path, monkeypatch):
    """run_inference from a notebook writes infer_spec.yaml as the CLI does: the spec as run,
    its files relative to the output folder, no machine path, results back into that folder."""
    import yaml

    from memsim import load_infer_spec, run_inference
    from memsim.io.paths import ROOT

    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path / "cache"))
    state_csv(tmp_path)
    path = tmp_path / "specs" / "infer.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(tiny_spec(
        tmp_path, "unused", luts=[{"name": "levy_2", "source": "levy", "levels": [0, 31]},
                                  {"name": "mine", "source": "csv", "file": "../states.csv",
                                   "unit": "uS"}],
        codings=[{"coding": "analog"}], scales=[0], seeds=[0], test_subset=100)))
    spec = load_infer_spec(path)
    spec.seeds = [3]  # changed in the notebook: recorded as run
    out = run_inference(spec, "cpu", log=lambda m: None, plots=False)
    written = out / "infer_spec.yaml"
    text = written.read_text()
    assert str(tmp_path) not in text and str(ROOT) not in text
    again = load_infer_spec(written)
    assert again.seeds == [3] and Path(again.out).resolve() == out.resolve()
    for a, b in zip(again.luts, spec.luts, strict=True):
        assert a.lut.data.equals(b.lut.data)


@pytest.mark.parametrize("change,problem", [
    ({"codings": [{"coding": "quantum"}]}, "unknown coding 'quantum'"),
    ({"codings": [{"coding": "multilevel", "bits_per_cell": 3}]}, "needs a LUT of 8 states"),
    ({"scales": [-1]}, "non-negative"),
    ({"scales": [0, 4, 4]}, "repeats a value"),
    ({"seeds": [0, 0]}, "repeats a value"),
    ({"seeds": 0}, "must be a count >= 1"),
    ({"layers": ["conv9"]}, "unknown layer 'conv9'"),
    ({"luts": [{"source": "levy", "levels": [0, 40]}]}, "levels"),
    ({"codings": [{"coding": "float_bits", "format": "float8"}]}, "format"),
    ({"luts": [{"source": "csv", "file": "missing.csv", "unit": "uS"}]}, "file not found"),
])
def test_infer_refuses_a_bad_spec_with_one_line(tmp_path, change, problem):
    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(tmp_path, state_csv(tmp_path), **change)))
    res = CliRunner().invoke(main, ["infer", str(spec)])
    assert res.exit_code == 2
    assert problem in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_infer_refuses_a_bad_state_csv(tmp_path):
    import yaml

    bad = write(tmp_path / "bad.csv", "state,value\nLRS,1\nLRS,2\nHRS,abc\nHRS,1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(tmp_path, bad)))
    res = CliRunner().invoke(main, ["infer", str(spec)])
    assert res.exit_code == 2 and "bad.csv: line 4: value must be a positive number" in res.output
    assert not (tmp_path / "o").exists()


def test_states_must_name_logic_1_as_the_higher_state():
    """The reader calls a cell above its threshold a 1: reversed states would invert every
    bit without a word."""
    from memsim.infer.codings.base import take_states
    from memsim.io.schema import Section

    assert take_states(Section({"states": [0, 2]}, "s.yaml")) == [0, 2]
    with pytest.raises(MemsimError, match="key 'states': logic 1 must be the higher state"):
        take_states(Section({"states": [1, 0]}, "s.yaml"))


def test_noisy_draws_are_scored_by_their_own_forward_pass():
    """Each draw's accuracy and layer error are those of its own weights: batched over draws,
    they equal a plain forward pass of each draw's network (an untrained LeNet on random
    images, so predictions move when weights do)."""
    from memsim.infer.network import accuracy, init_lenet
    from memsim.infer.run import Evaluator

    gen = torch.Generator().manual_seed(0)
    params = {**init_lenet(gen)}
    params["conv1.bias"] = torch.zeros_like(params["conv1.bias"])  # error of -w: exactly 2
    x = torch.rand(300, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (300,), generator=gen)
    ev = Evaluator(params, x, y, "conv1", "cpu")
    w = params["conv1.weight"]
    coded = {"conv1.weight": torch.stack([w, w + 0.3 * torch.randn(w.shape, generator=gen),
                                          -w])}
    err, acc = ev.measure(coded)
    for d in range(3):
        own = accuracy({**params, "conv1.weight": coded["conv1.weight"][d]}, x, y)
        assert acc[d] == pytest.approx(own, abs=1e-12)
    assert err[0] == 0 and err[1] > 0
    assert err[2] == pytest.approx(2.0, rel=1e-6)  # -w: the output error is 2 w x, twice w x
