"""``memsim ablate``: spec checks, the engine (resumable, paired variants) and its statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli

from memsim.ablate import parse_ablation_spec
from memsim.ablate.report import REPORT_FILES, ablation_table, ranking, ranking_markdown
from memsim.errors import MemsimError
from memsim.sweep.store import SweepStore

BASE = {"network": {"kind": "bnn", "hidden": [32]}, "subset": 400,
        "device": {"kind": "hfox"},
        "mapping": {"policy": "reset", "max_pulses": 14, "refresh_every": 10},
        "training": {"epochs": 1, "batch": 100, "optimizer": "adam", "lr": 0.005}}


def _spec_file(tmp_path, **over):
    doc = {"name": "abl", "base": BASE, "seeds": [0, 1],
           "variants": [{"name": "no_d2d", "d2d": False}, {"name": "no_rtn", "rtn": False}],
           "ensemble": 2, "out": "out"}
    doc.update(over)
    path = tmp_path / "abl.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("over, expected", [
    ({"variants": []}, "key 'variants': is empty"),
    ({"variants": [{"name": "a", "telegraph": False}]}, "unknown switch for a hfox device"),
    ({"variants": [{"name": "a", "rtn": False}, {"name": "a", "pink": False}]},
     "duplicate variant name 'a'"),
    ({"variants": [{"name": "full", "rtn": False}]}, "'full' is reserved"),
    ({"variants": [{"name": "a"}]}, "switches nothing"),
    ({"variants": [{"name": "a", "all": True}]}, "switches nothing off"),
    ({"variants": [{"name": "a", "rtn": True}]}, "switches nothing off"),
    ({"variants": [{"name": "a", "rtn": 0.5}]}, "must be"),
    ({"base": {**BASE, "device": "float"}}, "the float device has no imperfection switches"),
    ({"base": "missing.yaml"}, "base train spec 'missing.yaml' not found"),
    ({"variants": [{"name": "a", "device": "jart:noise_free"}]}, "a jart device in an "
                                                                "ablation of a hfox device"),
])
def test_bad_ablation_specs_fail_in_one_line_before_training(runner, tmp_path, over, expected):
    path = _spec_file(tmp_path, **over)
    result = run_cli(runner, ["ablate", path, "--no-progress", "--compute", "cpu"])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and expected in line, line
    assert not (tmp_path / "out").exists()


def test_switches_are_generic_over_device_kinds():
    for device, switch in (({"kind": "neurosim", "c2c": 0.01, "d2d": 0.3}, "c2c"),
                           ({"kind": "synthetic", "preset": "xbtorch_target"}, "noise")):
        spec = parse_ablation_spec({"base": {**BASE, "network": {"kind": "mlp"},
                                             "device": device, "mapping": {}},
                                    "variants": [{"name": "x", switch: False}]})
        dev = spec.device(spec.variants[-1])
        assert dev != spec.base.device and dev.kind == device["kind"]
        none = spec.device(spec.variants[1])  # every switch off
        assert all(getattr(none, f) == v for s in none.switches
                   for f, v in none.switches[s].items())


def test_ablate_writes_tables_and_resumes_without_retraining(runner, tmp_path):
    path = _spec_file(tmp_path)
    args = ["ablate", path, "--no-progress", "--compute", "cpu", "--seeds", "2"]
    first = run_cli(runner, args)
    assert first.exit_code == 0, first.output
    out = tmp_path / "out"
    table = pd.read_csv(out / "ablation.csv")
    assert list(table["variant"]) == ["full", "none", "no_d2d", "no_rtn"]
    for col in ("acc_pct", "acc_ci_low", "acc_ci_high", "diff_full_pp", "diff_full_ci_low",
                "diff_full_ci_high", "diff_none_pp"):
        assert col in table
    full = table.set_index("variant").loc["full"]
    assert full["diff_full_pp"] == 0 and full["acc_ci_low"] <= full["acc_pct"]
    assert (out / "ablation.png").stat().st_size > 1000
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and runs["acc_pct"].between(0, 100).all()
    stored = sorted((SweepStore(out).root / "batches").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in stored]
    second = run_cli(runner, args)
    assert second.exit_code == 0, second.output
    assert "4 training batches (4 cached)" in second.stderr
    assert [p.stat().st_mtime_ns for p in stored] == stamps  # nothing retrained
    assert pd.read_csv(out / "ablation.csv").equals(table)
    written = {p.name for p in out.iterdir()} - {"cache", "ablation_spec.yaml"}
    assert written == set(REPORT_FILES)


def test_a_changed_ablation_stopped_midway_leaves_no_old_report(runner, tmp_path, monkeypatch):
    from memsim.ablate import run as ablate_run

    path = _spec_file(tmp_path, variants=[{"name": "no_d2d", "d2d": False}])
    args = ["ablate", path, "--no-progress", "--compute", "cpu", "--seeds", "1"]
    assert run_cli(runner, args).exit_code == 0
    out = tmp_path / "out"
    assert (out / "ablation.csv").exists()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ablate_run, "run_batch", interrupted)
    assert run_cli(runner, [*args, "--epochs", "2"]).exit_code != 0
    assert {p.name for p in out.iterdir()} == {"cache", "ablation_spec.yaml"}
    assert yaml.safe_load((out / "ablation_spec.yaml").read_text())["base"]["training"][
        "epochs"] == 2
    # a spec file corrupted by hand is not a reason for a traceback: the run starts afresh
    monkeypatch.undo()
    (out / "ablation_spec.yaml").write_text("base: [unclosed\n")
    result = run_cli(runner, args)
    assert result.exit_code == 0, result.output
    assert (out / "ablation.csv").exists()


def _runs(gains: dict[str, float], sd: float, seeds: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    full = 80 + rng.normal(0, 2, seeds)  # seed effects shared by every variant
    rows = []
    for v, g in {"full": 0.0, "none": 10.0, **gains}.items():
        acc = full + g + (rng.normal(0, sd, seeds) if v != "full" else 0)
        off = {"full": "-", "none": "a b c"}.get(v, v.removeprefix("no_"))
        rows += [{"variant": v, "off": off, "seed": s, "acc_pct": a}
                 for s, a in enumerate(acc)]
    return pd.DataFrame(rows)


def test_ranking_states_a_clear_winner_and_rarely_resolves_a_tie():
    clear = ranking(_runs({"no_a": 5.0, "no_b": 1.0, "no_c": 0.5}, sd=0.2))
    assert list(clear["variant"][:1]) == ["no_a"] and clear["p_first"].iloc[0] > 0.95
    assert (clear["vs_top_ci_high"].iloc[1:] < 0).all()
    # equal true gains: the lead of whichever comes first is "resolved" only as often as a
    # 95 % interval misses (about 5 %)
    resolved = 0
    for r in range(200):
        tie = ranking(_runs({"no_a": 2.0, "no_b": 2.0}, sd=1.5, seed=r))
        resolved += bool(tie["vs_top_ci_high"].iloc[1] < 0)
    assert resolved / 200 < 0.1


def test_variants_tied_in_every_seed_share_the_first_place():
    """Two removals with identical accuracies in every seed (switches that change nothing):
    the bootstrap's first places split evenly, whichever is listed first."""
    runs = _runs({"no_a": 4.0, "no_c": 1.0}, sd=0.5)
    twin = runs[runs["variant"] == "no_a"].assign(variant="no_b", off="b")
    for order in ((runs, twin), (twin, runs)):
        rank = ranking(pd.concat(order, ignore_index=True)).set_index("variant")
        assert rank.loc["no_a", "p_first"] == rank.loc["no_b", "p_first"] == 0.5
        assert rank.loc["no_c", "p_first"] == 0
    alone = ranking(_runs({"no_a": 4.0}, sd=0.5))
    text = ranking_markdown(alone, 6)
    assert "It is the only one ranked." in text and "excludes 0" not in text


