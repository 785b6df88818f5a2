"""Bad input across commands: one line naming the place, exit code 2, before any work and
with nothing written."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, run_cli

from memsim.errors import MemsimError
from memsim.io.schema import Section, load_yaml, out_dir_problem

SPECS = ROOT / "experiments"


def _spec(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_reads_exponent_numbers_and_refuses_repeated_keys(tmp_path):
    doc = load_yaml(_spec(tmp_path, "lr: 1e-3\ng: -2.5E+4\nname: 1e3x\nn: 12\n"))
    assert doc == {"lr": 1e-3, "g": -2.5e4, "name": "1e3x", "n": 12}
    with pytest.raises(MemsimError, match=r"line 3.*'method' is given twice"):
        load_yaml(_spec(tmp_path, "method: binning\nn: 3\nmethod: smooth\n"))
    with pytest.raises(MemsimError, match="'bins' is given twice"):
        load_yaml(_spec(tmp_path, "binning:\n  bins: 3\n  bins: 4\n"))
    # the results memsim writes still read back with the standard loader
    assert yaml.safe_load("lr: 0.001\n") == {"lr": 0.001}


def test_out_folder_blocked_by_a_file_is_refused(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    assert "is a file" in out_dir_problem(blocker)
    assert "is a file" in out_dir_problem(blocker / "run" / "deeper")
    assert out_dir_problem(tmp_path / "new" / "run") is None
    sec = Section({"out": "results/run"}, tmp_path / "spec.yaml")
    with pytest.raises(MemsimError, match="key 'out'.*is a file, not a folder"):
        sec.out_dir(tmp_path)
    assert Section({"out": "fresh"}, None).out_dir(tmp_path) == str(tmp_path / "fresh")


@pytest.mark.parametrize("value, ok", [([0, 3], True), ([2, -1], False)])
def test_seeds_must_not_be_negative(value, ok):
    sec = Section({"seeds": value, "seed": value[-1]}, "s.yaml")
    if ok:
        assert sec.seed_list() == value and sec.seed() == value[-1]
        return
    with pytest.raises(MemsimError, match="key 'seeds': must be >= 0"):
        sec.seed_list()
    with pytest.raises(MemsimError, match="key 'seed': must be >= 0"):
        sec.seed()


def test_a_repeated_seed_is_refused():
    """A repeat would train one network twice and count it as two in every interval."""
    with pytest.raises(MemsimError, match="key 'data_seeds': repeats a value"):
        Section({"data_seeds": [0, 0, 1]}, "s.yaml").seed_list("data_seeds")


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_numbers_must_be_finite(value):
    with pytest.raises(MemsimError, match="key 'lr': must be a finite number"):
        Section({"lr": value}, "s.yaml").take("lr", float)
    with pytest.raises(MemsimError, match="key 'n': values must be finite"):
        Section({"n": [1.0, value]}, "s.yaml").number_list("n")


def test_a_flag_is_not_written_over_a_section_that_is_no_mapping(runner, tmp_path):
    doc = {**load_yaml(SPECS / "mlp_float.yaml"), "training": 5}
    res = run_cli(runner, ["train", _spec(tmp_path, yaml.safe_dump(doc)), "--epochs", "1",
                           "--out", tmp_path / "t"])
    assert res.exit_code == 2 and "key 'training': must be a mapping" in res.stderr
    grid = load_yaml(SPECS / "attribution.yaml")
    net = next(iter(grid["networks"]))
    for bad, args, place in (
            ({**grid, "networks": [net]}, ["--epochs", "1"], "'networks'"),
            ({**grid, "networks": {net: {**grid["networks"][net], "training": 5}}},
             ["--network", net, "--epochs", "1"], f"'networks.{net}.training'")):
        res = run_cli(runner, ["grid", _spec(tmp_path, yaml.safe_dump(bad), "g.yaml"), *args,
                               "--out", tmp_path / "g"])
        assert res.exit_code == 2 and f"key {place}: must be a mapping" in res.stderr
    assert not (tmp_path / "t").exists() and not (tmp_path / "g").exists()


def test_a_sweep_subset_beyond_the_training_set_is_refused_before_any_fit():
    from memsim.sweep.spec import parse_sweep_spec

    raw = load_yaml(SPECS / "bias_synthetic.yaml")
    with pytest.raises(MemsimError, match="key 'subset': must be between 1 and 60000"):
        parse_sweep_spec({**raw, "subset": 70000}, SPECS / "bias_synthetic.yaml")


def test_train_refuses_an_output_under_a_file_before_training(runner, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    res = run_cli(runner, ["train", SPECS / "mlp_float.yaml", "--out", blocker / "sub"])
    assert res.exit_code == 2 and "option --out" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    doc = {**load_yaml(SPECS / "mlp_float.yaml"), "out": "blocker/run"}
    spec = _spec(tmp_path, yaml.safe_dump(doc))
    res = run_cli(runner, ["train", spec])
    assert res.exit_code == 2 and "key 'out'" in res.stderr and "is a file" in res.stderr


@pytest.mark.parametrize("args, flag", [
    (["train", SPECS / "mlp_float.yaml", "--epochs", "0"], "--epochs"),
    (["train", SPECS / "mlp_float.yaml", "--seed", "-1"], "--seed"),
    (["ablate", SPECS / "ablate_hfox.yaml", "--jobs", "0"], "--jobs"),
    (["bias-sweep", SPECS / "bias_synthetic.yaml", "--ensemble", "0"], "--ensemble"),
    (["pulse", "jart:noise_free", "--devices", "0"], "--devices"),
    (["infer", SPECS / "infer_lenet_levy.yaml", "--scales", "0,nan"], "--scales"),
    (["infer", SPECS / "infer_lenet_levy.yaml", "--scales", "0,-1"], "--scales"),
])
def test_counts_on_the_command_line_are_refused_by_their_flag(runner, args, flag):
    res = run_cli(runner, args)
    assert res.exit_code == 2 and flag in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_sizes_beyond_memory_are_refused_before_allocating(runner, tmp_path):
    res = run_cli(runner, ["pulse", "jart:noise_free", "--set", "99999999999",
                           "--out", tmp_path / "p"])
    assert res.exit_code == 2 and "at most 10,000,000 pulses" in res.stderr
    res = run_cli(runner, ["generate", "xbtorch_target", "--n", "9999999999",
                           "--out", tmp_path / "g.csv"])
    assert res.exit_code == 2 and "--n: at most" in res.stderr
    assert not any(tmp_path.iterdir())


def test_infer_refuses_non_finite_scales_and_a_test_subset_beyond_the_test_set(tmp_path):
    from memsim.infer.spec import parse_infer_spec

    raw = load_yaml(SPECS / "infer_lenet_levy.yaml")
    for key, value, problem in (("scales", [0, float("nan")], "finite"),
                                ("scales", [0, float("inf")], "finite"),
                                ("test_subset", 10001, "between 1 and 10000")):
        with pytest.raises(MemsimError, match=f"key '{key}'.*{problem}"):
            parse_infer_spec({**raw, key: value}, SPECS / "infer_lenet_levy.yaml")


def test_grid_refuses_an_empty_axis():
    from memsim.train.grid import parse_grid

    raw = load_yaml(SPECS / "attribution.yaml")
    with pytest.raises(MemsimError, match="key 'devices': must name at least one"):
        parse_grid({**raw, "devices": {}}, SPECS / "attribution.yaml")


def test_grid_errors_name_the_grid_key_that_set_the_value():
    from memsim.train.grid import parse_grid

    raw = load_yaml(SPECS / "attribution.yaml")
    algo = next(iter(raw["algorithms"]))
    bad = {**raw, "algorithms": {algo: {"kind": "mixed_precision", "verfy": True}}}
    with pytest.raises(MemsimError, match=f"key 'algorithms.{algo}.verfy': unknown key"):
        parse_grid(bad, SPECS / "attribution.yaml")
    with pytest.raises(MemsimError, match="key 'devices.odd'.*unknown synthetic preset"):
        parse_grid({**raw, "devices": {"odd": "preset:nosuch"}}, SPECS / "attribution.yaml")


def test_ablation_overrides_are_blamed_on_the_ablation(tmp_path):
    from memsim.ablate import parse_ablation_spec

    raw = load_yaml(SPECS / "ablate_hfox.yaml")
    spec = tmp_path / "ab.yaml"
    raw = {**raw, "base": str(SPECS / raw["base"]), "overrides": {"training": {"lr": -1}}}
    with pytest.raises(MemsimError, match=r"ab\.yaml: key 'overrides\.training\.lr'"):
        parse_ablation_spec(raw, spec)


def test_a_tidy_table_read_as_ramps_says_so(tmp_path):
    from memsim.io.data import load_device_data

    csv = tmp_path / "d.csv"
    csv.write_text("polarity, g, dg\nset,1e-5,1e-7\nreset,2e-5,-1e-7\n")
    with pytest.raises(MemsimError, match="a tidy table .*format tidy or auto"):
        load_device_data([csv], fmt="ramps")


def test_a_spec_that_is_no_device_is_named_as_such(runner, tmp_path):
    res = run_cli(runner, ["pulse", SPECS / "fit_synthetic_binning.yaml", "--set", "3",
                           "--out", tmp_path / "p"])
    assert res.exit_code == 2 and "not a device YAML" in res.stderr
    broken = _spec(tmp_path, "g_min: 1.0e-6\ng_max: 2.0e-6\nset: {}\nreset: {}\n")
    res = run_cli(runner, ["pulse", broken, "--set", "3", "--out", tmp_path / "p"])
    assert res.exit_code == 2 and "key 'set.mean': is required" in res.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("unit, warned", [("S", False), ("nS", True)])
def test_fit_warns_of_conductances_no_memory_shows(runner, tmp_path, unit, warned):
    ramps = ROOT / "device_data" / "crosssim_ramps"
    res = run_cli(runner, ["fit", ramps / "set.csv", ramps / "reset.csv", "--unit", unit,
                           "--method", "binning", "--bins", "8", "--no-plots",
                           "--out", tmp_path / "f"])
    assert res.exit_code == 0
    assert ("is the unit of the data (--unit) right?" in res.stderr) == warned


def test_benchmarks_find_the_shipped_data_from_any_folder(tmp_path, monkeypatch):
    from pathlib import Path

    from memsim.bench import shipped

    monkeypatch.chdir(tmp_path)
    ref = "device_data/xbtorch_tiox/optuna_exp_1.5V_set_cdf.txt"
    assert Path(shipped(ref)).is_file()
    (tmp_path / "mine.txt").write_text("")
    assert shipped("mine.txt") == "mine.txt"  # the user's own file, as given
    from memsim.bench import bench_infer

    assert bench_infer(weights=1024, draws=1)  # its measured LUT found from here too


def test_a_reproduce_plan_of_the_wrong_shape_is_refused_before_any_work(tmp_path):
    from memsim.reproduce import check_plan, run_trainings

    check_plan(load_yaml(SPECS / "reproduce.yaml"), SPECS / "reproduce.yaml")
    with pytest.raises(MemsimError, match="key 'fits': must be a mapping"):
        check_plan({"fits": ["a.yaml"]}, "plan.yaml")
    with pytest.raises(MemsimError, match="key 'sweeps.specs': must be a list of spec files"):
        check_plan({"sweeps": {"specs": [{"a": 1}]}}, "plan.yaml")
    with pytest.raises(MemsimError, match="unknown key"):
        check_plan({"trainigs": {}}, "plan.yaml")
    assert run_trainings([], {}, print) is None  # a plan without trainings
