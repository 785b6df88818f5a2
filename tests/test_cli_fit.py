"""`memsim fit` and `memsim generate` end to end on the shipped data."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import DATA, GONG, RAMPS, TIOX, run_cli

from memsim.models.formats import read_table
from memsim.models.resolve import load_model

PNG = b"\x89PNG\r\n\x1a\n"


def _outputs_ok(out, plots=True, truth=False):
    table = read_table(out / "table.json")
    meta = json.loads((out / "table.json").read_text())["metadata"]
    assert {"method", "params", "n", "unit", "seed", "source_sha256"} <= set(meta)
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["reference"]) == ({"heldout", "data_range", "truth"} if truth
                                         else {"heldout", "data_range"})
    scored = metrics[metrics["reference"] != "data_range"]
    assert scored[["ks", "w1"]].notna().all().all()
    # held-out figures come from a fit that never saw those points; the exported table is
    # fitted on every point, and sane over its whole range
    held = metrics[metrics["reference"] == "heldout"]
    assert held["out_of_sample"].all() and (held["table"] == "holdout").all()
    sane = metrics[metrics["reference"] == "data_range"]
    assert (sane["support_excess"] == 0).all() and (sane["table"] == "exported").all()
    assert meta["holdout"] > 0 and meta["fitted_on"] == "all points"
    if plots:
        for name in ("fit.png", "table.png", "pulse_train.png"):
            assert (out / name).read_bytes()[:8] == PNG
    return table, metrics


def test_fit_tiox_table_by_import_with_optuna_and_exports(runner, tmp_path):
    out = tmp_path / "tiox"
    result = run_cli(runner, ["fit", TIOX, "--method", "optuna", "--trials", "8", "--n", "800",
                              "--out", out, "--export", "xbtorch", "--export", "crosssim"])
    assert result.exit_code == 0, result.output
    _, metrics = _outputs_ok(out, truth=True)
    meta = json.loads((out / "table.json").read_text())["metadata"]
    assert meta["n"] == {"set": 800, "reset": 800}  # all points, not the 80 % after hold-out
    assert (out / "search.csv").exists()
    # the exports load back as models
    assert load_model(out / "crosssim").tables["set"].n_bins >= 1
    assert load_model(out / "xbtorch" / "optuna_exp_1.5V").g_max == pytest.approx(30e-6)


def test_fit_crosssim_ramps_in_amperes(runner, tmp_path):
    out = tmp_path / "ramps"
    result = run_cli(runner, ["fit", *RAMPS, "--unit", "A", "--read-voltage", "0.1",
                              "--method", "binning", "--bins", "24", "--out", out])
    assert result.exit_code == 0, result.output
    table, metrics = _outputs_ok(out)
    assert table.g_min == pytest.approx(1.6057e-3, rel=1e-3)  # 160.57 uA / 0.1 V
    held = metrics[metrics["reference"] == "heldout"]
    assert held["train_mean"].notna().all()  # compared with the measured ramps


def test_fit_gong_trace_warns_about_read_noise(runner, tmp_path):
    out = tmp_path / "gong"
    result = run_cli(runner, ["fit", GONG, "--unit", "norm", "--method", "smooth",
                              "--out", out, "--no-plots"])
    assert result.exit_code == 0, result.output
    _, metrics = _outputs_ok(out, plots=False)
    assert (metrics[metrics["reference"] == "heldout"]["read_noise_frac"] > 0.5).all()
    assert "read noise" in result.stderr


def test_generate_then_fit_with_truth(runner, tmp_path):
    csv = tmp_path / "syn.csv"
    assert run_cli(runner, ["generate", "softbounds", "--n", "1500", "--seed", "2",
                            "--unit", "uS", "--out", csv]).exit_code == 0
    out = tmp_path / "syn"
    result = run_cli(runner, ["fit", csv, "--unit", "uS", "--truth", "softbounds",
                              "--bins", "12", "--out", out, "--no-plots"])
    assert result.exit_code == 0, result.output
    _, metrics = _outputs_ok(out, plots=False, truth=True)
    truth_rows = metrics[metrics["reference"] == "truth"]
    assert (truth_rows["ks"] < 0.15).all()


def test_fit_spec_file_with_relative_paths(runner, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
name: shipped
source: {DATA / 'synthetic' / 'asymmetric_n1000_seed0.csv'}
truth: asymmetric
method: binning
binning: {{bins: 10, edges: count, stat: gaussian}}
holdout: 0.25
plots: false
out: results_here
""")
    result = run_cli(runner, ["fit", spec])
    assert result.exit_code == 0, result.output
    table, _ = _outputs_ok(tmp_path / "results_here", plots=False, truth=True)
    assert table.tables["set"].kind == "gaussian"


