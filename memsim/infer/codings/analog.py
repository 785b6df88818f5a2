"""``analog``: the usual in-memory-computing mapping, for comparison with the bit codings.

A weight in [−w_max, w_max] (w_max: the layer's largest |w|) is mapped linearly onto the
conductance range between the LUT's lowest and highest state medians (one cell, offset
mapping) and read as is. A target between measured states takes the read deviation of the
nearest measured state (its spread at the run's scale, and its drift since the reference time).
"""

from __future__ import annotations

import torch

from ...io.schema import Section
from ...states import StateLUT, StateSampler
from .base import Coded, Coding


class Analog(Coding):
    name = "analog"

    def __init__(self, sec: Section):
        pass

    @property
    def label(self) -> str:
        return "analog"

    @staticmethod
    def _map(w: torch.Tensor, medians: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Target conductances (float64) and the slope dG/dw."""
        w_max = float(w.abs().max()) or 1.0
        g_lo, g_hi = float(medians[0]), float(medians[-1])
        slope = (g_hi - g_lo) / (2 * w_max)
        return g_lo + (w.double() + w_max) * slope, slope

    def write(self, w: torch.Tensor, lut: StateLUT) -> torch.Tensor:
        medians = torch.tensor(lut.medians(), dtype=torch.float64, device=w.device)
        target, _ = self._map(w, medians)
        return (target.unsqueeze(-1) - medians).abs().argmin(-1, keepdim=True)

    def read(self, g: torch.Tensor, w: torch.Tensor, reference: StateSampler,
             scale: float) -> Coded:
        medians = reference.median
        _, slope = self._map(w, medians)
        nearest = self.write(w, reference.lut).to(g.device)
        deviation = (g - medians[nearest]).squeeze(-1)  # [D, n]: read minus programmed
        # w + deviation / slope rather than decoding g: a zero deviation returns w exactly
        weights = (w.double() + deviation / slope).float()
        return Coded(weights, None, torch.zeros(len(g), dtype=torch.long, device=g.device))
