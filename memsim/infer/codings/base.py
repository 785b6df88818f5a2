"""What a weight coding is: weights in, cell states out; cell reads in, weights out.

A :class:`Coding` writes each weight into one or more cells (``write``: a long tensor of
state indices into the LUT, ``[n_weights, cells_per_weight]``), and reads them back from drawn
conductances (``read``: ``[draws, n_weights, cells]`` → weights). Everything a reader is
calibrated on (thresholds, state centres) comes from the LUT at its reference read time, so a
later read time shows what drift does to a reader set up at programming time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from ...errors import MemsimError
from ...io.schema import Section
from ...states import StateLUT, StateSampler

# IEEE-754 layouts: torch dtype, the integer type of the same width, bits, exponent bits
FORMATS = {"float32": (torch.float32, torch.int32, 32, 8),
           "float16": (torch.float16, torch.int16, 16, 5),
           "bfloat16": (torch.bfloat16, torch.int16, 16, 8)}
FIELDS = ("sign", "exponent", "mantissa")


@dataclass
class Coded:
    """Weights read back from one batch of draws."""

    weights: torch.Tensor                 # [draws, n] float32, non-finite values replaced
    bit_errors: torch.Tensor | None       # [draws, bits]: error rate per bit position
    nonfinite: torch.Tensor               # [draws]: decoded NaN / inf before replacement


def to_bits(w: torch.Tensor, fmt: str) -> torch.Tensor:
    """``w`` rounded to ``fmt``, as its bits, most significant (the sign) first: [..., bits]."""
    dtype, itype, nbits, _ = FORMATS[fmt]
    q = w.to(dtype).view(itype).to(torch.int64) & ((1 << nbits) - 1)
    shifts = torch.arange(nbits - 1, -1, -1, device=w.device)
    return ((q.unsqueeze(-1) >> shifts) & 1).to(torch.uint8)


def from_bits(bits: torch.Tensor, fmt: str) -> torch.Tensor:
    """The float32 value of IEEE-754 ``fmt`` bit patterns [..., bits] (sign first)."""
    dtype, itype, nbits, _ = FORMATS[fmt]
    shifts = torch.arange(nbits - 1, -1, -1, device=bits.device)
    q = (bits.to(torch.int64) << shifts).sum(-1)
    q = torch.where(q >= 1 << (nbits - 1), q - (1 << nbits), q)  # two's complement
    return q.to(itype).view(dtype).to(torch.float32)


def bit_fields(fmt: str) -> list[str]:
    """The field (sign, exponent, mantissa) of each bit position, sign first."""
    _, _, nbits, exp = FORMATS[fmt]
    return ["sign"] + ["exponent"] * exp + ["mantissa"] * (nbits - 1 - exp)


def replace_nonfinite(w: torch.Tensor, how: str, limit: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded NaN/inf → 0 (``zero``) or ±``limit`` (``clamp``, NaN → 0); returns the
    weights and the per-draw count of non-finite values."""
    bad = ~torch.isfinite(w)
    count = bad.sum(-1)
    if how == "clamp":
        fixed = torch.where(torch.isnan(w), 0.0, w.clamp(-limit, limit))
    else:
        fixed = torch.where(bad, 0.0, w)
    return fixed, count


class Coding(ABC):
    """A weight coding; subclasses read their options from a spec section in ``__init__``."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def label(self) -> str:
        """Names the coding and its options in tables, e.g. ``float_bits:float16``."""

    @property
    def fmt(self) -> str | None:
        return None

    def check(self, lut: StateLUT, where: str) -> None:  # noqa: B027 - most codings take any
        """Refuse a LUT this coding cannot use (one line)."""

    @abstractmethod
    def write(self, w: torch.Tensor, lut: StateLUT) -> torch.Tensor:
        """State indices [n, cells] for weights ``w`` [n]."""

    @abstractmethod
    def read(self, g: torch.Tensor, w: torch.Tensor, reference: StateSampler,
             scale: float) -> Coded:
        """Weights from conductances ``g`` [draws, n, cells] of the cells written for ``w``;
        ``reference``: the LUT at its reference read time (the reader's calibration)."""


def take_format(sec: Section) -> str:
    return sec.take("format", str, "float32", choices=tuple(FORMATS))


def take_states(sec: Section, lut_states: int | None = None) -> list[int] | None:
    """Optional ``states: [low, high]`` (LUT state indices, ascending conductance)."""
    if not sec.has("states"):
        sec.take("states", list, None)
        return None
    states = sec.number_list("states", integer=True)
    if len(states) != 2 or min(states) < 0:
        raise sec.error("states", "must be two state indices [logic 0, logic 1]")
    if states[0] >= states[1]:  # the reader calls a cell above its threshold a 1
        raise sec.error("states", "logic 1 must be the higher state: indices ascend with "
                                  "conductance")
    return states


def check_states(states: list[int] | None, lut: StateLUT, where: str) -> None:
    if states is not None and max(states) >= lut.n_states:
        raise MemsimError(f"state index {max(states)} is out of range: LUT {lut.name!r} has "
                          f"{lut.n_states} states", None, where)
