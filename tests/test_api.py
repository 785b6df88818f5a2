"""The notebook API (``import memsim``): one calling convention for every runner, the compute
checked before anything is written, and every runner and spec loader exported."""

from __future__ import annotations

import inspect

import pytest
import torch

import memsim
from memsim.errors import MemsimError
from memsim.sweep.spec import parse_sweep_spec

RUNNERS = ("train_network", "run_sweep", "run_ablation", "run_inference")


@pytest.mark.parametrize("name", RUNNERS)
def test_every_runner_takes_spec_then_compute_then_keywords(name):
    """``run_sweep(spec, "cuda")`` once ran on CPU with file="cuda": after ``compute`` every
    option is keyword-only, and ``compute`` defaults to the CLI's ``auto``."""
    params = list(inspect.signature(getattr(memsim, name)).parameters.values())
    assert [p.name for p in params[:2]] == ["spec", "compute"]
    assert params[1].default == "auto"
    assert all(p.kind is p.KEYWORD_ONLY for p in params[2:]), params
    assert "auto" in inspect.getdoc(getattr(memsim, name))


def _specs(tmp_path):
    """One small spec per runner, each writing under tmp_path/<runner>."""
    states = tmp_path / "states.csv"
    states.write_text("state,value\n" + "".join(f"HRS,{1 + i / 100}\nLRS,{5 + i / 100}\n"
                                                 for i in range(20)))
    train = {"device": "softbounds", "subset": 100, "training": {"epochs": 1},
             "out": str(tmp_path / "train_network")}
    return {
        "train_network": memsim.parse_train_spec(train),
        "run_sweep": parse_sweep_spec({
            "truths": ["softbounds"], "n": [300], "subset": 100,
            "methods": [{"name": "b", "method": "binning", "bins": 4}],
            "networks": [{"name": "mlp", "kind": "mlp", "hidden": [8]}],
            "training": {"epochs": 1}, "out": str(tmp_path / "run_sweep")}),
        "run_ablation": memsim.parse_ablation_spec({
            "base": {k: v for k, v in train.items() if k != "out"},
            "variants": [{"name": "quiet", "noise": False}], "seeds": [0],
            "out": str(tmp_path / "run_ablation")}),
        "run_inference": memsim.parse_infer_spec({
            "luts": [{"source": "csv", "file": str(states), "unit": "uS"}],
            "codings": [{"coding": "analog"}], "out": str(tmp_path / "run_inference")}),
    }


@pytest.mark.parametrize("compute,problem", [("gpu", "must be cpu, cuda or auto, not 'gpu'"),
                                             (None, "must be cpu, cuda or auto, not None"),
                                             ("cuda", "no CUDA device is available")])
@pytest.mark.parametrize("name", RUNNERS)
def test_a_runner_refuses_a_compute_it_cannot_use_before_writing(tmp_path, monkeypatch, name,
                                                                 compute, problem):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = _specs(tmp_path)[name]
    with pytest.raises(MemsimError, match=problem) as err:
        getattr(memsim, name)(spec, compute)
    assert "\n" not in str(err.value)
    assert not (tmp_path / name).exists()


def test_the_ablation_and_inference_api_is_exported_and_documented():
    for name in ("run_ablation", "load_ablation_spec", "parse_ablation_spec", "load_infer_spec",
                 "parse_infer_spec", "load_train_spec", "parse_train_spec", "load_sweep_spec"):
        assert name in memsim.__all__, name
        assert inspect.getdoc(getattr(memsim, name)), f"{name} has no docstring"


def test_fit_methods_take_their_spec_keys_and_refuse_what_is_not_data():
    method = memsim.get_method("optuna", {"trials": 20, "folds": 3})
    assert (method.settings.trials, method.settings.folds) == (20, 3)
    with pytest.raises(MemsimError, match="key 'binning.bin'.*did you mean 'bins'"):
        memsim.get_method("binning", {"bin": 4})
    with pytest.raises(MemsimError, match="settings of smooth must be a mapping"):
        memsim.get_method("smooth", 0.02)
    with pytest.raises(MemsimError, match="data to fit must be PulseData .* not str"):
        memsim.fit_table("device_data/crosssim_ramps/set.csv", "binning")


def test_a_fit_from_the_api_names_what_is_wrong_with_its_data_or_range():
    data = memsim.sample_points(memsim.load_model("preset:softbounds"), 200, seed=0,
                                polarities=("set",))
    with pytest.raises(MemsimError, match="the data hold no reset points"):
        memsim.fit_table(data, "binning")
    data = memsim.sample_points(memsim.load_model("preset:softbounds"), 200, seed=0)
    with pytest.raises(MemsimError, match=r"g_range \(1, 0\) is empty"):
        memsim.fit_table(data, "binning", g_range=(1, 0))
