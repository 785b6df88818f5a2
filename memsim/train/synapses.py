"""Synapses: the weights of all layers of all members in one flat tensor, on devices or not.

All weight matrices of all members form one flat ``(M, W)`` tensor, layer-major (layer l is a
contiguous block (M, fan_in, fan_out)), so a training step programs every device in one call.

* :class:`FloatSynapses`: plain numbers (the float baseline, same code path);
* :class:`DeviceArray`: one array of devices holding a weight per flat index through a cell
  (:mod:`memsim.train.cells`), with the pulse primitives every update algorithm uses;
* :class:`DeviceSynapses`: the network's weights on device arrays, changed by an update
  algorithm (:mod:`memsim.train.algorithms`). Biases and BatchNorm stay digital.
"""

from __future__ import annotations

import torch

from ..devices.base import DeviceKind
from ..devices.population import Draws
from ..errors import MemsimError
from ..seeds import seed_for
from .cells import Mapping, ReferenceCell, make_cell, nominal_dw


class Synapses:
    """The flat weight tensor and its per-layer views."""

    def __init__(self, shapes: list[tuple[int, int]], members: int, device,
                 ranges: list[float] | None = None):
        self.shapes = shapes
        self.members = members
        self.offsets = [0]
        for fi, fo in shapes:
            self.offsets.append(self.offsets[-1] + members * fi * fo)
        self.size = self.offsets[-1]  # M * W
        self.device = torch.device(device)
        self.flat = torch.zeros(self.size, device=device)
        self.ranges = ranges
        self.pulses = 0
        self.refreshes = 0
        self.member_pulses = torch.zeros(members, dtype=torch.float64, device=device)
        self.member_refreshes = torch.zeros(members, dtype=torch.float64, device=device)
        self.member_index = self.member_of()
        self.steps = 0

    def layer(self, i: int) -> torch.Tensor:
        fi, fo = self.shapes[i]
        return self.flat[self.offsets[i]:self.offsets[i + 1]].view(self.members, fi, fo)

    def per_weight(self, values: list[float]) -> torch.Tensor:
        """One value per layer spread to every flat weight of the layer."""
        return torch.cat([torch.full((self.offsets[i + 1] - self.offsets[i],), float(v),
                                     device=self.device) for i, v in enumerate(values)])

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

    def pulse_stats(self) -> dict[str, list[float]]:
        """Per member: pulses per weight and per device, mean and max (empty for float)."""
        return {}


class FloatSynapses(Synapses):
    """The float baseline: the weights are plain numbers (clipped to the layer ranges if
    ``clip``, as a BNN's latent weights are)."""

    def __init__(self, shapes, members, device, ranges=None, clip: bool = False):
        super().__init__(shapes, members, device, ranges)
        self.clip = self.per_weight(ranges) if clip and ranges is not None else None

    def update(self, dw: torch.Tensor) -> None:
        self.flat.add_(dw)
        if self.clip is not None:
            torch.maximum(torch.minimum(self.flat, self.clip), -self.clip, out=self.flat)
        self.steps += 1


