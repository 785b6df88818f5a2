"""The house rules: imports flow one way, one resolver serves every spec, outputs hold no
machine paths, importing never changes the user's plotting backend, measured CSVs may carry
comment lines."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TIOX, run_cli

import memsim
from memsim.fit.experiment import parse_fit_spec
from memsim.io.data import load_device_data
from memsim.sweep.spec import parse_sweep_spec, validate
from memsim.train.spec import parse_train_spec

PKG = ROOT / "memsim"


def _module_graph() -> dict[str, set[str]]:
    """Module -> modules it imports (function-level imports and package inits included; ``from
    PKG import NAME`` counts as PKG.NAME when that is a module, else as PKG itself)."""
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        is_pkg = f.name == "__init__.py"
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = m.split(".") if is_pkg else m.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix
                           for a in node.names]
            else:
                continue
            graph[m] |= {t for t in targets if t in mods and t != m}
    return graph


def test_no_import_cycles():
    graph = _module_graph()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_layers_depend_only_downstream():
    """Data flows one way: io -> models -> devices | states -> metrics -> fit | train ->
    sweep -> ablate | infer; packages side by side never import each other."""
    order = {"io": 0, "models": 1, "devices": 2, "states": 2, "metrics": 3, "fit": 4,
             "train": 4, "sweep": 5, "ablate": 6, "infer": 6}
    for m, targets in _module_graph().items():
        layer = m.split(".")[1] if m.count(".") >= 1 else None
        if layer not in order:
            continue
        for t in targets:
            other = t.split(".")[1] if t.count(".") >= 1 else None
            if other in order and other != layer:
                assert order[other] < order[layer], f"{m} imports {t}"


def test_public_api_names_resolve_and_import_is_light():
    import memsim.fit.experiment  # noqa: F401 - subpackages imported must not shadow API names
    import memsim.train.trainer  # noqa: F401

    for name in memsim.__all__:
        value = getattr(memsim, name)
        assert value is not None and not isinstance(value, types.ModuleType), name
    code = "import sys, memsim; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_importing_memsim_keeps_the_users_plot_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import memsim.fit.experiment, "
            "memsim.train.trainer, memsim.sweep.run, memsim.reproduce; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"}).stdout.strip()
    assert out == "svg"


@pytest.mark.parametrize("ref", ["preset:softbounds", "softbounds"])
def test_every_model_reference_works_in_every_spec(ref, tmp_path):
    fit = parse_fit_spec({"source": ref, "n": 200, "method": "binning",
                          "binning": {"bins": 4}}, tmp_path / "fit.yaml")
    assert fit.source == [ref]
    train = parse_train_spec({"device": ref}, tmp_path / "train.yaml")
    assert train.device.kind == "synthetic"
    assert train.device.population(4).g.numel() == 4
    sweep = parse_sweep_spec({"truths": [ref], "n": [100],
                              "methods": [{"method": "binning", "bins": 4}]},
                             tmp_path / "sweep.yaml")
    assert list(validate(sweep)) == ["softbounds"]


def test_a_bad_model_reference_in_a_train_spec_is_one_line(runner, tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("device: preset:nonexistent\n")
    result = run_cli(runner, ["train", spec, "--out", tmp_path / "o"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "t.yaml" in line and "device" in line, line
    assert not (tmp_path / "o").exists()


ABSOLUTE = re.compile(r"""(^|[\s"':])/(tmp|work|home|root|Users|usr|opt|mnt)/""", re.M)


def _no_machine_paths(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.suffix in (".yaml", ".json", ".csv", ".md"):
            text = f.read_text()
            assert not ABSOLUTE.search(text), f"{f} records an absolute path"


def test_outputs_record_relative_paths(runner, tmp_path):
    spec = tmp_path / "fit.yaml"
    spec.write_text(yaml.safe_dump({"source": str(TIOX), "n": 300, "method": "binning",
                                    "binning": {"bins": 4}, "out": "out", "plots": False}))
    assert run_cli(runner, ["fit", spec]).exit_code == 0
    doc = yaml.safe_load((tmp_path / "out" / "spec.yaml").read_text())
    assert (tmp_path / "out" / doc["source"][0]).resolve() == TIOX.resolve()
    tspec = tmp_path / "train.yaml"
    tspec.write_text(yaml.safe_dump({"device": {"kind": "table", "path": str(TIOX)},
                                     "subset": 200, "training": {"epochs": 1},
                                     "network": {"hidden": [8]}, "out": "tr"}))
    assert run_cli(runner, ["train", tspec, "--compute", "cpu", "--no-progress"]).exit_code == 0
    doc = yaml.safe_load((tmp_path / "tr" / "spec.yaml").read_text())
    assert (tmp_path / "tr" / doc["device"]["path"][0]).resolve() == TIOX.resolve()
    _no_machine_paths(tmp_path / "out")
    _no_machine_paths(tmp_path / "tr")
    # an output's spec.yaml is a spec: it parses back, with the same paths
    again = parse_train_spec(yaml.safe_load((tmp_path / "tr" / "spec.yaml").read_text()),
                             tmp_path / "tr" / "spec.yaml")
    assert Path(again.device.paths[0]).resolve() == TIOX.resolve()
    refit = parse_fit_spec(yaml.safe_load((tmp_path / "out" / "spec.yaml").read_text()),
                           tmp_path / "out" / "spec.yaml")
    assert Path(refit.source[0]).resolve() == TIOX.resolve()


def test_shipped_results_hold_no_machine_paths():
    _no_machine_paths(ROOT / "results")


def test_measured_csv_may_start_with_comment_lines(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("polarity,g,dg\nset,1.0,0.1\nset,2.0,0.2\nreset,2.0,-0.1\nreset,3,-0.2\n")
    commented = tmp_path / "commented.csv"
    commented.write_text("# instrument: B1500A\n# date: 2026-11-25\n\n"
                         + plain.read_text().replace("set,2.0,0.2\n", "set,2.0,0.2\n# pause\n"))
    a, b = load_device_data(plain, "uS"), load_device_data(commented, "uS")
    for pol in ("set", "reset"):
        assert (a.points[pol].g == b.points[pol].g).all()
    bad = tmp_path / "bad.csv"
    bad.write_text("# header comment\npolarity,g,dg\nset,1.0,0.1\n# pause\n\nset,x,0.2\n")
    with pytest.raises(memsim.MemsimError, match="line 6"):  # the file's own line number
        load_device_data(bad, "uS")


def test_seed_streams_are_derived_in_one_place():
    from memsim import seeds

    assert seeds.seed_for(3, "init") == seeds.seed_for(3, "init")
    streams = {seeds.seed_for(s, role, *keys) for s in (0, 1) for role in seeds.ROLES
               for keys in ((), (0,), (1,))}
    assert len(streams) == 2 * len(seeds.ROLES) * 3  # no two (seed, role, keys) share one
    with pytest.raises(ValueError, match="role"):
        seeds.seed_for(0, "weights")
    # no module draws from a hand-made offset of a seed any more
    offsets = re.compile(r"seed\s*[*+]\s*\d|\d\s*[*+]\s*seed|default_rng\(\[seed")
    for f in PKG.rglob("*.py"):
        assert not offsets.search(f.read_text()), f


def test_a_model_identity_covers_every_file_of_the_model(tmp_path):
    import shutil

    from memsim.models.resolve import model_ident

    lut = tmp_path / "lut"
    shutil.copytree(ROOT / "device_data" / "crosssim_enode_lut", lut)
    one_file = str(lut / "dG_increasing.txt")
    before = model_ident(one_file), model_ident(str(lut))
    assert before[0] == before[1]  # one file of a LUT names the LUT
    with open(lut / "dG_decreasing.txt", "a") as fh:
        fh.write("\n")
    assert model_ident(one_file) != before[0]  # editing the other file changes it
