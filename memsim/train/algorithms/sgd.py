"""``sgd``: every step's desired change rounded into pulses on its own (stochastic rounding of
dw / dw_min, clipped to +-max_pulses). Simple and stateless; oscillating updates each cost
pulses and write noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Algorithm


@dataclass
class SGDSettings:
    pass


class SGD(Algorithm):
    name = "sgd"
    Settings = SGDSettings

    def update(self, dw: torch.Tensor) -> None:
        syn, arr = self.syn, self.syn.array
        mp = syn.mapping.max_pulses
        x = self.stochastic_round(torch.mul(dw, arr.inv_dw)).clamp_(-mp, mp)
        k, counts = syn.nonzero_counts(x)
        if k.numel():
            self.send(arr, k, counts)
            syn.flat.index_copy_(0, k, arr.read(k))
