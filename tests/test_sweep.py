"""Bias sweeps: the truth control shows no bias, runs resume exactly, bad specs are refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, TIOX, run_cli

from memsim.errors import MemsimError
from memsim.sweep import parse_sweep_spec, run_sweep
from memsim.sweep import run as sweep_run
from memsim.sweep import spec as sweep_spec
from memsim.sweep.report import REPORT_FILES, paired_bias
from memsim.sweep.store import SweepStore

SMALL = {
    "name": "t", "subset": 2000, "truths": ["softbounds"], "n": [60, 400],
    "methods": [{"name": "bin6", "method": "binning", "bins": 6, "stat": "gaussian"},
                {"name": "truth", "method": "truth"}],
    "data_seeds": [0], "train_seeds": [0, 1, 2], "ensemble": 5,
    "networks": [{"name": "mlp", "kind": "mlp", "hidden": [32]}],
    "training": {"epochs": 1, "batch": 64, "lr": 0.1},
}


def _run(tmp_path, name, **changes):
    spec = parse_sweep_spec({**SMALL, **changes, "out": str(tmp_path / name)})
    return run_sweep(spec, "cpu", progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("sweep"), "full")


def test_outputs_and_truth_control_covers_zero(finished):
    for name in ("runs.csv", "bias.csv", "bias.md", "device_metrics.csv", "metric_bias.csv",
                 "unpredictability.csv", "unpredictability.md", "bias_vs_n.png",
                 "unpredictability_vs_n.png", "metric_vs_bias.png"):
        assert (finished / name).exists(), name
    runs = pd.read_csv(finished / "runs.csv")
    assert len(runs) == 2 * 2 * 3  # methods x n x train seeds
    bias = pd.read_csv(finished / "bias.csv")
    control = bias[bias["method"] == "truth"]
    assert len(control) == 2 and control["bias_pp"].abs().max() < 3
    # the truth control covers zero at a family-wise 95 % level (Bonferroni over its cells)
    members = pd.DataFrame([r for f in (SweepStore(finished).root / "batches").glob("*.json")
                            for r in json.loads(f.read_text())["results"]])
    ref = members[members["role"] == "reference"]
    for _, cell in runs[runs["method"] == "truth"].groupby("n"):
        _, lo, hi, _, _ = paired_bias(cell, ref, level=1 - 0.05 / len(control))
        assert lo <= 0 <= hi, (lo, hi)
    metrics = pd.read_csv(finished / "device_metrics.csv")
    assert (metrics[metrics["method"] == "truth"]["ks"] == 0).all()
    assert (metrics[metrics["method"] == "bin6"]["ks"] > 0).all()


def test_interrupted_sweep_resumes_to_the_same_tables(finished, tmp_path, monkeypatch):
    real = sweep_run.run_batch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the sweep
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_run, "run_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "resumed")
    done = set((SweepStore(tmp_path / "resumed").root / "batches").glob("*.json"))
    assert len(done) == 1 and not (tmp_path / "resumed" / "bias.csv").exists()

    recomputed = []
    monkeypatch.setattr(sweep_run, "run_batch",
                        lambda b, *a, **k: recomputed.append(b["key"]) or real(b, *a, **k))
    monkeypatch.setattr(sweep_run, "run_fit_cell", lambda *a, **k: pytest.fail("fit recomputed"))
    out = _run(tmp_path, "resumed")
    assert {p.stem for p in done}.isdisjoint(recomputed)
    for name in ("runs.csv", "bias.csv", "device_metrics.csv", "metric_bias.csv"):
        assert (out / name).read_bytes() == (finished / name).read_bytes(), name


def test_table_truth_and_flags(runner, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("truths: [softbounds]\nn: [5000]\nmethods: [{method: binning, bins: 4}]\n"
                    "networks: [{kind: mlp, hidden: [16]}]\ntraining: {epochs: 3}\n")
    result = run_cli(runner, ["bias-sweep", spec, "--truth", TIOX, "--n", "80",
                              "--seeds", "2", "--epochs", "1", "--subset", "1000",
                              "--out", tmp_path / "o", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert set(runs["truth"]) == {"optuna_exp_1.5V"} and set(runs["n"]) == {80}
    assert len(runs) == 2


@pytest.mark.parametrize("change, expected", [
    ({"methods": [{"method": "kriging"}]}, "key 'methods[0].method': must be one of"),
    ({"n": []}, "key 'n': must not be empty"),
    ({"n": [60, 60]}, "key 'n': repeats a value"),
    ({"n": [5]}, "n = 5 is too small for method 'bin6'"),
    ({"truths": ["no/such/table.json"]}, "truth 'table': "),
    ({"methods": [{"method": "binning"}, {"method": "binning"}]}, "must be unique"),
    ({"train_seeds": "three"}, "key 'train_seeds'"),
    ({"dw_min": "oracle"}, "key 'dw_min': must be one of"),
    ({"truths": [{"model": "softbounds", "sampling": "wrap"}]},
     "key 'truths[0].sampling': must be one of"),
])
def test_bad_sweep_specs_fail_before_work(runner, tmp_path, change, expected):
    import yaml

    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({**SMALL, **change, "out": str(tmp_path / "o")}))
    result = run_cli(runner, ["bias-sweep", spec, "--no-progress"])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and expected in line, line
    assert not (tmp_path / "o").exists()


def test_validate_reports_missing_truth_early():
    spec = parse_sweep_spec({**SMALL, "truths": ["/nonexistent/table"]})
    with pytest.raises(MemsimError, match="no such table"):
        sweep_spec.validate(spec)


def test_sweep_on_a_measured_gzip_crosssim_truth(tmp_path):
    out = _run(tmp_path, "taox", truths=[{"name": "taox10",
                                          "model": str(DATA / "crosssim_taox" / "10")}],
               n=[300], data_seeds=[0, 1, 2], train_seeds=[0, 1],
               methods=[{"name": "bin8", "method": "binning", "bins": 8},
                        {"name": "truth", "method": "truth"},
                        {"name": "truth-table", "method": "truth-table"}])
    from test_architecture import _no_machine_paths

    _no_machine_paths(out)  # the store too: it may lie on a filesystem shared with others
    unpred = pd.read_csv(out / "unpredictability.csv")
    assert set(unpred["method"]) == {"bin8", "truth", "truth-table"}
    assert unpred[["sd_ratio", "sd_ratio_low", "sd_ratio_high"]].notna().all().all()
    corr = pd.read_csv(out / "metric_bias.csv")
    assert "partial_rho" in corr
    assert (pd.read_csv(out / "bias.csv")["truth"] == "taox10").all()


def test_dw_min_from_each_members_own_table_or_from_the_truth():
    """A designer calibrates the controller on the fitted table; dw_min: truth uses the true
    device's pulse size for every table."""
    import torch

    from memsim.devices.table import TableKind
    from memsim.train.cells import Mapping
    from memsim.train.synapses import DeviceSynapses

    kind = TableKind.example()  # two tables whose SET steps differ
    steps = kind.model_steps(("set",))
    assert steps[0] != steps[1]
    syn = DeviceSynapses([(4, 3)], 2, "cpu", kind, Mapping(policy="set", w_max=1.0), seed=0,
                         member_choice=torch.tensor([0, 1]))
    per_member = syn.dw_min.view(2, -1)
    assert torch.allclose(per_member[1] / per_member[0],
                          torch.tensor(steps[1] / steps[0], dtype=per_member.dtype))
    pinned = DeviceSynapses([(4, 3)], 2, "cpu", kind,
                            Mapping(policy="set", w_max=1.0, nominal_step=float(steps[0])),
                            seed=0, member_choice=torch.tensor([0, 1]))
    assert torch.allclose(pinned.dw_min.view(2, -1)[1], per_member[0])
    spec = parse_sweep_spec({**SMALL, "dw_min": "truth", "sampling": "reject",
                             "truths": ["softbounds", {"model": "asymmetric",
                                                       "sampling": "clip"}]})
    assert spec.dw_min == "truth" and parse_sweep_spec(SMALL).dw_min == "table"
    assert [t.sampling for t in spec.truths] == ["reject", "clip"]
    assert parse_sweep_spec(SMALL).truths[0].sampling == "clip"
    # what the training tasks read back is the same spec
    from memsim.sweep.run import spec_document

    back = parse_sweep_spec(spec_document(spec))
    assert back.dw_min == "truth" and [t.sampling for t in back.truths] == ["reject", "clip"]


