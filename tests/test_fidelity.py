"""`memsim bench fidelity`: fits of measured LUTs against the truth, as ratios to plain
binning of the same points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
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
    # the summary's ratios, recomputed by hand from the runs: per seed, the mean of the
    # polarities' W1 over the plain binning's of the same points; overall, the ratio of the
    # seeds' means
    smooth = summary[summary.method == "smooth"].set_index("n")
    for n in (300, 1000):
        def w1(method, seed, n=n):
            rows = runs[(runs.n == n) & (runs.method == method) & (runs.seed == seed)]
            assert len(rows) == 2  # one per polarity
            return rows.w1_rel.mean()

        per_seed = [w1("smooth", s) / w1(fidelity.PLAIN, s) for s in range(2)]
        assert per_seed[0] != pytest.approx(per_seed[1])  # min and max are told apart
        assert smooth.ratio_min[n] == pytest.approx(min(per_seed), rel=1e-12)
        assert smooth.ratio_max[n] == pytest.approx(max(per_seed), rel=1e-12)
        overall = (w1("smooth", 0) + w1("smooth", 1)) / (w1(fidelity.PLAIN, 0) +
                                                         w1(fidelity.PLAIN, 1))
        assert smooth.ratio[n] == pytest.approx(overall, rel=1e-12)
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



def test_hindsight_finds_the_best_configuration_and_is_written(tmp_path):
    """Per polarity, no configuration of the search space comes closer to the truth on the
    same seeds than the one chosen in hindsight (the plain binning is one of them); the
    table and its verdict are written with the benchmark."""
    from memsim.fit.optuna_binning import OptunaBinning, OptunaSettings, table_for
    from memsim.metrics.distances import w1_to_truth
    from memsim.models.resolve import load_model
    from memsim.models.sampling import sample_points
    from memsim.models.table import JumpTable

    search = OptunaSettings(families=("binning",), trials=5)
    spec = fidelity.FidelitySpec(truths={"TaOx 10": "device_data/crosssim_taox/10"},
                                 sizes=(300,), seeds=2,
                                 methods={fidelity.RECOMMENDED: OptunaBinning(search)})
    best = fidelity.hindsight(spec, [("TaOx 10", 300)], ROOT)
    assert list(best.polarity) == ["set", "reset"]
    assert best.configuration.str.startswith("binning").all()
    truth = load_model(ROOT / "device_data/crosssim_taox/10")
    rng = (truth.g_min, truth.g_max)
    for params in ({"family": "binning", "bins": 20, "edges": "width", "stat": "empirical"},
                   {"family": "binning", "bins": 3, "edges": "count", "stat": "gaussian"}):
        w1 = np.zeros(2)
        for seed in range(2):
            data = sample_points(truth, 300, seed)
            table = JumpTable({p: table_for(params, data.points[p].g, data.points[p].dg, rng,
                                            search) for p in ("set", "reset")},
                              *rng, data.unit, {})
            w1 += np.array(list(w1_to_truth(table, truth).values())) / 2
        assert (best.w1_rel.to_numpy() <= w1 + 1e-12).all()

    runs = fidelity.run_fidelity(spec, ROOT)
    cells = fidelity.hindsight_ratios(best, fidelity.summarise(runs))
    assert cells.ratio.iloc[0] <= 1.0 + 1e-12  # at least as close as the plain binning
    assert "the miss lies in the search's choice" in fidelity.hindsight_sentence(cells)
    far = cells.assign(ratio=1.2)  # had no configuration met the target
    assert "what the space can reach" in fidelity.hindsight_sentence(far)
    files = fidelity.write_fidelity(runs, tmp_path / "fid", best)
    assert tmp_path / "fid" / "hindsight.csv" in files
    assert "In hindsight" in (tmp_path / "fid" / "summary.md").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fid" / "hindsight.csv"), best,
                                  check_dtype=False)
    files = fidelity.write_fidelity(runs, tmp_path / "fid")  # a rerun that misses nothing
    assert not (tmp_path / "fid" / "hindsight.csv").exists()
    assert "In hindsight" not in (tmp_path / "fid" / "summary.md").read_text()


def test_results_readme_states_misses_and_their_hindsight(tmp_path):
    from memsim.results_readme import _fidelity_section

    rows = [("TaOx 1", 3000, fidelity.PLAIN, 0.2, 1.0), ("TaOx 1", 3000, "optuna", 0.1, 0.5),
            ("ENODe", 3000, fidelity.PLAIN, 0.15, 1.0), ("ENODe", 3000, "optuna", 0.12, 0.8)]
    summary = pd.DataFrame(rows, columns=["truth", "n", "method", "w1_rel", "ratio"])
    summary = summary.assign(ratio_min=summary.ratio, ratio_max=summary.ratio, seeds=3)
    (tmp_path / "fidelity").mkdir()
    summary.to_csv(tmp_path / "fidelity" / "summary.csv", index=False)
    text = "\n".join(_fidelity_section(tmp_path))
    assert "in 1 of 2 cells" in text and "ENODe at N = 3000: 0.80" in text
    assert "In hindsight" not in text  # none on record: nothing said
    pd.DataFrame({"truth": ["ENODe"] * 2, "n": [3000] * 2, "polarity": ["set", "reset"],
                  "w1_rel": [0.13, 0.11], "configuration": ["smooth local, bandwidth 0.02"] * 2}
                 ).to_csv(tmp_path / "fidelity" / "hindsight.csv", index=False)
    text = "\n".join(_fidelity_section(tmp_path))
    assert "ENODe at N = 3000: 0.8 against the search's 0.8, still above the target" in text
