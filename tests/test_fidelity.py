"""`memsim bench fidelity`: fits of measured LUTs against the truth, as ratios to plain
binning of the same points."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import ROOT, run_cli

from memsim.fit import fidelity
from memsim.fit.binning import Binning, BinningSettings
from memsim.fit.smooth import Smooth


def test_fidelity_runs_summarises_and_writes(tmp_path):
    spec = fidelity.FidelitySpec(truths={"TaOx 10": "device_data/crosssim_taox/10"},
                                 sizes=(300, 1000), seeds=2,
                                 methods={"smooth": Smooth(),
                                          "plain-again": Binning(BinningSettings(bins=20))})
    runs = fidelity.run_fidelity(spec, ROOT)
    assert len(runs) == 2 * 2 * 3 * 2  # sizes x seeds x methods (with the plain) x polarities
    summary = fidelity.summarise(runs)
    plain = summary[summary.method == fidelity.PLAIN]
    np.testing.assert_allclose(plain.ratio, 1.0)
    again = summary[summary.method == "plain-again"]  # the same fit: the same figures
    np.testing.assert_allclose(again.ratio, 1.0)
    smooth = summary[summary.method == "smooth"]
    assert (smooth.ratio_min <= smooth.ratio).all() and (smooth.ratio <= smooth.ratio_max).all()
    # more points, closer to the truth
    w1 = plain.set_index("n")["w1_rel"]
    assert w1[1000] < w1[300]
    files = fidelity.write_fidelity(runs, tmp_path / "fid")
    assert all(f.exists() for f in files)
    text = (tmp_path / "fid" / "summary.md").read_text()
    assert "Recommended method" in text and str(tmp_path) not in text
    back = pd.read_csv(tmp_path / "fid" / "summary.csv")
    assert set(back.method) == {fidelity.PLAIN, "smooth", "plain-again"}


def test_bench_fidelity_refuses_bad_sizes(runner, tmp_path):
    result = run_cli(runner, ["bench", "fidelity", "--sizes", "300,abc", "--out", tmp_path])
    assert result.exit_code == 2 and "--sizes" in result.stderr
    result = run_cli(runner, ["bench", "fidelity", "--sizes", "50", "--out", tmp_path])
    assert result.exit_code == 2