def test_paired_intervals_cover_the_true_difference():
    """Seed effects shared by all variants cancel in the paired difference: its 95 % interval
    covers the true gain in about 95 % of repeated ablations."""
    hits = 0
    reps = 200
    for r in range(reps):
        runs = _runs({"no_a": 3.0}, sd=1.0, seeds=4, seed=r)
        row = ablation_table(runs, ["full", "none", "no_a"]).set_index("variant").loc["no_a"]
        hits += row["diff_full_ci_low"] <= 3.0 <= row["diff_full_ci_high"]
    assert 0.9 <= hits / reps <= 0.99


def test_ablation_spec_parses_the_shipped_experiments():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "experiments"
    for name in ("ablate_hfox.yaml", "ablate_bcnn_hfox_fashion.yaml", "ablate_jart.yaml",
                 "ablate_jart_published.yaml"):
        spec = parse_ablation_spec(yaml.safe_load((root / name).read_text()), root / name)
        assert {"full", "none"} < {v.name for v in spec.variants}
        if name == "ablate_jart_published.yaml":  # the study's regime: its rule, its periphery
            assert spec.base.periphery is not None
            assert spec.base.training.algorithm["kind"] == "pulse_trains"
    with pytest.raises(MemsimError):
        parse_ablation_spec({"base": BASE, "variants": [{"name": "x", "all": "maybe"}]})


