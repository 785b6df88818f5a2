"""`memsim fit` and `memsim generate` end to end on the shipped data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
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
    # held-out figures come from a fit that never saw those points (and only their ramps:
    # test_holdout_scoring_sees_exactly_the_held_out_ramps); the exported table is fitted on
    # every point, and sane over its whole range
    held = metrics[metrics["reference"] == "heldout"]
    assert (held["table"] == "holdout").all()
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
    # one up/down trace: single points are held out, so no ramp is out of sample and the
    # read noise is estimated in sample, on the exported table
    assert metrics[metrics["reference"] == "heldout"]["read_noise_frac"].isna().all()
    assert (metrics[metrics["reference"] == "data_range"]["read_noise_frac"] > 0.5).all()
    assert result.stderr.count("read noise") == 2  # once per polarity


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


def test_holdout_scoring_sees_exactly_the_held_out_ramps(monkeypatch):
    """The out-of-sample rows' pulse-train and read-noise figures compare the probe table
    with the ramps it was not fitted on: exactly those whose points were held out."""
    from memsim.fit import experiment
    from memsim.metrics import distances

    seen = []
    real = distances.compare_to_data
    monkeypatch.setattr(distances, "compare_to_data",
                        lambda model, data, **k: seen.append(data) or real(model, data, **k))
    spec = experiment.parse_fit_spec({"source": [str(p) for p in RAMPS], "unit": "A",
                                      "read_voltage": 0.1, "binning": {"bins": 24},
                                      "plots": False})
    with pytest.warns(experiment.FitWarning, match="read noise"):  # these ramps have some
        result = experiment.run_fit(spec)
    [held] = seen
    for pol in ("set", "reset"):
        traces, pts = held.traces[pol], held.points[pol]
        all_ramps = result.full.traces[pol]
        assert 1 <= len(traces) == len(np.unique(pts.device)) < len(all_ramps)
        # the held-out ramps' own changes are the held-out points, no more and no fewer
        np.testing.assert_array_equal(np.sort(np.concatenate([t[:-1] for t in traces])),
                                      np.sort(pts.g))
        np.testing.assert_array_equal(np.sort(np.concatenate([np.diff(t) for t in traces])),
                                      np.sort(pts.dg))
    rows = result.metrics[result.metrics["reference"] == "heldout"]
    assert rows["train_mean"].notna().all() and rows["read_noise_frac"].notna().all()


@pytest.mark.parametrize("name", ["../../escaped", "sub/dir", "back\\slash", "..", "", "  "])
def test_fit_spec_names_that_leave_the_output_folder_are_refused(runner, tmp_path, name):
    spec = tmp_path / "specs" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(f"source: {DATA / 'synthetic' / 'asymmetric_n1000_seed0.csv'}\n"
                    f"name: '{name}'\nmethod: binning\nexport: xbtorch\nplots: false\n"
                    "out: o\n")
    result = run_cli(runner, ["fit", spec])
    line = result.stderr.strip()
    assert result.exit_code == 2 and "\n" not in line and "key 'name'" in line, result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["spec.yaml", "specs"]


def test_fit_refuses_more_points_than_generate_allows(runner, tmp_path):
    from memsim.models.sampling import MAX_POINTS  # one bound for generate and fit
    result = run_cli(runner, ["fit", "softbounds", "--n", str(MAX_POINTS + 1), "--out",
                              tmp_path / "o"])
    assert result.exit_code == 2 and "--n: at most 100,000,000" in result.stderr
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"source: softbounds\nn: {10**12}\nout: o\n")
    result = run_cli(runner, ["fit", spec])
    line = result.stderr.strip()
    assert result.exit_code == 2 and "\n" not in line and "key 'n'" in line, result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("given", ["spec", "flag"])
def test_sqlite_storage_is_recorded_relative_to_the_output(runner, tmp_path, monkeypatch,
                                                            given):
    """A study kept in SQLite is found again from the output's spec.yaml, wherever the
    results tree is moved: the URL keeps its prefix and its file is relative to the output."""
    from memsim.fit.experiment import load_fit_spec

    csv = DATA / "synthetic" / "softbounds_n1000_seed0.csv"
    work = tmp_path / "work"
    (work / "db").mkdir(parents=True)
    monkeypatch.chdir(work)  # a flag's relative file: where the command runs
    if given == "spec":
        spec = work / "spec.yaml"
        spec.write_text(f"source: {csv}\nmethod: optuna\n"
                        "optuna: {trials: 2, folds: 2, storage: 'sqlite:///db/study.db'}\n"
                        "plots: false\nout: ../o\n")
        args = ["fit", spec]
    else:
        args = ["fit", csv, "--method", "optuna", "--trials", "2", "--folds", "2",
                "--storage", "sqlite:///db/study.db", "--no-plots", "--out", "../o"]
    assert run_cli(runner, args).exit_code == 0
    study = work / "db" / "study.db"
    assert study.exists()
    written = yaml.safe_load((tmp_path / "o" / "spec.yaml").read_text())["optuna"]["storage"]
    assert written == "sqlite:///../work/db/study.db"
    monkeypatch.chdir(tmp_path.parent)  # read back from elsewhere: relative to spec.yaml
    back = load_fit_spec(tmp_path / "o" / "spec.yaml").methods["optuna"].settings.storage
    assert back.startswith("sqlite:///")
    assert Path(back.removeprefix("sqlite:///")).resolve() == study.resolve()


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


def test_the_fit_api_warns_and_writes_what_the_cli_writes(runner, tmp_path, monkeypatch):
    """From a notebook: run_fit issues the read-noise warning the CLI prints (as a
    FitWarning) and write_fit_outputs writes the CLI's files, no absolute path in them."""
    import memsim
    from memsim.fit.experiment import FitWarning

    monkeypatch.chdir(tmp_path)
    spec = memsim.fit.experiment.parse_fit_spec(
        {"source": [str(GONG)], "unit": "norm", "method": "binning", "plots": False}, None)
    with pytest.warns(FitWarning, match="read noise") as caught:
        result = memsim.run_fit(spec)
    assert len(caught) == 2 and len(result.warnings) == 2  # once per polarity
    api = {p.name for p in memsim.write_fit_outputs(result, tmp_path / "api")}
    cli = run_cli(runner, ["fit", GONG, "--unit", "norm", "--method", "binning", "--no-plots",
                           "--out", tmp_path / "cli"])
    assert cli.exit_code == 0, cli.output
    assert api == {p.name for p in (tmp_path / "cli").iterdir()}
    for name in api:
        assert str(tmp_path) not in (tmp_path / "api" / name).read_text(errors="ignore"), name
    sources = [*yaml.safe_load((tmp_path / "api" / "spec.yaml").read_text())["source"],
               json.loads((tmp_path / "api" / "table.json").read_text())["metadata"]["source"][0]]
    assert not any(Path(src).is_absolute() for src in sources), sources


@pytest.mark.parametrize("preset", ["xbtorch_target", "softbounds", "asymmetric"])
def test_shipped_synthetic_data_are_what_the_documented_command_writes(runner, tmp_path,
                                                                        preset):
    """device_data/README.md says how device_data/synthetic/ was made: it must still be so."""
    assert "memsim generate PRESET --n 1000 --seed 0 --unit S" in (DATA / "README.md").read_text()
    out = tmp_path / "gen.csv"
    result = run_cli(runner, ["generate", preset, "--n", "1000", "--seed", "0", "--unit", "S",
                              "--out", out])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (DATA / "synthetic" / f"{preset}_n1000_seed0.csv").read_bytes()


def test_reproduce_logs_a_fits_warnings_as_lines(tmp_path):
    """make reproduce says what memsim fit warns of, one log line each, no Python warning."""
    import warnings

    from memsim.reproduce import run_fits

    spec = tmp_path / "gong.yaml"
    spec.write_text(f"source: {GONG}\nunit: norm\nmethod: binning\nplots: false\nout: o\n")
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_fits([spec], lines.append)
    assert sum("warning:" in line and "read noise" in line for line in lines) == 2, lines
