"""``tiki_taka``: two device arrays per weight (Gokmen & Haensch 2020; "TTv2" with a digital
transfer buffer, 2021; the analog kit's transfer compounds).

* A, the fast array: one device per weight against a reference set at that device's
  *symmetry point* (where an up and a down pulse cancel), so A reads 0 there and drifts back to
  0 under balanced pulses. It receives the gradient pulses (stochastic rounding of
  fast_lr * dw / dw_min_A).
* C, the slow array: the network's weights (w = C + gamma * A; gamma = 0 by default, A hidden).
* Transfer: every ``transfer_every`` steps, the next ``n_reads`` columns (one input unit's
  weights to all outputs) of every layer are read from A into a digital buffer H (in units of
  C's dw_min): H += transfer_lr * A / dw_min_C; where |H| >= 1, n = trunc(H) (at most
  ``max_transfer_pulses``) pulses go to C and H -= n. Columns are visited in turn.
* ``reset_prob`` (the kit's with_reset_prob, default 0): each weight of a column just read is
  re-programmed to its symmetry point (A = 0) with this probability. Without it, A relies on
  its own drift back to the symmetry point; a device without that drift (a linear, symmetric
  one) makes A and C a frictionless double integrator, which oscillates: use 1 there.

A's noisy, asymmetric updates are low-pass filtered before they reach C: what makes the
algorithm tolerate devices whose up and down steps do not match.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ...seeds import seed_for
from ..cells import ReferenceCell
from ..synapses import DeviceArray, symmetry_reference
from .base import Algorithm


@dataclass
class TikiTakaSettings:
    transfer_every: int = 1
    n_reads: int = 1
    transfer_lr: float = 1.0
    fast_lr: float = 1.0
    gamma: float = 0.0
    max_transfer_pulses: int = 1
    reset_prob: float = 0.0


positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}


class TikiTaka(Algorithm):
    name = "tiki_taka"
    Settings = TikiTakaSettings
    checks = {"transfer_every": positive, "n_reads": positive, "transfer_lr": positive,
              "fast_lr": positive, "gamma": {"check": lambda v: v >= 0,
                                             "check_msg": "must be >= 0"},
              "max_transfer_pulses": {"check": lambda v: 1 <= v <= 127,
                                      "check_msg": "must be in 1..127"},
              "reset_prob": {"check": lambda v: 0 <= v <= 1, "check_msg": "must be in [0, 1]"}}

    def bind(self, syn, dev, seed, member_choice=None):
        super().bind(syn, dev, seed, member_choice)
        fast_map = replace(syn.mapping, kind="reference")
        lo, hi = syn.array.g_lo, syn.array.g_hi
        cell = ReferenceCell(fast_map, lo, hi)
        self.fast = DeviceArray(syn, dev, fast_map, seed_for(seed, "device", 1), member_choice,
                                cell=cell)
        cell.reference = symmetry_reference(self.fast)
        self.buffer = torch.zeros(syn.size, device=syn.device)
        self.columns = [0] * len(syn.shapes)
        self.gen = torch.Generator(device=syn.device).manual_seed(seed_for(seed, "rounding", 2))
        return self

    def arrays(self):
        return [self.syn.array, self.fast]

    def initialise(self, w0):
        self.syn.array.program(w0)
        self.fast.program(torch.zeros_like(w0))

    def weights(self):
        w = self.syn.array.read()
        if self.settings.gamma:
            w = w + self.settings.gamma * self.fast.read()
        return w

    def update(self, dw):
        s, syn, fast = self.settings, self.syn, self.fast
        mp = syn.mapping.max_pulses
        x = self.stochastic_round(torch.mul(dw, fast.inv_dw).mul_(s.fast_lr)).clamp_(-mp, mp)
        k, counts = syn.nonzero_counts(x)
        if k.numel():
            self.send(fast, k, counts)
            if s.gamma:
                syn.flat.index_copy_(0, k, self._weights_at(k))
        if (syn.steps + 1) % s.transfer_every == 0:
            self.transfer()

    def _weights_at(self, k):
        w = self.syn.array.read(k)
        if self.settings.gamma:
            w = w + self.settings.gamma * self.fast.read(k)
        return w

    def slow_target(self) -> torch.Tensor:
        """What C must hold for the network's weights to stay put: w - gamma A."""
        if not self.settings.gamma:
            return self.syn.flat
        return self.syn.flat - self.settings.gamma * self.fast.read()

    def next_columns(self) -> torch.Tensor:
        """Flat indices of the next ``n_reads`` columns of every layer (all members); a layer
        with fewer columns reads each once (a column read twice would be booked twice)."""
        syn, parts = self.syn, []
        for i, (fi, fo) in enumerate(syn.shapes):
            cols = (self.columns[i] + torch.arange(min(self.settings.n_reads, fi))) % fi
            self.columns[i] = int(cols[-1] + 1) % fi
            m = torch.arange(syn.members)
            idx = (syn.offsets[i] + m[:, None, None] * fi * fo + cols[None, :, None] * fo
                   + torch.arange(fo)[None, None, :])
            parts.append(idx.reshape(-1))
        return torch.cat(parts).to(syn.device)

    def transfer(self) -> None:
        s, syn, slow = self.settings, self.syn, self.syn.array
        idx = self.next_columns()
        h = self.buffer.index_select(0, idx)
        h.add_(self.fast.read(idx) * slow.inv_dw.index_select(0, idx), alpha=s.transfer_lr)
        if s.reset_prob > 0:
            pick = idx
            if s.reset_prob < 1:
                keep = torch.rand(idx.numel(), generator=self.gen, device=idx.device)
                pick = idx[keep < s.reset_prob]
            mask = torch.zeros(syn.size, dtype=torch.bool, device=syn.device)
            mask[pick] = True
            self.fast.program(torch.zeros(syn.size, device=syn.device), mask=mask.unsqueeze(0))
        n = h.trunc().clamp_(-s.max_transfer_pulses, s.max_transfer_pulses)
        self.buffer.index_copy_(0, idx, h - n)
        hit = n.nonzero().squeeze(1)
        if hit.numel():
            self.send(slow, idx.index_select(0, hit), n.index_select(0, hit).to(torch.int32))
        # C moved where pulses went; with gamma the read columns' A moved too (reset)
        changed = idx if s.gamma else idx.index_select(0, hit)
        if changed.numel():
            syn.flat.index_copy_(0, changed, self._weights_at(changed))