def test_variants_with_devices_of_their_own_rank_by_their_cost_alone():
    """Single imperfections added alone to the imperfection-free device (variants naming a
    device) are ranked by what each costs against ``none``."""
    rng = np.random.default_rng(0)
    none = 90 + rng.normal(0, 1, 6)
    rows = []
    for v, cost, off in (("full", 8.0, "-"), ("none", 0.0, "d2d c2c"), ("radius", 4.0, "-"),
                         ("length", 0.5, "-")):
        acc = none - cost + (rng.normal(0, 0.2, 6) if v != "none" else 0)
        rows += [{"variant": v, "off": off, "seed": s, "acc_pct": a} for s, a in enumerate(acc)]
    rank = ranking(pd.DataFrame(rows))
    assert list(rank["variant"]) == ["radius", "length"]
    assert (rank["mode"] == "alone").all()
    assert rank["gain_pp"].iloc[0] == pytest.approx(4.0, abs=0.5)
    assert rank["vs_top_ci_high"].iloc[1] < 0


def test_jart_ablation_spec_builds_every_configuration():
    from pathlib import Path

    from memsim.devices.jart import PRESETS

    path = Path(__file__).resolve().parents[1] / "experiments" / "ablate_jart.yaml"
    spec = parse_ablation_spec(yaml.safe_load(path.read_text()), path)
    described = {spec.device(v).describe() for v in spec.variants}
    assert described == {f"jart:{name}" for name in PRESETS}


@pytest.mark.parametrize("subset", ["ablate_jart_realistic.yaml", "ablate_jart_rdisc.yaml",
                                    "ablate_jart_wide.yaml"])
def test_jart_subset_ablations_share_the_full_ablations_batches(subset):
    """The subset specs run parts of ablate_jart.yaml: every batch they plan must be one of its
    batches (the same key), so their stores fill the full ablation's and no run is repeated."""
    from pathlib import Path

    from memsim.ablate.run import plan

    root = Path(__file__).resolve().parents[1] / "experiments"
    full, part = (parse_ablation_spec(yaml.safe_load((root / n).read_text()), root / n)
                  for n in ("ablate_jart.yaml", subset))
    keys = {b["key"]: b["variant"] for b in plan(full)}
    assert {b["key"]: b["variant"] for b in plan(part)}.items() <= keys.items()
    assert len(plan(part)) >= 3


