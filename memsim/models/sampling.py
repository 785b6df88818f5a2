"""The study's "Algorithm 2": data drawn from a known device model, as a measurement would give
them (G uniform over the range, one pulse, changes that leave the range rejected)."""

from __future__ import annotations

import numpy as np

from .. import seeds
from ..errors import MemsimError
from ..io.data import Points, PulseData
from .base import POLARITIES, DeviceModel

MAX_POINTS = 10**8  # per polarity (generate, fit): more would not fit in memory

SAMPLING = ("reject", "clip")


def sample_points(model: DeviceModel, n: int, seed: int,
                  polarities=POLARITIES, max_rounds: int = 200,
                  mode: str = "reject") -> PulseData:
    """The study's Algorithm 2: ``n`` points per polarity from a known device model.

    G is uniform on [G_min, G_max] and dG is one draw of the model's pulse distribution. With
    ``mode="reject"`` (the published algorithm) points whose G + dG leaves the range are
    rejected and redrawn; with ``"clip"`` they are kept with G + dG clipped to the range, as a
    device that saturates at its bounds would show them. Seeded per polarity.
    """
    if n < 1:
        raise MemsimError(f"number of points must be positive, not {n}")
    if mode not in SAMPLING:
        raise MemsimError(f"sampling must be one of {', '.join(SAMPLING)}, not {mode!r}")
    points = {}
    for pol in polarities:
        rng = seeds.rng(seed, "data", POLARITIES.index(pol))
        gs, dgs, have = [], [], 0
        for _ in range(max_rounds):
            m = 2 * (n - have) + 16
            g = rng.uniform(model.g_min, model.g_max, m)
            dg = model.sample_dg(pol, g, rng)
            if mode == "clip":  # every draw is kept (no test: rounding could drop a bound)
                dg = np.clip(g + dg, model.g_min, model.g_max) - g
                ok = np.ones(len(g), dtype=bool)
            else:
                ok = (g + dg >= model.g_min) & (g + dg <= model.g_max)
            gs.append(g[ok])
            dgs.append(dg[ok])
            have += int(ok.sum())
            if have >= n:
                break
        else:
            raise MemsimError(f"{model.name}: too few {pol} draws stay inside the range "
                              f"({have} of {n} after {max_rounds} rounds)")
        points[pol] = Points(np.concatenate(gs)[:n], np.concatenate(dgs)[:n])
    data = PulseData(points, model.unit)
    data.sources = [{"path": f"generated:{model.name}", "sha256": f"seed={seed}",
                     "format": "algorithm2", "sampling": mode}]
    return data
