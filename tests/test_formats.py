"""Table formats: memsim JSON, XBTorch triplets, CrossSim LUTs; export -> import round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ENODE, TIOX, XBSYN, run_cli

from memsim.errors import MemsimError
from memsim.fit.binning import fit_binning
from memsim.metrics import distribution_distances
from memsim.models.formats import (
    read_crosssim,
    read_table,
    read_xbtorch,
    write_crosssim,
    write_table,
    write_xbtorch,
)
from memsim.models.resolve import load_model
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic


@pytest.fixture(scope="module")
def fitted():
    data = sample_points(load_synthetic("asymmetric"), 4000, seed=2)
    return {
        ("width", "empirical"): fit_binning(data, 16, "width", "empirical"),
        ("count", "empirical"): fit_binning(data, 16, "count", "empirical"),
        ("count", "gaussian"): fit_binning(data, 12, "count", "gaussian"),
    }


def _same_tables(a, b):
    for pol in ("set", "reset"):
        ta, tb = a.tables[pol], b.tables[pol]
        np.testing.assert_allclose(tb.edges, ta.edges, rtol=1e-9, atol=0)
        np.testing.assert_allclose(tb.means, ta.means, rtol=1e-9, atol=1e-20)
        np.testing.assert_allclose(tb.stds, ta.stds, rtol=1e-9, atol=1e-20)
        if ta.kind == "quantile":
            np.testing.assert_allclose(tb.quantiles, ta.quantiles, rtol=1e-9, atol=1e-20)


@pytest.mark.parametrize("key", [("width", "empirical"), ("count", "gaussian")])
def test_memsim_json_round_trip(fitted, key, tmp_path):
    table = fitted[key]
    write_table(table, tmp_path / "t.json")
    back = read_table(tmp_path / "t.json")
    _same_tables(table, back)
    assert back.metadata["method"] == "binning"
    assert json.loads((tmp_path / "t.json").read_text())["format"] == "memsim-jump-table"


@pytest.mark.parametrize("key", [("width", "empirical"), ("count", "empirical")])
def test_crosssim_export_import_is_exact_for_quantile_tables(fitted, key, tmp_path):
    table = fitted[key]
    write_crosssim(table, tmp_path, q=table.tables["set"].q)
    back = read_crosssim(tmp_path)
    _same_tables(table, back)  # same bins (edge pairs merged back), same quantiles


@pytest.mark.parametrize("key", sorted([("width", "empirical"), ("count", "gaussian")]))
def test_xbtorch_export_import_same_distribution(fitted, key, tmp_path):
    table = fitted[key]
    write_xbtorch(table, tmp_path / "dev")
    back = read_xbtorch(tmp_path / "dev")
    g = np.linspace(table.g_min, table.g_max, 97)
    for pol in ("set", "reset"):
        np.testing.assert_allclose(back.tables[pol].edges, table.tables[pol].edges, rtol=1e-9)
        ks, w1, _, _ = distribution_distances(back, table, pol, g, in_range=False)
        spread = table.std(pol, g).mean()
        assert ks.max() < 0.02 and w1.max() < 0.02 * spread


def test_xbtorch_round_trip_keeps_supports_and_spreads(fitted, tmp_path):
    """A CDF row that starts with exact zeros must not grow a tail down to the axis start."""
    table = fitted[("width", "empirical")]
    write_xbtorch(table, tmp_path / "dev")
    back = read_xbtorch(tmp_path / "dev")
    for pol in ("set", "reset"):
        a, b = table.tables[pol], back.tables[pol]
        spread = a.quantiles[:, -1] - a.quantiles[:, 0]
        np.testing.assert_allclose(b.quantiles[:, 0], a.quantiles[:, 0], atol=0.01 * spread.max())
        np.testing.assert_allclose(b.stds, a.stds, rtol=0.03)


def test_json_tables_in_other_units_are_scaled(fitted, tmp_path):
    doc_path = tmp_path / "t.json"
    write_table(fitted[("count", "gaussian")], doc_path)
    doc = json.loads(doc_path.read_text())
    doc["unit"] = "uS"
    for pol in ("set", "reset"):
        for key in ("edges", "mean", "std"):
            doc[pol][key] = [v * 1e6 for v in doc[pol][key]]
    doc["g_min"], doc["g_max"] = doc["g_min"] * 1e6, doc["g_max"] * 1e6
    doc_path.write_text(json.dumps(doc))
    back = read_table(doc_path)
    assert back.unit == "S" and back.g_max == pytest.approx(fitted[("count", "gaussian")].g_max)
    np.testing.assert_allclose(back.tables["set"].stds,
                               fitted[("count", "gaussian")].tables["set"].stds, rtol=1e-9)


def test_gaussian_crosssim_export_keeps_moments(fitted, tmp_path):
    table = fitted[("count", "gaussian")]
    write_crosssim(table, tmp_path)
    back = read_crosssim(tmp_path)
    g = np.linspace(table.g_min, table.g_max, 50)
    for pol in ("set", "reset"):
        np.testing.assert_allclose(back.mean(pol, g), table.mean(pol, g),
                                   atol=1e-3 * table.std(pol, g).max())
        np.testing.assert_allclose(back.std(pol, g), table.std(pol, g), rtol=0.02)


def test_shipped_tables_import():
    tiox = load_model(TIOX)
    assert tiox.g_min == pytest.approx(5e-6) and tiox.g_max == pytest.approx(30e-6)
    assert tiox.tables["set"].n_bins == 100
    enode = load_model(ENODE)
    assert enode.tables["set"].n_bins == 48
    assert np.all(enode.mean("set", np.linspace(enode.g_min, enode.g_max, 20)) > 0)
    # the XBTorch synthetic table is the preset's truth, up to its finite-data fit
    table, truth = load_model(XBSYN), load_synthetic("xbtorch_target")
    g = np.linspace(truth.g_min, truth.g_max, 40)
    for pol in ("set", "reset"):
        np.testing.assert_allclose(table.mean(pol, g), truth.mean(pol, g), atol=0.01e-9)
        np.testing.assert_allclose(table.std(pol, g), truth.std(pol, g), rtol=0.05)


def test_gzip_crosssim_luts_read_like_plain_ones(tmp_path):
    import gzip

    packed = ENODE.parent / "crosssim_taox" / "10"
    for name in ("dG_increasing.txt", "dG_decreasing.txt"):
        (tmp_path / name).write_bytes(gzip.decompress((packed / f"{name}.gz").read_bytes()))
    plain, gz = load_model(tmp_path), load_model(packed)
    _same_tables(plain, gz)
    assert gz.g_min == pytest.approx(10.6e-6, rel=1e-2)
    assert load_model(packed / "dG_increasing.txt.gz").g_max == gz.g_max  # a file names it
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "dG_increasing.txt.gz").write_bytes(
        (packed / "dG_increasing.txt.gz").read_bytes()[:5000])
    (tmp_path / "cut" / "dG_decreasing.txt").write_text("x")
    with pytest.raises(MemsimError, match="dG_increasing.txt.gz"):
        read_crosssim(tmp_path / "cut")


def test_reimport_of_a_reexported_xbtorch_table(tmp_path):
    tiox = load_model(TIOX)
    write_xbtorch(tiox, tmp_path / "again")
    back = load_model(tmp_path / "again")
    g = np.linspace(tiox.g_min, tiox.g_max, 333)
    ks, *_ = distribution_distances(back, tiox, "set", g, in_range=False)
    assert ks.max() < 0.02


def test_bad_table_files(tmp_path):
    prefix = tmp_path / "bad"
    for pol in ("set", "reset"):
        np.savetxt(f"{prefix}_{pol}_axis_level_G.txt", np.linspace(1, 2, 3))
        np.savetxt(f"{prefix}_{pol}_axis_level_dG.txt", np.linspace(-1, 1, 4))
        np.savetxt(f"{prefix}_{pol}_cdf.txt", np.tile([0.1, 0.6, 0.4, 1.0], (3, 1)))
    with pytest.raises(MemsimError, match="CDF row decreases"):
        read_xbtorch(prefix)
    np.savetxt(f"{prefix}_set_cdf.txt", np.tile([0.1, 0.6, 1.0], (3, 1)))
    with pytest.raises(MemsimError, match="expected 3 G levels x 4 dG levels"):
        read_xbtorch(prefix)
    with pytest.raises(MemsimError, match="no such table"):
        load_model(tmp_path / "missing")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(MemsimError, match="not a memsim jump table"):
        load_model(tmp_path / "x.json")
    one = {"format": "memsim-jump-table", "g_min": 0, "g_max": 1,
           "set": {"edges": [0, 1], "kind": "quantile", "quantiles": [[0.1]]}}
    one["reset"] = one["set"]
    (tmp_path / "one.json").write_text(json.dumps(one))
    with pytest.raises(MemsimError, match="at least 2 values"):
        load_model(tmp_path / "one.json")
    (tmp_path / "lut").mkdir()
    for name in ("dG_increasing.txt", "dG_decreasing.txt"):
        (tmp_path / "lut" / name).write_bytes(b"\xff\xfe\x81 not text")
    with pytest.raises(MemsimError, match="cannot read file"):
        load_model(tmp_path / "lut")


def test_reversed_crosssim_lut_reads_as_the_same_distribution(fitted, tmp_path):
    """CrossSim draws a column's values at uniform random CDF points, so their order does
    not matter: a LUT with its CDF rows reversed is the same device, not point masses (and
    measured LUTs whose columns dip, as shipped TaOx devices' do, are their values sorted)."""
    table = fitted[("width", "empirical")]
    write_crosssim(table, tmp_path / "lut", q=table.tables["set"].q)
    (tmp_path / "rev").mkdir()
    for name in ("dG_increasing.txt", "dG_decreasing.txt"):
        lines = (tmp_path / "lut" / name).read_text().splitlines()
        (tmp_path / "rev" / name).write_text("\n".join(lines[:3] + lines[:2:-1]) + "\n")
    _same_tables(read_crosssim(tmp_path / "lut"), read_crosssim(tmp_path / "rev"))


def _good_doc(fitted, tmp_path):
    write_table(fitted[("width", "empirical")], tmp_path / "t.json")
    return json.loads((tmp_path / "t.json").read_text())


@pytest.mark.parametrize("case, expected", [
    ("decreasing", "reset row 3: quantile row decreases"),
    ("nan_edge", "set: bin edges hold NaN or inf"),
    ("inf_g_max", "conductance range [")])
def test_bad_json_tables_fail_in_one_line(fitted, tmp_path, runner, case, expected):
    """A table as the truth of `memsim fit`: a row that falls, a NaN edge or an infinite
    range is one line naming the file (JSON allows NaN and Infinity), nothing written."""
    doc = _good_doc(fitted, tmp_path)
    if case == "decreasing":
        doc["reset"]["quantiles"][2] = doc["reset"]["quantiles"][2][::-1]
    elif case == "nan_edge":
        doc["set"]["edges"][3] = float("nan")
    else:
        doc["g_max"] = float("inf")
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(doc))  # writes NaN / Infinity, as the reviewer's files hold
    result = run_cli(runner, ["fit", path, "--n", "200", "--bins", "4", "--out",
                              tmp_path / "o", "--no-plots"])
    line = result.stderr.strip()
    assert result.exit_code == 2 and "\n" not in line, result.output
    assert str(path) in line and expected in line, line
    assert not (tmp_path / "o").exists()


def test_non_finite_levels_are_refused_naming_the_file(tmp_path):
    prefix = tmp_path / "lv"
    for pol in ("set", "reset"):
        np.savetxt(f"{prefix}_{pol}_axis_level_G.txt", [1.0, np.nan, 3.0])
        np.savetxt(f"{prefix}_{pol}_axis_level_dG.txt", np.linspace(-1, 1, 4))
        np.savetxt(f"{prefix}_{pol}_cdf.txt", np.tile([0.1, 0.4, 0.6, 1.0], (3, 1)))
    with pytest.raises(MemsimError, match="conductance levels hold NaN or inf") as err:
        read_xbtorch(prefix)
    assert err.value.file == f"{prefix}_set_cdf.txt"