class DeviceArray:
    """Devices holding one weight per flat index through a cell, with the primitives an update
    algorithm needs: read, program, send pulses, refresh. Devices are laid out (role, weight):
    for a pair, device k is G+ of flat weight k and device k + size its G-."""

    def __init__(self, syn: Synapses, dev: DeviceKind, mapping: Mapping, seed: int,
                 member_choice=None, cell=None):
        self.syn, self.mapping, self.size = syn, mapping, syn.size
        lo, hi = dev.g_range()
        self.g_lo, self.g_hi, self.span = lo, hi, hi - lo
        self.wmax = syn.per_weight(syn.ranges)
        self.cell = cell or make_cell(mapping, lo, hi, self.wmax)
        self.cell.wmax = self.wmax
        per_weight = self.cell.devices
        self.per_weight = per_weight
        choice = None
        if member_choice is not None:  # the device model of each member
            mc = torch.as_tensor(member_choice, device=syn.device)
            choice = mc[syn.member_index].repeat(per_weight)
        self.pop = dev.population((per_weight, self.size), device=syn.device, seed=seed,
                                  choice=choice)
        if not 1 <= mapping.max_pulses <= 127:
            raise MemsimError(f"max_pulses must be in 1..127, not {mapping.max_pulses}")
        if mapping.dw_min is not None:
            self.dw_min = syn.per_weight([mapping.dw_min] * len(syn.shapes))
        elif mapping.nominal_step is None and member_choice is not None and hasattr(
                dev, "model_steps"):  # each member's controller knows only its own model
            steps = torch.as_tensor(dev.model_steps(self.cell.polarities), dtype=self.wmax.dtype,
                                    device=syn.device)
            step = steps[torch.as_tensor(member_choice, device=syn.device)][syn.member_index]
            self.dw_min = nominal_dw(step, self.span, mapping, self.wmax)
        else:
            step = (mapping.nominal_step if mapping.nominal_step is not None
                    else dev.nominal_step(self.cell.polarities))
            self.dw_min = nominal_dw(step, self.span, mapping, self.wmax)
        if not bool((self.dw_min > 0).all()):
            raise MemsimError("the device's nominal step is zero: set mapping.dw_min")
        self.inv_dw = 1.0 / self.dw_min
        self.pulses = 0
        self.refreshes = 0

    def read(self, k: torch.Tensor | None = None) -> torch.Tensor:
        """The weights the devices hold: all of them, or the flat indices ``k``."""
        return self.cell.read(self.pop.g, self.size, k)

    def program(self, w: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        self.pop.program(self.cell.targets(w), mask=mask)

    def send(self, k: torch.Tensor, n: torch.Tensor, steps: int) -> int:
        """Signed pulse counts ``n`` (int32) for flat weights ``k``; returns pulses applied."""
        idx, counts = self.cell.route(k, n, self.size, steps)
        applied = self.pop.apply_sparse(idx, counts)
        self.pulses += applied
        return applied

    def refresh(self, w: torch.Tensor) -> torch.Tensor | None:
        """Re-program saturated weights to ``w`` with free range; returns their mask."""
        budget = self.pop.budget_used()
        if budget is not None:  # a device that counts its pulses: re-form a spent one
            if self.cell.saturated(self.pop.g, self.size) is None:
                return None
            limit = self.mapping.refresh_threshold
            sat = (budget.view(self.per_weight, self.size) > limit).any(dim=0)
        else:
            sat = self.cell.saturated(self.pop.g, self.size)
        if sat is None or not bool(sat.any()):
            return None
        g = self.pop.g.view(self.per_weight, self.size)
        targets = self.cell.targets(w)
        if budget is None:  # only pairs that re-programming frees (|w| at w_max stays put)
            sat &= ((targets - g).abs() > 0.01 * self.span).any(dim=0)
        count = int(sat.sum())
        if not count:
            return None
        self.pop.program(targets, mask=sat.expand(self.per_weight, -1))
        self.refreshes += count
        return sat

    def weight_pulses(self) -> torch.Tensor:
        """Pulses received by the devices of each flat weight (float64)."""
        return self.pop.device_pulses.view(self.per_weight, self.size).double().sum(dim=0)


def symmetry_reference(array: DeviceArray, cycles: int = 200, average: int = 32):
    """Each device's symmetry point: where one up and one down pulse cancel on average. Found
    as a device would find it: from mid-range, alternate single SET and RESET pulses and
    average the conductance over the last ``average`` pairs (the pulse counters then reset:
    this is calibration, not training)."""
    pop = array.pop
    pop.program(torch.full_like(pop.g, (array.g_lo + array.g_hi) / 2))
    acc = torch.zeros_like(pop.g, dtype=torch.float64)
    for c in range(cycles):
        pop.pulse_all("set")
        pop.pulse_all("reset")
        if c >= cycles - average:
            acc += pop.g
    pop.device_pulses.zero_()
    pop.pulses_applied = 0
    return (acc / average).to(pop.g.dtype)


class DeviceSynapses(Synapses):
    """The network's weights on devices, changed only by pulses, as the update algorithm
    decides (``algorithm``: a configured :class:`~memsim.train.algorithms.base.Algorithm`)."""

    def __init__(self, shapes, members, device, dev: DeviceKind, mapping: Mapping, seed: int,
                 member_choice=None, ranges=None, algorithm=None):
        from .algorithms.sgd import SGD  # the default rule

        super().__init__(shapes, members, device, ranges or [mapping.w_max or 1.0] * len(shapes))
        self.mapping = mapping
        self.array = DeviceArray(self, dev, mapping, seed, member_choice)
        self.rounding = Draws(self.device, seed_for(seed, "rounding"))
        self.algorithm = (algorithm or SGD()).bind(self, dev, seed, member_choice)

    # the main array, as the rest of memsim knows it
    @property
    def pop(self):
        return self.array.pop

    @property
    def dw_min(self):
        return self.array.dw_min

    @property
    def cell(self):
        return self.array.cell

    def initialise(self, w0: torch.Tensor) -> None:
        self.algorithm.initialise(w0)
        self.flat.copy_(self.algorithm.weights())

    def update(self, dw: torch.Tensor) -> None:
        self.algorithm.update(dw)
        self.steps += 1
        mp = self.mapping
        if mp.refresh_every and self.steps % mp.refresh_every == 0:
            self.algorithm.refresh()

    def update_outer(self, xs, deltas, lr: float) -> None:
        self.algorithm.update_outer(xs, deltas, lr)
        self.steps += 1
        mp = self.mapping
        if mp.refresh_every and self.steps % mp.refresh_every == 0:
            self.algorithm.refresh()

    def count(self, k: torch.Tensor, counts: torch.Tensor, applied: int) -> None:
        """Book pulses sent for flat weights ``k`` (signed counts) to their members."""
        self.pulses += applied
        if self.members == 1:
            self.member_pulses[0] += applied
        else:
            self.member_pulses.index_add_(0, self.member_index.index_select(0, k),
                                          counts.abs().double())

    def count_refresh(self, sat: torch.Tensor) -> None:
        count = int(sat.sum())
        self.refreshes += count
        self.member_refreshes.index_add_(0, self.member_index[sat],
                                         torch.ones(count, dtype=torch.float64,
                                                    device=sat.device))

    def pulse_stats(self) -> dict[str, list[float]]:
        arrays = self.algorithm.arrays()
        per_weight = sum(a.weight_pulses() for a in arrays)
        per_device = torch.cat([a.pop.device_pulses.view(a.per_weight, -1).double()
                                for a in arrays])  # (devices per weight, M*W)
        m = self.member_index
        out = {"pulses_per_weight_mean": [], "pulses_per_weight_max": [],
               "pulses_per_device_mean": [], "pulses_per_device_max": []}
        for member in range(self.members):
            sel = m == member
            w, d = per_weight[sel], per_device[:, sel]
            out["pulses_per_weight_mean"].append(float(w.mean()))
            out["pulses_per_weight_max"].append(float(w.max()))
            out["pulses_per_device_mean"].append(float(d.mean()))
            out["pulses_per_device_max"].append(float(d.max()))
        return out

    def nonzero_counts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and int32 values of the non-zero pulse counts in ``x`` (a float tensor of
        whole numbers within +-127). Most counts are zero: the int8 counts are scanned as int64
        words (eight at a time), then only the non-zero words are unpacked."""
        size = x.numel()
        if getattr(self, "_n8", None) is None or self._n8.numel() < (size + 7) // 8 * 8:
            self._n8 = torch.zeros((size + 7) // 8 * 8, dtype=torch.int8, device=x.device)
            self._lanes = torch.arange(8, device=x.device)
        n8 = self._n8[:(size + 7) // 8 * 8]
        n8[:size].copy_(x)
        n8[size:].zero_()
        words = n8.view(torch.int64).nonzero().squeeze(1)
        pos = (words.unsqueeze(1) * 8 + self._lanes).reshape(-1)
        vals = n8.index_select(0, pos)
        keep = vals.nonzero().squeeze(1)
        return pos.index_select(0, keep), vals.index_select(0, keep).to(torch.int32)


__all__ = ["DeviceArray", "DeviceSynapses", "FloatSynapses", "ReferenceCell", "Synapses",
           "symmetry_reference"]
