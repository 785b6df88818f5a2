"""Synapse cells: how a weight is stored on devices, and how pulses change it.

All weight matrices of all members form one flat ``(M, W)`` tensor (:class:`Synapses`) so a
training step programs every device in one call. A *cell* maps a weight onto devices:

* :class:`PairCell`: w = w_max (G+ - G-) / (G_max - G_min), two devices per weight;
* :class:`ReferenceCell`: w = w_max (G - G_ref) / ((G_max - G_min) / 2), one device against a
  fixed reference G_ref at mid-range.

A pair raises w by SET on G+ (policy ``set``), by RESET on G- (``reset``, as in the HfOx
weak-RESET study) or by both, splitting the pulses (``split``); each policy is a small
:class:`Policy` strategy (its programming targets, pulse routing and saturation test).

Update rule: the desired change (from SGD or Adam) becomes a signed pulse count per weight,
n = stochastic_round(dw / dw_min) clipped to +-max_pulses, where dw_min is the weight change of
one nominal pulse. Optional refresh re-programs saturated pairs to the same weight with free
range. Biases and BatchNorm stay digital.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..devices.base import DeviceKind
from ..devices.population import Draws
from ..errors import MemsimError
from ..seeds import seed_for


@dataclass
class Mapping:
    kind: str = "pair"
    w_max: float = 1.0
    policy: str = "split"
    dw_min: float | None = None  # weight change per nominal pulse; None: from the device
    max_pulses: int = 8
    refresh_every: int = 0  # steps between saturation checks; 0 = never
    refresh_threshold: float = 0.9  # fraction of the range that counts as saturated


# ------------------------------------------------------------------------ policies


class Policy:
    """How a pair moves its weight: which device gets the pulses, where programming puts the
    pair, and when the pair counts as saturated. ``g`` is the (2, M*W) conductance view."""

    name: str
    polarities: tuple[str, ...]  # the pulse polarities it sends

    def targets(self, w, lo, hi, span, wm):
        raise NotImplementedError

    def route(self, k, n, minus, steps):
        """Flat device indices and signed counts for weight indices ``k`` with counts ``n``
        (``minus``: the G- devices of ``k``)."""
        raise NotImplementedError

    def saturated(self, g, lo, hi, lim):
        raise NotImplementedError


class SetPolicy(Policy):
    """Start low; SET on G+ raises w, SET on G- lowers it."""

    name, polarities = "set", ("set",)

    def targets(self, w, lo, hi, span, wm):
        pos, neg = w.clamp(min=0) * span / wm, (-w).clamp(min=0) * span / wm
        return torch.stack([lo + pos, lo + neg])

    def route(self, k, n, minus, steps):
        return torch.where(n > 0, k, minus), n.abs()

    def saturated(self, g, lo, hi, lim):
        return (g - lo).amax(dim=0) > lim


class ResetPolicy(Policy):
    """Start high; RESET on G- raises w, RESET on G+ lowers it."""

    name, polarities = "reset", ("reset",)

    def targets(self, w, lo, hi, span, wm):
        pos, neg = w.clamp(min=0) * span / wm, (-w).clamp(min=0) * span / wm
        return torch.stack([hi - neg, hi - pos])

    def route(self, k, n, minus, steps):
        return torch.where(n > 0, minus, k), -n.abs()

    def saturated(self, g, lo, hi, lim):
        return (hi - g).amax(dim=0) > lim


class SplitPolicy(Policy):
    """Start at mid-range; the pulses are split between SET on one device and RESET on the
    other. The odd pulse alternates between the devices (by weight and step), so single
    pulses move G+ and G- alike."""

    name, polarities = "split", ("set", "reset")

    def targets(self, w, lo, hi, span, wm):
        mid = (lo + hi) / 2
        return torch.stack([mid + w * span / (2 * wm), mid - w * span / (2 * wm)])

    def route(self, k, n, minus, steps):
        up = n > 0
        mag = n.abs()
        odd = mag % 2
        plus_gets_odd = ((k + steps) % 2 == 0).to(mag.dtype)
        first = mag // 2 + odd * plus_gets_odd
        second = mag - first
        return (torch.cat([k, minus]),
                torch.cat([torch.where(up, first, -first), torch.where(up, -second, second)]))

    def saturated(self, g, lo, hi, lim):
        return ((g - lo).amax(dim=0) > lim) | ((hi - g).amax(dim=0) > lim)


POLICIES: dict[str, Policy] = {p.name: p for p in (SetPolicy(), ResetPolicy(), SplitPolicy())}


# --------------------------------------------------------------------------- cells


class Cell:
    """How a weight is stored on devices: ``devices`` per weight, the weight read from their
    conductances, programming targets, pulse routing and the saturation test."""

    devices: int
    dw_factor: float  # weight change of one nominal pulse, in units of w_max * step / span

    def __init__(self, mapping: Mapping, lo: float, hi: float):
        self.mapping, self.lo, self.hi, self.span = mapping, lo, hi, hi - lo

    @property
    def polarities(self) -> tuple[str, ...]:
        """The pulse polarities this cell sends: what its nominal step should average."""
        raise NotImplementedError

    def read(self, g, size: int, k=None):
        raise NotImplementedError

    def targets(self, w):
        raise NotImplementedError

    def route(self, k, n, size: int, steps: int):
        raise NotImplementedError

    def saturated(self, g, size: int):
        """Weights whose devices need a refresh, or None when the cell never saturates."""
        return None


class ReferenceCell(Cell):
    devices, dw_factor = 1, 2.0

    @property
    def polarities(self):
        return ("set", "reset")

    def read(self, g, size, k=None):
        mid = (self.lo + self.hi) / 2
        scale = 2 * self.mapping.w_max / self.span
        if k is None:
            return (g - mid).mul_(scale)
        return (g.index_select(0, k) - mid).mul_(scale)

    def targets(self, w):
        wm = self.mapping.w_max
        w = w.clamp(-wm, wm)
        return ((self.lo + self.hi) / 2 + w * self.span / (2 * wm)).unsqueeze(0)

    def route(self, k, n, size, steps):
        return k, n


class PairCell(Cell):
    devices, dw_factor = 2, 1.0

    def __init__(self, mapping, lo, hi):
        super().__init__(mapping, lo, hi)
        self.policy = POLICIES[mapping.policy]

    @property
    def polarities(self):
        return self.policy.polarities

    def read(self, g, size, k=None):
        scale = self.mapping.w_max / self.span
        if k is None:
            return (g[:size] - g[size:]).mul_(scale)
        return (g.index_select(0, k) - g.index_select(0, k + size)).mul_(scale)

    def targets(self, w):
        wm = self.mapping.w_max
        return self.policy.targets(w.clamp(-wm, wm), self.lo, self.hi, self.span, wm)

    def route(self, k, n, size, steps):
        return self.policy.route(k, n, k + size, steps)

    def saturated(self, g, size):
        lim = self.mapping.refresh_threshold * self.span
        return self.policy.saturated(g.view(2, size), self.lo, self.hi, lim)


CELLS: dict[str, type[Cell]] = {"pair": PairCell, "reference": ReferenceCell}
MAPPINGS = tuple(CELLS)


def make_cell(mapping: Mapping, lo: float, hi: float) -> Cell:
    return CELLS[mapping.kind](mapping, lo, hi)


def pulse_polarities(mapping: Mapping) -> tuple[str, ...]:
    """The pulse polarities a mapping sends: what its nominal step should average."""
    return make_cell(mapping, 0.0, 1.0).polarities


def nominal_dw(step: float, span: float, mapping: Mapping) -> float:
    """Weight change of one nominal pulse of size ``step`` on a device range ``span``."""
    return mapping.w_max * step / span * CELLS[mapping.kind].dw_factor


# ------------------------------------------------------------------------ synapses


class Synapses:
    """The weights of all layers of all members in one flat tensor, layer-major: layer l is a
    contiguous block (M, fan_in, fan_out), so layer views need no copy and a training step
    programs every weight of every member in one call."""

    def __init__(self, shapes: list[tuple[int, int]], members: int, device):
        self.shapes = shapes
        self.members = members
        self.offsets = [0]
        for fi, fo in shapes:
            self.offsets.append(self.offsets[-1] + members * fi * fo)
        self.size = self.offsets[-1]  # M * W
        self.flat = torch.zeros(self.size, device=device)
        self.pulses = 0
        self.refreshes = 0
        self.member_pulses = torch.zeros(members, dtype=torch.float64, device=device)
        self.member_refreshes = torch.zeros(members, dtype=torch.float64, device=device)

    def layer(self, i: int) -> torch.Tensor:
        fi, fo = self.shapes[i]
        return self.flat[self.offsets[i]:self.offsets[i + 1]].view(self.members, fi, fo)

    def leaves(self) -> list[torch.Tensor]:
        """Per-layer views of the current weights as autograd leaves (fresh each step, sharing
        storage: gradients come per layer with no zero-filled flat gradient to assemble)."""
        return [self.layer(i).detach().requires_grad_(True) for i in range(len(self.shapes))]

    def flat_grad(self, grads: list[torch.Tensor]) -> torch.Tensor:
        if not hasattr(self, "_grad"):
            self._grad = torch.empty_like(self.flat)
        return torch.cat([g.reshape(-1) for g in grads], out=self._grad)

    def member_of(self) -> torch.Tensor:
        """The member index of every flat weight."""
        parts = [torch.arange(self.members, device=self.flat.device).repeat_interleave(fi * fo)
                 for fi, fo in self.shapes]
        return torch.cat(parts)

    def initialise(self, w0: torch.Tensor) -> None:
        self.flat.copy_(w0)

    def update(self, dw: torch.Tensor) -> None:
        raise NotImplementedError


class FloatSynapses(Synapses):
    """The float baseline: the weights are plain numbers (clipped only if ``clip`` is set)."""

    def __init__(self, shapes, members, device, clip: float | None = None):
        super().__init__(shapes, members, device)
        self.clip = clip

    def update(self, dw: torch.Tensor) -> None:
        self.flat.add_(dw)
        if self.clip is not None:
            self.flat.clamp_(-self.clip, self.clip)



class DeviceSynapses(Synapses):
    """Weights stored on a population of devices and changed only by pulses.

    Devices are laid out (role, weight): for a pair, device k is G+ of flat weight k and
    device k + M*W its G-."""

    def __init__(self, shapes, members, device, dev: DeviceKind, mapping: Mapping, seed: int,
                 member_choice=None):
        super().__init__(shapes, members, device)
        self.mapping = mapping
        lo, hi = dev.g_range()
        self.g_lo, self.g_hi = lo, hi
        self.span = hi - lo
        self.cell = make_cell(mapping, lo, hi)
        per_weight = self.cell.devices
        self.per_weight = per_weight
        choice = None
        if member_choice is not None:  # the device model of each member
            mc = torch.as_tensor(member_choice, device=device)
            choice = mc[self.member_of()].repeat(per_weight)
        self.pop = dev.population((per_weight, self.size), device=device, seed=seed,
                                  choice=choice)
        if not 1 <= mapping.max_pulses <= 127:
            raise MemsimError(f"max_pulses must be in 1..127, not {mapping.max_pulses}")
        if mapping.dw_min is not None:
            self.dw_min = mapping.dw_min
        else:
            self.dw_min = nominal_dw(dev.nominal_step(self.cell.polarities), self.span,
                                     mapping)
        if not self.dw_min > 0:
            raise MemsimError("the device's nominal step is zero: set mapping.dw_min")
        self.member_index = self.member_of()
        self.rounding = Draws(torch.device(device), seed_for(seed, "rounding"))
        self.steps = 0

    def _read(self, k: torch.Tensor | None = None) -> None:
        """Weights from conductances: all of them, or only the flat weight indices ``k``."""
        if k is None:
            self.flat.copy_(self.cell.read(self.pop.g, self.size))
        else:
            self.flat.index_copy_(0, k, self.cell.read(self.pop.g, self.size, k))

    def initialise(self, w0: torch.Tensor) -> None:
        self.pop.program(self.cell.targets(w0))
        self._read()

    def update(self, dw: torch.Tensor) -> None:
        mp = self.mapping
        u = self.rounding.rounding_uniform(dw.numel())
        # stochastic rounding of dw / dw_min: n = floor(dw / dw_min + u)
        x = torch.add(u, dw, alpha=1 / self.dw_min).floor_().clamp_(-mp.max_pulses,
                                                                    mp.max_pulses)
        k, counts = self._nonzero(x)
        if k.numel():
            applied = self._program(k, counts)
            self.pulses += applied
            if self.members == 1:
                self.member_pulses[0] += applied
            else:
                self.member_pulses.index_add_(0, self.member_index.index_select(0, k),
                                              counts.abs().double())
            self._read(k)
        self.steps += 1
        if mp.refresh_every and self.steps % mp.refresh_every == 0:
            self._refresh()

    def _nonzero(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and int32 values of the non-zero pulse counts. Most counts are zero: the
        int8 counts are scanned as int64 words (eight at a time), then only the non-zero
        words are unpacked."""
        size = x.numel()
        if getattr(self, "_n8", None) is None:
            self._n8 = torch.zeros((size + 7) // 8 * 8, dtype=torch.int8, device=x.device)
            self._lanes = torch.arange(8, device=x.device)
        self._n8[:size].copy_(x)
        words = self._n8.view(torch.int64).nonzero().squeeze(1)
        pos = (words.unsqueeze(1) * 8 + self._lanes).reshape(-1)
        vals = self._n8.index_select(0, pos)
        keep = vals.nonzero().squeeze(1)
        return pos.index_select(0, keep), vals.index_select(0, keep).to(torch.int32)

    def _program(self, k: torch.Tensor, n: torch.Tensor) -> int:
        """Send the pulses for flat weights ``k`` with signed counts ``n``."""
        idx, counts = self.cell.route(k, n, self.size, self.steps)
        return self.pop.apply_sparse(idx, counts)

    def _refresh(self) -> None:
        sat = self.cell.saturated(self.pop.g, self.size)
        if sat is None or not bool(sat.any()):
            return
        g = self.pop.g.view(self.per_weight, self.size)
        targets = self.cell.targets(self.flat)
        # only pairs that re-programming actually frees (a |w| at w_max stays where it is)
        sat &= ((targets - g).abs() > 0.01 * self.span).any(dim=0)
        count = int(sat.sum())
        if count:
            self.pop.program(targets, mask=sat.expand(self.per_weight, -1))
            self.refreshes += count
            self.member_refreshes.index_add_(
                0, self.member_index[sat], torch.ones(count, dtype=torch.float64,
                                                      device=sat.device))
            self._read()