def test_jart_claim_is_not_judged_while_the_clean_network_trails_the_noisy_one():
    from memsim.results_readme import _jart_claim_check

    rank = pd.DataFrame([{"rank": 1, "variant": "c2c_rdisc_30", "gain_pp": 5.0,
                          "gain_ci_low": 4.0, "gain_ci_high": 6.0, "vs_top_pp": 0.0,
                          "vs_top_ci_low": np.nan, "vs_top_ci_high": np.nan, "p_first": 1.0},
                         {"rank": 2, "variant": "d2d_rdisc_realistic", "gain_pp": -3.0,
                          "gain_ci_low": -4.0, "gain_ci_high": -2.0, "vs_top_pp": -8.0,
                          "vs_top_ci_low": -9.0, "vs_top_ci_high": -7.0, "p_first": 0.0}])
    early = pd.DataFrame({"variant": ["full", "none"], "acc_pct": [90.0, 80.0]})
    late = pd.DataFrame({"variant": ["full", "none"], "acc_pct": [90.0, 95.0]})
    assert "not tested at this scale" in _jart_claim_check(rank, 3, early)
    assert _jart_claim_check(rank, 3, late).startswith("**not supported.**")
    top = rank.assign(variant=["d2d_rdisc_realistic", "c2c_rdisc_30"])
    top.loc[1, "vs_top_ci_high"] = -1.0
    assert _jart_claim_check(top, 3, late).startswith("**supported.**")
    only_rdisc = top.iloc[:1]  # nothing else to rank against: no verdict
    assert _jart_claim_check(only_rdisc, 3, late).startswith("**not tested here**")


@pytest.mark.parametrize("algorithm, named", [({"kind": "sgd", "rounding": "stochastic"}, True),
                                              ({"kind": "pulse_trains", "bl": 31}, False)])
def test_jart_claim_says_when_the_update_is_not_the_studys(tmp_path, algorithm, named):
    """The study ranked its noise under the kit's pulse-train rule: a JART ablation run with
    another update says so next to the verdict, and one with the study's rule does not."""
    from memsim.results_readme import _ablation_section

    out = tmp_path / "ablate_jart_x"
    out.mkdir()
    pd.DataFrame({"variant": ["full", "none", "d2d_rdisc_realistic"], "off": ["-"] * 3,
                  "seeds": [3] * 3, "acc_pct": [90.0, 95.0, 94.0],
                  "diff_none_pp": [-5.0, 0.0, -1.0], "diff_none_ci_low": [-6.0, 0.0, -1.5],
                  "diff_none_ci_high": [-4.0, 0.0, -0.5]}).to_csv(
        out / "ablation.csv", index=False)
    pd.DataFrame([{"rank": 1, "variant": "d2d_rdisc_realistic", "mode": "alone",
                   "switched off": "d2d_rdisc_realistic", "gain_pp": 1.0, "gain_ci_low": 0.5,
                   "gain_ci_high": 1.5, "vs_top_pp": 0.0, "vs_top_ci_low": np.nan,
                   "vs_top_ci_high": np.nan, "p_first": 1.0}]).to_csv(
        out / "ranking.csv", index=False)
    (out / "ablation.md").write_text("# x\n\n| table |\n")
    (out / "ranking.md").write_text("| ranking |\n")
    base = {"dataset": "mnist", "subset": None, "device": {"kind": "jart"},
            "network": {"kind": "mlp", "hidden": [256, 128]},
            "training": {"epochs": 30, "batch": 32, "algorithm": algorithm}}
    (out / "ablation_spec.yaml").write_text(yaml.safe_dump({"base": base}))
    text = "\n".join(_ablation_section([out]))
    assert "The study's claim" in text
    assert ("kit's pulse-train rule" in text) == named


