"""``pulse_trains``: the analog kit's stochastic pulse-train update (Gokmen & Vlasov 2016; the
kit's StochasticCompressed pulses with update management).

For every example, input unit j fires a train of BL bits with probability p_x = |x_j| B and
output unit i one with p_d = |delta_i| A (the bits of one time slot independent); every
coincidence is one pulse on device (j, i), down where x_j delta_i > 0 and up otherwise, so
E[dw_ji] = -BL p_x p_d dw_min = -lr x_j delta_i for A B = lr / (dw_min BL).

Update management (per example, as the kit does): with k = lr max|x| max|delta| / dw_min, the
train length is BL = min(ceil(k), bl) (``bl_management``) and A, B are balanced by
sqrt(max|x| / max|delta|) so the largest probability on each side is sqrt(k / BL) <= 1; where
k > bl the update is clipped (max|delta| scaled by bl / k), probabilities never exceed 1.

Within one minibatch the ups of a device are applied before its downs (the order of the
examples is not modelled); with batch 1 the rule is exact. Needs plain SGD (the pulses are
the update). Slow: it draws batch x BL bits per unit and layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...seeds import seed_for
from .base import Algorithm


@dataclass
class PulseTrainSettings:
    bl: int = 31
    bl_management: bool = True
    update_management: bool = True


class PulseTrains(Algorithm):
    name = "pulse_trains"
    Settings = PulseTrainSettings
    needs_outer = True
    checks = {"bl": {"check": lambda v: 1 <= v <= 1000, "check_msg": "must be in 1..1000"}}

    def bind(self, syn, dev, seed, member_choice=None):
        super().bind(syn, dev, seed, member_choice)
        self.gen = torch.Generator(device=syn.device)
        self.gen.manual_seed(seed_for(seed, "rounding", 1))
        # dw_min per layer: one value per layer's block of flat weights
        self.g = [float(syn.array.dw_min[syn.offsets[i]]) for i in range(len(syn.shapes))]
        return self

    def update(self, dw):
        raise NotImplementedError("pulse_trains updates from (x, delta): Trainer calls "
                                  "update_outer")

    def probabilities(self, x: torch.Tensor, d: torch.Tensor, lr: float, g: float):
        """Bit probabilities (M, B, fan_in), (M, B, fan_out) and train lengths (M, B, 1)."""
        s = self.settings
        x_max = x.abs().amax(dim=2, keepdim=True)
        d_max = d.abs().amax(dim=2, keepdim=True)
        k = lr * x_max * d_max / g
        bl = k.ceil().clamp(1, s.bl) if s.bl_management else torch.full_like(k, float(s.bl))
        scale = torch.sqrt(lr / (g * bl))
        a_d, b_x = scale, scale
        if s.update_management:
            d_eff = torch.where(k > bl, d_max * bl / k.clamp(min=1e-30), d_max)
            ratio = torch.sqrt(x_max.clamp(min=1e-30) / d_eff.clamp(min=1e-30))
            a_d, b_x = scale * ratio, scale / ratio
        p_x = (x.abs() * b_x).clamp_(max=1.0)
        p_d = (d.abs() * a_d).clamp_(max=1.0)
        none = (x_max == 0) | (d_max == 0)
        return p_x.masked_fill(none, 0.0), p_d.masked_fill(none, 0.0), bl

    def coincidences(self, x, d, lr: float, g: float):
        """Up and down pulse counts (M, fan_in, fan_out) over the batch."""
        s = self.settings
        p_x, p_d, bl = self.probabilities(x, d, lr, g)
        m, b, fi = x.shape
        fo = d.shape[2]
        slot = torch.arange(s.bl, device=x.device, dtype=x.dtype).view(1, 1, -1, 1)
        live = slot < bl.unsqueeze(2)  # (M, B, BL, 1): slots beyond an example's BL are off

        def bits(p, v):
            u = torch.rand(m, b, s.bl, p.shape[2], generator=self.gen, device=x.device)
            fire = (u < p.unsqueeze(2)) & live
            pos, neg = fire & (v > 0).unsqueeze(2), fire & (v < 0).unsqueeze(2)
            return torch.cat([pos, neg], dim=3).to(x.dtype).view(m, b * s.bl, -1)

        r = torch.bmm(bits(p_x, x).transpose(1, 2), bits(p_d, d))  # (M, 2 fi, 2 fo)
        down = r[:, :fi, :fo] + r[:, fi:, fo:]  # x delta > 0: the weight steps down
        up = r[:, :fi, fo:] + r[:, fi:, :fo]
        return up, down

    def update_outer(self, xs, deltas, lr: float) -> None:
        syn, arr = self.syn, self.syn.array
        ups, downs = [], []
        for i, (x, d) in enumerate(zip(xs, deltas, strict=True)):
            up, down = self.coincidences(x, d, lr, self.g[i])
            ups.append(up.reshape(-1))
            downs.append(down.reshape(-1))
        for counts, sign in ((torch.cat(ups), 1), (torch.cat(downs), -1)):
            k = counts.nonzero().squeeze(1)
            if k.numel():
                n = counts.index_select(0, k).to(torch.int32) * sign
                self.send(arr, k, n)
                syn.flat.index_copy_(0, k, arr.read(k))


def expected_update(x: torch.Tensor, d: torch.Tensor, lr: float) -> torch.Tensor:
    """-lr sum_b x_b delta_b^T: the update the pulse trains make in expectation (unclipped)."""
    return -lr * torch.bmm(x.transpose(1, 2), d)