def test_table_path_control_covers_zero_in_a_coverage_study(tmp_path):
    """The truth tabulated finely and trained through the fitted tables' path (table document,
    table population), against its own reference runs of the (synthetic) truth: 20 disjoint
    sets of three training seeds give 20 independent 95 % intervals; most must cover 0."""
    seeds = list(range(60))
    out = _run(tmp_path, "coverage", subset=1000, n=[100], train_seeds=seeds,
               reference_replicates=2, ensemble=30,
               methods=[{"name": "tabulated", "method": "truth-table"}],
               networks=[{"name": "mlp", "kind": "mlp", "hidden": [16]}])
    members = pd.DataFrame([r for f in (SweepStore(out).root / "batches").glob("*.json")
                            for r in json.loads(f.read_text())["results"]])
    ref = members[(members["role"] == "reference") & (members["group"] == "truth-table")]
    assert len(ref) == 2 * len(seeds)  # its own reference runs, apart from the main ones
    runs = pd.read_csv(out / "runs.csv")
    assert runs["control"].all()
    covered, widths = 0, []
    for k in range(20):
        part = seeds[3 * k: 3 * k + 3]
        _, lo, hi, unit, units = paired_bias(runs[runs["train_seed"].isin(part)],
                                             ref[ref["train_seed"].isin(part)])
        assert unit == "training seed" and units == 3
        covered += lo <= 0 <= hi
        widths.append(hi - lo)
    assert 0 < np.median(widths) < 10  # pp: intervals that could see a table-path error
    assert covered >= 17, covered  # >= 85 % of nominal-95 % intervals