def test_jart_variants_without_effect_are_explained_by_the_window_functions():
    """A variant whose every seed matches the noise-free device is named, with how little its
    N_discmin can change the RESET window inside the clipped N range: (0.016 / 0.06)^10."""
    from memsim.results_readme import _jart_inert

    table = pd.DataFrame({"variant": ["full", "none", "d2d_ndiscmin_realistic", "d2d_rdisc"],
                          "diff_none_pp": [-1.5, 0.0, 0.0, 0.8],
                          "diff_none_ci_low": [-2.0, 0.0, 0.0, 0.5],
                          "diff_none_ci_high": [-1.0, 0.0, 0.0, 1.1]})
    devices = {"d2d_ndiscmin_realistic": "jart:d2d_ndiscmin_realistic",
               "d2d_rdisc": "jart:d2d_rdisc_realistic"}
    text = _jart_inert(table, devices)
    assert "`d2d_ndiscmin_realistic`" in text and "`d2d_rdisc`" not in text
    assert f"{(0.016 / 0.06) ** 10:.1e} (RESET" in text
    assert _jart_inert(table[table["variant"] != "d2d_ndiscmin_realistic"], devices) == ""


@pytest.mark.parametrize("low, together", [(-0.2, True), (0.1, False)])
def test_jart_terms_alone_say_together_only_when_no_term_costs(tmp_path, low, together):
    """The noise-cost section reads the on-record ablation of realistic mixed's terms: it puts
    the cost in the terms' interplay only when the whole costs and no term alone is shown to."""
    from memsim.results_readme import _jart_terms_alone

    out = tmp_path / "ablate_jart_realistic"
    out.mkdir()
    pd.DataFrame({"variant": ["full", "none"], "diff_none_pp": [-1.5, 0.0],
                  "diff_none_ci_low": [-2.0, 0.0], "diff_none_ci_high": [-1.0, 0.0]}).to_csv(
        out / "ablation.csv", index=False)
    pd.DataFrame({"variant": ["c2c_ldisc_1", "d2d_rdisc_realistic"], "gain_pp": [0.3, -0.8],
                  "gain_ci_low": [low, -1.1], "gain_ci_high": [0.5, -0.5]}).to_csv(
        out / "ranking.csv", index=False)
    (out / "ablation_spec.yaml").write_text(yaml.safe_dump(
        {"base": {"training": {"epochs": 30}}, "variants": [{"name": "full"}]}))
    text = " ".join(_jart_terms_alone(tmp_path))
    assert "+1.50 [+1.00, +2.00] pp" in text and "raise it (d2d_rdisc_realistic)" in text
    assert ("together they are shown to" in text) == together
    assert ("at most +0.50 pp" in text) == together
    assert ("shown to cost accuracy (c2c_ldisc_1)" in text) == (not together)
    assert _jart_terms_alone(tmp_path / "elsewhere") == []


def test_jart_wider_rdisc_costs_are_read_from_their_ablation(tmp_path):
    from memsim.results_readme import _jart_rdisc_wider

    assert _jart_rdisc_wider(tmp_path) == []
    out = tmp_path / "ablate_jart_rdisc"
    out.mkdir()
    pd.DataFrame({"variant": ["d2d_rdisc_30"], "gain_pp": [38.78], "gain_ci_low": [8.28],
                  "gain_ci_high": [69.27]}).to_csv(out / "ranking.csv", index=False)
    text = _jart_rdisc_wider(tmp_path)[0]
    assert "`d2d_rdisc_30` +38.78 [+8.28, +69.27] pp" in text
    assert "needs the other parameters' settings" in text


