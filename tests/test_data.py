"""Device data input: the three CSV layouts, units, and refusal of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import GONG, RAMPS, run_cli

from memsim.errors import MemsimError
from memsim.io.data import load_device_data, write_tidy_csv
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic


def test_tidy_round_trip_with_units(tmp_path):
    data = sample_points(load_synthetic("softbounds"), 200, seed=3)
    path = tmp_path / "d.csv"
    write_tidy_csv(data, path, unit="uS")
    back = load_device_data(path, unit="uS")
    for pol in ("set", "reset"):
        np.testing.assert_allclose(back.points[pol].g, data.points[pol].g, rtol=1e-12)
        np.testing.assert_allclose(back.points[pol].dg, data.points[pol].dg, rtol=1e-9)
    assert back.unit == "S"
    assert back.sources[0]["format"] == "tidy"


def test_tidy_device_column_and_case_insensitive_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("Polarity,G,dG,device\nset,1e-6,1e-8,a\nreset,2e-6,-1e-8,b\nSET,3e-6,2e-8,a\n")
    data = load_device_data(path)
    assert data.n("set") == 2 and data.n("reset") == 1
    assert list(data.points["set"].device) == [0, 0]


def test_crosssim_ramps_currents_to_conductance():
    data = load_device_data(RAMPS, unit="A", read_voltage=0.1)
    raw_set = np.genfromtxt(RAMPS[0], delimiter=",", skip_header=1)
    n_set = int(sum(np.sum(~np.isnan(c)) - 1 for c in raw_set.T))
    assert data.n("set") == n_set
    assert len(data.traces["set"]) == 39 and len(data.traces["reset"]) == 40
    # first ramp, first reading 0.000160588 A at 0.1 V -> 1.60588 mS
    assert data.traces["set"][0][0] == pytest.approx(1.60588e-3)
    assert np.mean(data.points["set"].dg) > 0 > np.mean(data.points["reset"].dg)


def test_ramps_polarity_can_be_forced():
    data = load_device_data(RAMPS[0], unit="A", read_voltage=0.1, polarity="reset")
    assert data.n("set") == 0 and data.n("reset") > 0


def test_two_column_headers_name_the_polarity_and_mixed_ramps_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("reset,set\n" + "\n".join(f"{1 - i / 10},{i / 10}" for i in range(6)))
    data = load_device_data(path, unit="norm")
    assert data.n("set") == 5 and data.n("reset") == 5
    assert np.all(data.points["set"].dg > 0) and np.all(data.points["reset"].dg < 0)
    mixed = tmp_path / "m.csv"
    mixed.write_text("a,b,c\n" + "\n".join(f"{i},{10 - i},{i}" for i in range(5)))
    with pytest.raises(MemsimError, match="both up"):
        load_device_data(mixed, unit="norm", fmt="ramps")
    assert load_device_data(mixed, unit="norm", fmt="ramps", polarity="set").n("set") == 12


def test_ramp_labels_stay_distinct_across_files():
    data = load_device_data(RAMPS, unit="A", read_voltage=0.1)
    assert len(np.unique(data.points["set"].device)) == 39
    assert len(np.unique(data.points["reset"].device)) == 40
    assert set(data.points["set"].device).isdisjoint(data.points["reset"].device)


def test_gong_updown_trace_normalised():
    data = load_device_data(GONG, unit="norm")
    assert data.n("set") == 999 and data.n("reset") == 999
    assert data.unit == "a.u."
    assert data.points["set"].g.min() < 0  # normalised values may be negative


def test_currents_need_a_read_voltage():
    with pytest.raises(MemsimError, match="read-voltage"):
        load_device_data(RAMPS[0], unit="A")


BAD_INPUTS = {
    "empty": ("", "file is empty"),
    "header_only": ("polarity,g,dg\n", "no data rows"),
    "misspelt_column": ("polarity,g,delta\nset,1,0.1\n", "missing column 'dg'"),
    "missing_column": ("polarity,g\nset,1\nreset,2\n", "missing column 'dg'"),
    "non_numeric": ("polarity,g,dg\nset,1e-6,1e-8\nset,abc,1e-8\n", "line 3, column 'g'"),
    "nan": ("polarity,g,dg\nset,1e-6,nan\nreset,2e-6,1e-8\n", "not finite"),
    "inf": ("polarity,g,dg\nset,1e-6,1e-8\nreset,inf,1e-8\n", "not finite"),
    "negative_g": ("polarity,g,dg\nset,1e-6,1e-8\nreset,-2e-6,1e-8\n", "negative conductance"),
    "bad_polarity": ("polarity,g,dg\nset,1e-6,1e-8\nsett,2e-6,1e-8\n", "'sett' is not"),
    "constant_g": ("polarity,g,dg\nset,1e-6,1e-8\nset,1e-6,2e-8\nreset,1e-6,-1e-8\n"
                   "reset,2e-6,-1e-8\n", "constant"),
    "ragged": ("polarity,g,dg\nset,1e-6,1e-8,5,6\n", "not a readable CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_csv_refused_by_cli_with_one_line(case, tmp_path, runner):
    text, expected = BAD_INPUTS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    out = tmp_path / "out"
    result = run_cli(runner, ["fit", path, "--out", out, "--bins", "2"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert not out.exists()


def test_missing_and_unreadable_files(tmp_path, runner):
    out = tmp_path / "out"
    result = run_cli(runner, ["fit", tmp_path / "nope.csv", "--out", out])
    assert result.exit_code == 2 and "file not found" in result.stderr
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    result = run_cli(runner, ["fit", binary, "--out", out])
    assert result.exit_code == 2 and "cannot read" in result.stderr
    assert not out.exists()


def test_too_few_points_for_bins(tmp_path, runner):
    data = sample_points(load_synthetic("softbounds"), 30, seed=0)
    path = tmp_path / "small.csv"
    write_tidy_csv(data, path)
    result = run_cli(runner, ["fit", path, "--bins", "50", "--out", tmp_path / "o"])
    assert result.exit_code == 2
    assert "too few points for the requested bins" in result.stderr
    assert not (tmp_path / "o").exists()


def test_bad_options_are_one_line_too(runner, tmp_path):
    result = run_cli(runner, ["fit", tmp_path / "x.csv", "--unit", "kS"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "--unit" in result.stderr
