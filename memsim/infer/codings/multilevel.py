"""``multilevel``: the IEEE-754 bits of a weight packed several to a cell of a multi-state LUT.

With 2^b states a cell holds b bits (default: all a LUT's states, e.g. 3 bits in 8 states). The
b-bit value of a cell selects its state, in order of conductance (``gray: true`` maps values to
states in Gray code, so a read in a neighbouring state costs one bit). ``grouping``:
``contiguous`` puts bits k·b … k·b+b−1 in cell k; ``interleaved`` puts bits k, k+C, k+2C … in
cell k (C cells), mixing significant and insignificant bits. A read is decoded to the state
whose reference median is nearest.
"""

from __future__ import annotations

import math

import torch

from ...errors import MemsimError
from ...io.schema import Section
from ...states import StateLUT, StateSampler
from .base import FORMATS, Coded, Coding, from_bits, replace_nonfinite, take_format, to_bits


class Multilevel(Coding):
    name = "multilevel"

    def __init__(self, sec: Section):
        self._fmt = take_format(sec)
        self.bits_per_cell = sec.take("bits_per_cell", int, None,
                                      check=lambda v: 1 <= v <= 8, check_msg="must be 1 to 8")
        self.grouping = sec.take("grouping", str, "contiguous",
                                 choices=("contiguous", "interleaved"))
        self.gray = sec.take("gray", bool, False)
        self.nonfinite = sec.take("nonfinite", str, "zero", choices=("zero", "clamp"))

    @property
    def fmt(self) -> str:
        return self._fmt

    @property
    def label(self) -> str:
        b = f"{self.bits_per_cell}b" if self.bits_per_cell else "auto"
        return f"multilevel:{self._fmt}:{b}:{self.grouping}{':gray' if self.gray else ''}"

    def _b(self, lut: StateLUT) -> int:
        return self.bits_per_cell or int(math.log2(lut.n_states))

    def check(self, lut: StateLUT, where: str) -> None:
        b = self._b(lut)
        if 2 ** b != lut.n_states:
            raise MemsimError(f"multilevel with {b} bits per cell needs a LUT of {2 ** b} states; "
                              f"{lut.name!r} has {lut.n_states}", None, where)

    def _layout(self, b: int, device) -> torch.Tensor:
        """Bit position held by (cell, slot), [cells, b]; positions past the format's width are
        padding (always 0)."""
        nbits = FORMATS[self._fmt][2]
        cells = -(-nbits // b)
        idx = torch.arange(cells * b, device=device)
        if self.grouping == "contiguous":
            return idx.view(cells, b)
        return idx.view(b, cells).T.contiguous()

    def _gray(self, v: torch.Tensor, inverse: bool) -> torch.Tensor:
        if not self.gray:
            return v
        if not inverse:
            return v ^ (v >> 1)
        out = v.clone()
        shift = v >> 1
        while bool(shift.any()):
            out ^= shift
            shift = shift >> 1
        return out

    def write(self, w: torch.Tensor, lut: StateLUT) -> torch.Tensor:
        b = self._b(lut)
        nbits = FORMATS[self._fmt][2]
        layout = self._layout(b, w.device)
        bits = to_bits(w, self._fmt).long()
        padded = torch.nn.functional.pad(bits, (0, layout.numel() - nbits))
        weights = 1 << torch.arange(b - 1, -1, -1, device=w.device)
        value = (padded[:, layout] * weights).sum(-1)  # [n, cells]
        return self._gray(value, inverse=False)

    def read(self, g: torch.Tensor, w: torch.Tensor, reference: StateSampler,
             scale: float) -> Coded:
        b = self._b(reference.lut)
        nbits = FORMATS[self._fmt][2]
        layout = self._layout(b, g.device)
        centres = reference.median
        state = (g.unsqueeze(-1) - centres).abs().argmin(-1)  # nearest state [D, n, cells]
        value = self._gray(state, inverse=True)
        slots = (value.unsqueeze(-1) >> torch.arange(b - 1, -1, -1, device=g.device)) & 1
        padded = torch.zeros(*g.shape[:2], layout.numel(), dtype=torch.long, device=g.device)
        padded[..., layout.reshape(-1)] = slots.reshape(*g.shape[:2], -1)
        read = padded[..., :nbits].to(torch.uint8)
        errors = (read != to_bits(w, self._fmt)).double().mean(1)
        limit = float(w.abs().max())
        weights, nonfinite = replace_nonfinite(from_bits(read, self._fmt), self.nonfinite, limit)
        return Coded(weights, errors, nonfinite)