@pytest.mark.parametrize("top_cost, verdict", [(80.0, "ranks 2"), (20.0, "ranks first")])
def test_jart_wider_rdisc_ranked_among_the_wider_settings(tmp_path, top_cost, verdict):
    """Where an on-record ablation also holds the other parameters' wider settings, the
    sentence ranks the disc radius among them, not saying they were not run."""
    from memsim.results_readme import _jart_rdisc_wider

    out = tmp_path / "ablate_jart_wide"
    out.mkdir()
    costs = {"c2c_rdisc_30": top_cost, "d2d_rdisc_30": 38.0, "c2c_ldisc_30": 0.1}
    order = sorted(costs, key=costs.get, reverse=True)
    top = costs[order[0]]
    pd.DataFrame({"rank": [1, 2, 3], "variant": order,
                  "gain_pp": [costs[v] for v in order],
                  "gain_ci_low": [costs[v] - 5 for v in order],
                  "gain_ci_high": [costs[v] + 5 for v in order],
                  "vs_top_pp": [costs[v] - top for v in order],
                  "vs_top_ci_low": [costs[v] - top - 4 for v in order],
                  "vs_top_ci_high": [0.0 if v == order[0] else costs[v] - top + 4
                                     for v in order]}).to_csv(out / "ranking.csv", index=False)
    text = _jart_rdisc_wider(tmp_path)[0]
    assert "`ablate_jart_wide`" in text and "not run" not in text
    assert verdict in text
    assert "at 30% (down to 31.5 nm, where one SET pulse at w = 0 moves the weight by +0.600" \
        in text  # the walk reaches discs that switch in one pulse
    assert "The 1 setting of l_disc" in text and "none shown to cost; under memsim's rule the " \
        "disc radius is the one parameter" in text
    if top_cost > 38:
        assert "`c2c_rdisc_30` +80.00" in text and "+42.00 [+38.00, +46.00] pp (it excludes 0)" \
            in text
    else:
        assert "excludes 0." in text


def test_an_ablation_whose_runs_lie_in_a_larger_one_is_named_as_its_subset(tmp_path):
    """An on-record ablation whose runs are all runs of a larger one of the same network is
    its subset; another network, or one differing outcome, is not."""
    from memsim.results_readme import _runs_within

    base = {"network": {"kind": "mlp", "hidden": [256, 128]}, "training": {"epochs": 30}}
    runs = pd.DataFrame({"variant": ["full", "full", "none", "none", "x", "x"],
                         "seed": [0, 1] * 3, "acc_pct": [90.1, 90.3, 95.0, 95.2, 80.0, 81.0],
                         "pulses": [7, 8, 0, 0, 5, 6]})

    def ablation(name, rows, net_base):
        out = tmp_path / name
        out.mkdir()
        rows.to_csv(out / "runs.csv", index=False)
        (out / "ablation_spec.yaml").write_text(yaml.safe_dump({"base": net_base}))
        return out

    big = ablation("big", runs, base)
    small = ablation("small", runs.iloc[:4], base)
    assert _runs_within(small, big) and not _runs_within(big, small)
    other = ablation("other", runs.iloc[:4], {**base, "training": {"epochs": 3}})
    assert not _runs_within(other, big)
    changed = runs.iloc[:4].copy()
    changed.loc[3, "acc_pct"] = 95.3
    assert not _runs_within(ablation("changed", changed, base), big)


def test_a_device_file_edited_in_place_is_not_served_from_the_store(tmp_path):
    """Batches are keyed by the content of the files a device names, not by their paths: a
    synthetic device (or a table) edited under the same name retrains every variant."""
    from pathlib import Path

    from memsim.ablate.run import plan

    preset = Path(__file__).resolve().parents[1] / "memsim/models/presets/xbtorch_target.yaml"
    dev = tmp_path / "dev.yaml"
    dev.write_text(preset.read_text())
    doc = {"name": "abl", "seeds": [0], "out": "out",
           "base": {**BASE, "device": {"kind": "synthetic", "preset": "dev.yaml", "d2d": 0.2},
                    "mapping": {"max_pulses": 8}},
           "variants": [{"name": "no_d2d", "d2d": False}]}

    def keys():
        return [b["key"] for b in plan(parse_ablation_spec(doc, tmp_path / "abl.yaml"))]

    before = keys()
    assert keys() == before
    dev.write_text(preset.read_text().replace("value: 1.2", "value: 2.4"))
    after = keys()
    assert len(after) == len(before) == 3 and not set(after) & set(before)
