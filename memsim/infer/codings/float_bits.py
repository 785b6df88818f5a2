"""``float_bits``: each weight as an IEEE-754 number, one cell per bit.

Bit 1 is written as the LUT's high-conductance state (LRS), bit 0 as its low one (HRS) (or the
two states named by ``states``). A bit is read as 1 when the cell's conductance exceeds the
threshold: ``auto`` (default) minimises the equal-prior bit error rate between the two
reference distributions at the run's variability scale, ``midpoint`` halves their medians, or
a number in siemens. ``protect: [sign, exponent]`` reads those fields without error (bits kept
in reliable cells), to show which bits matter.
"""

from __future__ import annotations

import torch

from ...io.schema import Section
from ...states import StateLUT, StateSampler, best_threshold
from .base import (
    FIELDS,
    Coded,
    Coding,
    bit_fields,
    check_states,
    from_bits,
    replace_nonfinite,
    take_format,
    take_states,
    to_bits,
)


class FloatBits(Coding):
    name = "float_bits"

    def __init__(self, sec: Section):
        self._fmt = take_format(sec)
        self.states = take_states(sec)
        threshold = sec.take("threshold", (str, float), "auto")
        if isinstance(threshold, str) and threshold not in ("auto", "midpoint"):
            raise sec.error("threshold", "must be auto, midpoint or a conductance in S")
        self.threshold = threshold
        protect = sec.take("protect", list, [])
        if any(p not in FIELDS for p in protect):
            raise sec.error("protect", f"must list fields among {', '.join(FIELDS)}")
        self.protect = list(protect)
        self.nonfinite = sec.take("nonfinite", str, "zero", choices=("zero", "clamp"))

    @property
    def fmt(self) -> str:
        return self._fmt

    @property
    def label(self) -> str:
        extra = f"+protect_{'_'.join(self.protect)}" if self.protect else ""
        return f"float_bits:{self._fmt}{extra}"

    def check(self, lut: StateLUT, where: str) -> None:
        check_states(self.states, lut, where)

    def _pair(self, lut: StateLUT) -> tuple[int, int]:
        return tuple(self.states) if self.states else (0, lut.n_states - 1)

    def write(self, w: torch.Tensor, lut: StateLUT) -> torch.Tensor:
        low, high = self._pair(lut)
        bits = to_bits(w, self._fmt).long()
        return torch.where(bits == 1, high, low)

    def reader_threshold(self, reference: StateSampler, scale: float) -> float:
        low, high = self._pair(reference.lut)
        if not isinstance(self.threshold, str):
            return float(self.threshold)
        if self.threshold == "midpoint":
            m = reference.median
            return float((m[low] + m[high]) / 2)
        sets = reference.calibration_sets(scale)
        return best_threshold(sets[low], sets[high])

    def read(self, g: torch.Tensor, w: torch.Tensor, reference: StateSampler,
             scale: float) -> Coded:
        bits = to_bits(w, self._fmt)
        read = (g > self.reader_threshold(reference, scale)).to(torch.uint8)
        keep = torch.tensor([f in self.protect for f in bit_fields(self._fmt)], device=g.device)
        read = torch.where(keep, bits, read)
        errors = (read != bits).double().mean(1)
        limit = float(w.abs().max())
        weights, nonfinite = replace_nonfinite(from_bits(read, self._fmt), self.nonfinite, limit)
        return Coded(weights, errors, nonfinite)