def test_reproduce_keeps_a_long_sweep_only_while_its_spec_is_unchanged(tmp_path, monkeypatch):
    """`make reproduce` reruns a sweep listed under `kept` only when its folder holds no
    report of the same resolved spec and overrides."""
    import yaml

    from memsim import reproduce

    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "n": [60], "train_seeds": [0], "subset": 1000,
                                    "out": "res/long"}))
    ran = []
    real = reproduce.run_sweeps
    monkeypatch.setattr(reproduce, "run_sweeps",
                        lambda specs, over, log: ran.extend(specs) or real(specs, over, log))
    outs, kept = reproduce.kept_sweeps([path], {}, print)
    assert ran == [path] and kept == [] and (outs[0] / "bias.csv").exists()
    written = {p.name for p in outs[0].iterdir()} - {"cache", "sweep_spec.yaml"}
    assert written == set(REPORT_FILES)  # the files a changed spec removes: all of them
    outs_again, kept = reproduce.kept_sweeps([path], {}, print)
    assert ran == [path] and kept == outs_again == outs  # unchanged: kept, not rerun
    over = {"long.yaml": {"n": [80]}}
    _, kept = reproduce.kept_sweeps([path], over, print)
    assert ran == [path, path] and kept == []  # another N: rerun
    (outs[0] / "bias.csv").unlink()
    _, kept = reproduce.kept_sweeps([path], over, print)
    assert len(ran) == 3 and kept == []  # no finished report: rerun

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # a changed spec stopped midway leaves no report of the old spec beside its own
    monkeypatch.setattr(sweep_run, "run_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reproduce.kept_sweeps([path], {"long.yaml": {"n": [90]}}, print)
    assert {p.name for p in outs[0].iterdir()} == {"cache", "sweep_spec.yaml"}


def test_a_store_serves_no_result_of_other_code(tmp_path, monkeypatch):
    """A store's folder is named by a digest of memsim's sources: results of other code (a
    change that moves a number without a new version) are not served. The keys hold no code:
    a batch's key also seeds its draws, which must not move with every change."""
    from memsim import _version
    from memsim.sweep import plan as sweep_plan

    tree = tmp_path / "pkg"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.py").write_text("x = 1\n")
    (tree / "sub" / "b.py").write_text("y = 2\n")
    before = _version.sources_digest(tree)
    (tree / "sub" / "b.py").write_text("y = 3\n")
    assert _version.sources_digest(tree) != before
    assert _version.code_identity().startswith(_version.__version__ + "+")

    spec = parse_sweep_spec({**SMALL, "out": str(tmp_path / "o")})
    models = sweep_spec.validate(spec, None)

    def keys():
        fits, batches = sweep_plan.plan(spec, models)
        return [f["key"] for f in fits] + [b["key"] for b in batches]

    ours = keys()
    SweepStore(tmp_path).put("fits", "k", {"key": "k"})
    assert SweepStore(tmp_path).has("fits", "k")
    monkeypatch.setattr(_version, "sources_digest", lambda root: "other code")
    _version.code_identity.cache_clear()
    try:
        assert _version.code_identity().endswith("+other code")
        assert not SweepStore(tmp_path).has("fits", "k")
        assert keys() == ours
    finally:
        monkeypatch.undo()
        _version.code_identity.cache_clear()