@pytest.mark.parametrize("body, expected", [
    ("source: x.csv\nmethd: optuna\n", "key 'methd': unknown key (did you mean 'method'?)"),
    ("source: x.csv\noptuna: {trials: many}\n", "key 'optuna.trials': must be an integer"),
    ("source: x.csv\nmethod: kriging\n", "key 'method': must be one of"),
    ("source: x.csv\nholdout: 1.5\n", "key 'holdout'"),
    ("- just\n- a list\n", "spec must be a mapping"),
    ("source: [unclosed\n", "invalid YAML"),
])
def test_bad_fit_specs(runner, tmp_path, body, expected):
    spec = tmp_path / "bad.yaml"
    spec.write_text(body)
    result = run_cli(runner, ["fit", spec, "--out", tmp_path / "o"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and str(spec) in line and expected in line, line
    assert not (tmp_path / "o").exists()


def test_holdout_keeps_whole_ramps_apart():
    from memsim.fit.experiment import split_holdout
    from memsim.io.data import load_device_data

    data = load_device_data(RAMPS, unit="A", read_voltage=0.1)
    train, held = split_holdout(data, 0.2, seed=0)
    for pol in ("set", "reset"):
        tr, he = train.points[pol].device, held.points[pol].device
        assert set(tr).isdisjoint(he) and len(set(he)) >= 1
        assert 0.1 < len(he) / (len(he) + len(tr)) < 0.35


def test_rerun_into_the_same_folder_leaves_no_stale_outputs(runner, tmp_path):
    csv = DATA / "synthetic" / "softbounds_n1000_seed0.csv"
    out = tmp_path / "o"
    assert run_cli(runner, ["fit", csv, "--bins", "8", "--out", out, "--no-plots",
                            "--export", "crosssim"]).exit_code == 0
    assert (out / "crosssim").is_dir()
    (out / "notes.txt").write_text("mine")
    assert run_cli(runner, ["fit", csv, "--bins", "8", "--out", out, "--no-plots"]).exit_code == 0
    assert not (out / "crosssim").exists() and (out / "notes.txt").exists()


def test_flags_are_relative_to_the_working_directory_and_spec_keys_to_the_spec(
        runner, tmp_path, monkeypatch):
    sub = tmp_path / "specs"
    sub.mkdir()
    spec = sub / "spec.yaml"
    spec.write_text(f"source: {DATA / 'synthetic' / 'asymmetric_n1000_seed0.csv'}\n"
                    "method: binning\nbinning: {bins: 6}\nplots: false\nout: in_spec\n")
    monkeypatch.chdir(tmp_path)
    assert run_cli(runner, ["fit", spec]).exit_code == 0
    assert (sub / "in_spec" / "table.json").exists()  # the spec's out: next to the spec
    assert run_cli(runner, ["fit", spec, "--out", "from_flag"]).exit_code == 0
    assert (tmp_path / "from_flag" / "table.json").exists()  # a flag: where the command runs


def test_written_folders_are_shown_as_typed(tmp_path, monkeypatch):
    from memsim.cli import _shown

    monkeypatch.chdir(tmp_path)
    assert _shown(tmp_path / "experiments" / ".." / "results" / "x") == "results/x"
    outside = tmp_path.parent / "elsewhere"
    assert _shown(outside) == str(outside)
    assert _shown(tmp_path / "..x") == "..x"  # a name starting with dots is still inside
