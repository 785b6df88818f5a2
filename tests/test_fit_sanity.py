"""No fit of shipped data makes a wild table, and the invariant refuses one that would."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, ENODE, GONG, RAMPS, TIOX, XBSYN, run_cli

from memsim.errors import MemsimError
from memsim.fit.binning import Binning, BinningSettings
from memsim.fit.optuna_binning import OptunaBinning, OptunaSettings
from memsim.fit.sanity import FACTOR, check_table, table_sanity
from memsim.fit.smooth import Smooth
from memsim.io.data import load_device_data
from memsim.models.resolve import load_model
from memsim.models.sampling import sample_points
from memsim.models.table import ConditionalTable, JumpTable

MODELS = [*(DATA / "crosssim_taox").glob("[0-9]*"), ENODE, XBSYN,
          *sorted({p.parent / p.name.split("_set_")[0]
                   for p in (DATA / "xbtorch_tiox").glob("*_set_cdf.txt")})]
CSVS = {"ramps": (RAMPS, "A", 0.1), "gong": ([GONG], "norm", None),
        "synthetic": (sorted((DATA / "synthetic").glob("*.csv")), "S", None)}
METHODS = {"binning": Binning(), "binning-32": Binning(BinningSettings(bins=32)),
           "optuna": OptunaBinning(OptunaSettings(trials=15, progress=False)),
           "smooth": Smooth()}


def _shipped_datasets(n: int):
    for ref in MODELS:
        truth = load_model(ref)
        yield ref.name, sample_points(truth, n, seed=3), (truth.g_min, truth.g_max)
    for name, (files, unit, volts) in CSVS.items():
        for f in files:
            data = load_device_data([f] if name != "ramps" else files, unit, volts)
            rng = np.random.default_rng(0)
            small = {pol: pts.take(np.sort(rng.permutation(len(pts))[:n]))
                     for pol, pts in data.points.items()}
            yield f"{name}:{f.name}", data.with_points(small), None
            if name == "ramps":
                break


@pytest.mark.parametrize("method", list(METHODS))
def test_no_fit_of_shipped_data_is_wild(method):
    fitter = METHODS[method]
    for name, data, g_range in _shipped_datasets(100):
        table = fitter.fit(data, seed=0, g_range=g_range).table  # refuses a wild table
        for row in table_sanity(table, data):
            assert row["support_excess"] == 0, (name, row)
            assert row["spread_max_rel"] <= FACTOR / 2, (name, row)


def _broken(table: JumpTable) -> JumpTable:
    t = table.tables["set"].to_quantile()
    rows = t.quantiles.copy()
    rows[3] = rows[3] * 1e3  # one bin claims changes a thousand times the data's
    return JumpTable({"set": ConditionalTable(t.edges, "quantile", quantiles=rows),
                      "reset": table.tables["reset"]}, table.g_min, table.g_max, table.unit,
                     name="broken")


def test_the_invariant_refuses_a_broken_table():
    data = sample_points(load_model(TIOX), 500, seed=0)
    table = Binning(BinningSettings(bins=10)).fit(data).table
    check_table(table, data)  # the honest table passes
    with pytest.raises(MemsimError, match=r"wild broken table: set bin 4"):
        check_table(_broken(table), data)


def test_memsim_fit_refuses_to_write_a_wild_table(runner, tmp_path, monkeypatch):
    honest = Binning.estimate

    def wild(self, data, **kw):
        out = honest(self, data, **kw)
        out.table = _broken(out.table)
        return out

    monkeypatch.setattr(Binning, "estimate", wild)
    out = tmp_path / "fit"
    result = run_cli(runner, ["fit", TIOX, "--n", "400", "--bins", "8", "--out", out])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "wild" in result.stderr
    assert not out.exists()
