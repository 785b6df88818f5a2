"""Synapse cells: how a weight is stored on devices, and how pulses change it.

A *cell* maps a weight onto devices (the synapses of :mod:`memsim.train.synapses` hold many):

* :class:`PairCell`: w = w_max (G+ - G-) / (G_max - G_min), two devices per weight;
* :class:`ReferenceCell`: w = w_max (G - G_ref) / ((G_max - G_min) / 2), one device against a
  fixed reference G_ref at mid-range.

A pair raises w by SET on G+ (policy ``set``), by RESET on G- (``reset``, as in the HfOx
weak-RESET study) or by both, splitting the pulses (``split``); each policy is a small
:class:`Policy` strategy (its programming targets, pulse routing and saturation test).

The weight range w_max is set per layer (:func:`layer_ranges`); dw_min, the weight change of
one nominal pulse, follows it (:func:`nominal_dw`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Mapping:
    kind: str = "pair"
    w_max: float | None = None  # None: per layer, range_std x the init std (layer_ranges)
    range_std: float = 12.0  # measured on TiOx: see layer_ranges
    policy: str = "split"
    dw_min: float | None = None  # weight change per nominal pulse; None: from the device
    nominal_step: float | None = None  # the device step dw_min derives from; None: the device's
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


def _take(t, k):
    """``t`` (a float or a per-weight tensor) at flat weight indices ``k`` (None: all)."""
    return t if k is None or not isinstance(t, torch.Tensor) else t.index_select(0, k)


class Cell:
    """How a weight is stored on devices: ``devices`` per weight, the weight read from their
    conductances, programming targets, pulse routing and the saturation test.

    ``wmax`` is the weight range, a float or one value per flat weight (per-layer ranges)."""

    devices: int
    dw_factor: float  # weight change of one nominal pulse, in units of w_max * step / span

    def __init__(self, mapping: Mapping, lo: float, hi: float, wmax=None):
        self.mapping, self.lo, self.hi, self.span = mapping, lo, hi, hi - lo
        self.wmax = mapping.w_max if wmax is None else wmax

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

    def _clamp(self, w):
        wm = self.wmax
        return w.clamp(-wm, wm) if not isinstance(wm, torch.Tensor) else \
            torch.maximum(torch.minimum(w, wm), -wm)


class ReferenceCell(Cell):
    """One device against a fixed reference: mid-range by default, or any conductance per
    device (``reference``, e.g. each device's symmetry point for Tiki-Taka's fast array)."""

    devices, dw_factor = 1, 2.0

    def __init__(self, mapping, lo, hi, wmax=None, reference=None):
        super().__init__(mapping, lo, hi, wmax)
        self.reference = (lo + hi) / 2 if reference is None else reference

    @property
    def polarities(self):
        return ("set", "reset")

    def read(self, g, size, k=None):
        scale = 2 * _take(self.wmax, k) / self.span
        return (_take(g, k) - _take(self.reference, k)) * scale

    def targets(self, w):
        w = self._clamp(w)
        return (self.reference + w * self.span / (2 * self.wmax)).unsqueeze(0)

    def route(self, k, n, size, steps):
        return k, n


class PairCell(Cell):
    devices, dw_factor = 2, 1.0

    def __init__(self, mapping, lo, hi, wmax=None):
        super().__init__(mapping, lo, hi, wmax)
        self.policy = POLICIES[mapping.policy]

    @property
    def polarities(self):
        return self.policy.polarities

    def read(self, g, size, k=None):
        scale = _take(self.wmax, k) / self.span
        if k is None:
            return (g[:size] - g[size:]) * scale
        return (g.index_select(0, k) - g.index_select(0, k + size)) * scale

    def targets(self, w):
        return self.policy.targets(self._clamp(w), self.lo, self.hi, self.span, self.wmax)

    def route(self, k, n, size, steps):
        return self.policy.route(k, n, k + size, steps)

    def saturated(self, g, size):
        lim = self.mapping.refresh_threshold * self.span
        return self.policy.saturated(g.view(2, size), self.lo, self.hi, lim)


CELLS: dict[str, type[Cell]] = {"pair": PairCell, "reference": ReferenceCell}
MAPPINGS = tuple(CELLS)


def make_cell(mapping: Mapping, lo: float, hi: float, wmax=None) -> Cell:
    return CELLS[mapping.kind](mapping, lo, hi, wmax)


def pulse_polarities(mapping: Mapping) -> tuple[str, ...]:
    """The pulse polarities a mapping sends: what its nominal step should average."""
    return make_cell(mapping, 0.0, 1.0, 1.0).polarities


def nominal_dw(step: float, span: float, mapping: Mapping, w_max=None):
    """Weight change of one nominal pulse of size ``step`` on a device range ``span`` (for the
    weight range ``w_max``: a float or a per-weight tensor; default the mapping's)."""
    w_max = mapping.w_max if w_max is None else w_max
    return w_max * (step / span * CELLS[mapping.kind].dw_factor)


def layer_ranges(mapping: Mapping, fan_ins: list[int], init_scale: float = 1.0
                 ) -> list[float]:
    """The weight range w_max of each layer (``fan_ins``: its inputs; a conv layer's are
    C_in k k): the mapping's number where it pins one, else ``range_std`` standard
    deviations of the layer's initial weights. Those are Uniform(+-init_scale /
    sqrt(fan_in)), std init_scale / sqrt(3 fan_in): the range follows the layer, so a pulse is
    a similar fraction of every layer's weights. The default 12 was measured: 784-100-10 MLP
    on the TiOx 1.5 V table, mixed precision, full MNIST, 10 epochs, seed 0, final test
    accuracy 89.5 / 92.1 / 94.0 / 94.7 / 95.4 / 95.5 / 95.3 % for 2.5 / 4 / 6 / 8 / 12 / 16 /
    24 standard deviations (94.4 % with w_max = 1 for every layer): a narrow range clips the
    weights, a wide one wastes the device's few levels."""
    if mapping.w_max is not None:
        return [float(mapping.w_max)] * len(fan_ins)
    return [mapping.range_std * init_scale / math.sqrt(3 * fi) for fi in fan_ins]
