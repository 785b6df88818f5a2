"""Algorithm 2 and the simulator agree on what happens at the range's bounds: an infinitely
fine table of the data simulates like the truth, with changes clipped or rejected alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA

from memsim.devices.synthetic import SyntheticKind
from memsim.devices.table import TableKind
from memsim.metrics.distances import _InRange
from memsim.models.base import POLARITIES
from memsim.models.resolve import load_model
from memsim.models.sampling import sample_points
from memsim.models.synthetic import load_synthetic
from memsim.models.table import ConditionalTable, JumpTable, probability_grid

DEVICES = 20_000


def _limit_table(truth, mode: str, bins: int = 400, q: int = 512) -> JumpTable:
    """What a table fitted to infinitely many Algorithm-2 points converges to: at each G the
    truth's one-pulse distribution clipped to the range, or truncated to it."""
    p = probability_grid(q)
    tables = {}
    for pol in POLARITIES:
        edges = (truth.tables[pol].edges if isinstance(truth, JumpTable)  # its own bins
                 else np.linspace(truth.g_min, truth.g_max, bins + 1))
        c = (edges[1:] + edges[:-1]) / 2
        if mode == "clip":
            rows = np.clip(truth.quantile(pol, c, np.clip(p, 1e-5, 1 - 1e-5)),
                           truth.g_min - c[:, None], truth.g_max - c[:, None])
        else:
            rows = _InRange(truth, pol, c, truth.g_min, truth.g_max).quantile(
                np.clip(p, 1e-5, 1 - 1e-5))
        tables[pol] = ConditionalTable(edges, "quantile", quantiles=rows)
    return JumpTable(tables, truth.g_min, truth.g_max, truth.unit)


def _trains(kind, g0: float, seed: int):
    pop = kind.population((DEVICES,), seed=seed)
    pop.program(g0)
    traj = []
    for pol in ("set",) * 25 + ("reset",) * 25:
        pop.pulse_all(pol)
        traj.append(pop.g.clone())
    t = torch.stack(traj).double()
    return t.mean(1).numpy(), t.std(1).numpy()


def _max_z(a, b):
    (ma, sa), (mb, sb) = a, b
    se = np.sqrt((sa**2 + sb**2) / DEVICES) + 1e-30
    return float(np.max(np.abs(ma - mb) / se))


@pytest.mark.parametrize("mode", ["clip", "reject"])
def test_the_fine_table_limit_simulates_like_the_truth(mode):
    truth = load_synthetic("asymmetric")
    g0 = truth.g_min + 0.9 * (truth.g_max - truth.g_min)  # SET pulses meet the bound
    real = _trains(SyntheticKind(preset="asymmetric", models=[truth], bounds=mode), g0, 1)
    fine = _trains(TableKind(paths=["limit"], models=[_limit_table(truth, mode)],
                             bounds=mode), g0, 2)
    assert _max_z(real, fine) < 5  # 50 steps: within sampling noise


@pytest.mark.parametrize("mode", ["clip", "reject"])
def test_a_measured_truth_that_leaves_the_range_and_the_wrong_convention(mode):
    """TaOx SET steps often leave the range: the limit of the data simulated by the same rule
    matches the truth, the limit of the other rule's data does not (the test can fail)."""
    truth = load_model(DATA / "crosssim_taox" / "10")
    g0 = truth.g_min + 0.8 * (truth.g_max - truth.g_min)
    real = _trains(TableKind(paths=["truth"], models=[truth], bounds=mode), g0, 1)
    fine = _trains(TableKind(paths=["limit"], models=[_limit_table(truth, mode)],
                             bounds=mode), g0, 2)
    assert _max_z(real, fine) < 5
    other = "reject" if mode == "clip" else "clip"
    wrong = _trains(TableKind(paths=["limit"], models=[_limit_table(truth, other)],
                              bounds=mode), g0, 2)
    assert _max_z(real, wrong) > 8


def test_algorithm_2_clips_or_rejects():
    truth = load_synthetic("asymmetric")
    clipped = sample_points(truth, 4000, seed=0, mode="clip")
    rejected = sample_points(truth, 4000, seed=0, mode="reject")
    for data in (clipped, rejected):
        for pol in POLARITIES:
            pts = data.points[pol]
            end = pts.g + pts.dg
            assert end.min() >= truth.g_min - 1e-15 and end.max() <= truth.g_max + 1e-15
    assert len(clipped.points["set"]) == 4000
    # clipping keeps changes ending exactly on a bound; rejection never does
    on_bound = [np.isclose(d.points["set"].g + d.points["set"].dg, truth.g_max, rtol=0,
                           atol=1e-15).mean() for d in (clipped, rejected)]
    assert on_bound[0] > 0.003 and on_bound[1] == 0
