"""``mixed_precision``: a digital accumulator chi per weight (Nandakumar et al., Front.
Neurosci. 2020; the analog kit's MixedPrecisionCompound). chi += dw every step; where
|chi| >= dw_min, n = trunc(chi / dw_min) pulses (clipped to +-max_pulses) go to the devices and
chi loses n * dw_min, or, with ``verify``, the change the devices actually made (read back):
no desired change is lost or counted twice, and oscillating updates cancel in chi instead of
costing pulses."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Algorithm


@dataclass
class MixedPrecisionSettings:
    verify: bool = False


class MixedPrecision(Algorithm):
    name = "mixed_precision"
    Settings = MixedPrecisionSettings

    def bind(self, syn, dev, seed, member_choice=None):
        super().bind(syn, dev, seed, member_choice)
        self.chi = torch.zeros(syn.size, device=syn.device)
        return self

    def update(self, dw: torch.Tensor) -> None:
        syn, arr = self.syn, self.syn.array
        mp = syn.mapping.max_pulses
        self.chi.add_(dw)
        x = torch.mul(self.chi, arr.inv_dw).trunc_().clamp_(-mp, mp)
        k, counts = syn.nonzero_counts(x)
        if not k.numel():
            return
        if self.settings.verify:
            before = arr.read(k)
            self.send(arr, k, counts)
            after = arr.read(k)
            self.chi.index_add_(0, k, before - after)
        else:
            self.send(arr, k, counts)
            after = arr.read(k)
            self.chi.index_add_(0, k, -counts.to(self.chi.dtype) * arr.dw_min.index_select(0, k))
        syn.flat.index_copy_(0, k, after)
