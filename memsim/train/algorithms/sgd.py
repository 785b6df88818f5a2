"""``sgd``: every step's desired change rounded into pulses on its own, dw / dw_min clipped to
+-max_pulses. Simple and stateless; oscillating updates each cost pulses and write noise.

``rounding: stochastic`` (the default) rounds so that the expected count is dw / dw_min;
``nearest`` is the HfOx study's published rule n = round(clamp(step, +-14)) (with
``mapping.dw_min: 1`` the optimizer's step is itself the pulse count, no dw_min at all, and
``mapping.max_pulses: 14`` the clamp)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Algorithm

ROUNDINGS = ("stochastic", "nearest")


@dataclass
class SGDSettings:
    rounding: str = "stochastic"


class SGD(Algorithm):
    name = "sgd"
    Settings = SGDSettings
    checks = {"rounding": {"choices": ROUNDINGS}}

    def update(self, dw: torch.Tensor) -> None:
        syn, arr = self.syn, self.syn.array
        mp = syn.mapping.max_pulses
        x = torch.mul(dw, arr.inv_dw)
        x = (self.stochastic_round(x) if self.settings.rounding == "stochastic"
             else x.round_()).clamp_(-mp, mp)
        k, counts = syn.nonzero_counts(x)
        if k.numel():
            self.send(arr, k, counts)
            syn.flat.index_copy_(0, k, arr.read(k))
