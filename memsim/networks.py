"""Networks whose weights live on devices, and the update rule that programs them.

Every tensor has a leading *member* dimension M: one network is M = 1, an ensemble of networks
trained in one vectorized pass is M > 1. All weight matrices of all members form one flat
``(M, W)`` tensor (:class:`Synapses`) so a training step programs every device in one call.

Weight mapping (:class:`DeviceSynapses`):

* ``pair``: w = w_max (G+ - G-) / (G_max - G_min), two devices per weight;
* ``reference``: w = w_max (G - G_ref) / ((G_max - G_min) / 2), one device against a fixed
  reference G_ref at mid-range.

Update rule: the desired change (from SGD or Adam) becomes a signed pulse count per weight,
n = stochastic_round(dw / dw_min) clipped to +-max_pulses, where dw_min is the weight change of
one nominal pulse. A pair raises w by SET on G+ (policy ``set``), by RESET on G- (``reset``, as
in the HfOx weak-RESET study), or by both, splitting the pulses (``split``). Optional refresh
re-programs saturated pairs to the same weight with free range. Biases and BatchNorm stay
digital.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .devices import Device
from .errors import MemsimError
from .populations import Draws

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
POLICIES = ("set", "reset", "split")
MAPPINGS = ("pair", "reference")


@dataclass
class Mapping:
    kind: str = "pair"
    w_max: float = 1.0
    policy: str = "split"
    dw_min: float | None = None  # weight change per nominal pulse; None: from the device
    max_pulses: int = 8
    refresh_every: int = 0  # steps between saturation checks; 0 = never
    refresh_threshold: float = 0.9  # fraction of the range that counts as saturated


@dataclass
class NetworkSpec:
    kind: str = "mlp"  # mlp or bnn
    hidden: tuple[int, ...] = (100,)
    activation: str = "relu"

    def sizes(self, n_in: int, n_out: int) -> list[int]:
        return [n_in, *self.hidden, n_out]


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


def pulse_polarities(mapping: Mapping) -> tuple[str, ...]:
    """The pulse polarities a mapping sends: what its nominal step should average."""
    if mapping.kind == "reference" or mapping.policy == "split":
        return ("set", "reset")
    return (mapping.policy,)


def nominal_dw(step: float, span: float, mapping: Mapping) -> float:
    """Weight change of one nominal pulse of size ``step`` on a device range ``span``."""
    return mapping.w_max * step / span * (1 if mapping.kind == "pair" else 2)


class DeviceSynapses(Synapses):
    """Weights stored on a population of devices and changed only by pulses.

    Devices are laid out (role, weight): for a pair, device k is G+ of flat weight k and
    device k + M*W its G-."""

    def __init__(self, shapes, members, device, dev: Device, mapping: Mapping, seed: int,
                 member_choice=None):
        super().__init__(shapes, members, device)
        self.mapping = mapping
        per_weight = 2 if mapping.kind == "pair" else 1
        self.per_weight = per_weight
        choice = None
        if member_choice is not None:  # the device model of each member
            mc = torch.as_tensor(member_choice, device=device)
            choice = mc[self.member_of()].repeat(per_weight)
        self.pop = dev.population((per_weight, self.size), device=device, seed=seed,
                                  choice=choice)
        lo, hi = dev.g_range()
        self.g_lo, self.g_hi = lo, hi
        self.span = hi - lo
        if not 1 <= mapping.max_pulses <= 127:
            raise MemsimError(f"max_pulses must be in 1..127, not {mapping.max_pulses}")
        if mapping.dw_min is not None:
            self.dw_min = mapping.dw_min
        else:
            self.dw_min = nominal_dw(dev.nominal_step(pulse_polarities(mapping)), self.span,
                                     mapping)
        if not self.dw_min > 0:
            raise MemsimError("the device's nominal step is zero: set mapping.dw_min")
        self.member_index = self.member_of()
        self.rounding = Draws(torch.device(device), int(seed) + 1)
        self.steps = 0

    # -- mapping between weights and conductances
    def _read(self, k: torch.Tensor | None = None) -> None:
        """Weights from conductances: all of them, or only the flat weight indices ``k``."""
        scale = self.mapping.w_max / self.span
        mid = (self.g_lo + self.g_hi) / 2
        g = self.pop.g
        if k is None:
            if self.per_weight == 2:
                torch.sub(g[:self.size], g[self.size:], out=self.flat).mul_(scale)
            else:
                self.flat.copy_(g).sub_(mid).mul_(2 * scale)
            return
        if self.per_weight == 2:
            new = (g.index_select(0, k) - g.index_select(0, k + self.size)).mul_(scale)
        else:
            new = (g.index_select(0, k) - mid).mul_(2 * scale)
        self.flat.index_copy_(0, k, new)

    def _targets(self, w: torch.Tensor) -> torch.Tensor:
        """Conductances (per_weight, M*W) that represent ``w`` with room for the policy."""
        wm, lo, hi, span = self.mapping.w_max, self.g_lo, self.g_hi, self.span
        w = w.clamp(-wm, wm)
        if self.per_weight == 1:
            return ((lo + hi) / 2 + w * span / (2 * wm)).unsqueeze(0)
        pos, neg = w.clamp(min=0) * span / wm, (-w).clamp(min=0) * span / wm
        if self.mapping.policy == "set":  # start low: SET raises either device
            return torch.stack([lo + pos, lo + neg])
        if self.mapping.policy == "reset":  # start high: RESET lowers either device
            return torch.stack([hi - neg, hi - pos])
        mid = (lo + hi) / 2
        return torch.stack([mid + w * span / (2 * wm), mid - w * span / (2 * wm)])

    def initialise(self, w0: torch.Tensor) -> None:
        self.pop.program(self._targets(w0))
        self._read()

    # -- the update rule
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
        if self.per_weight == 1:
            return self.pop.apply_sparse(k, n)
        up = n > 0
        mag = n.abs()
        minus = k + self.size
        policy = self.mapping.policy
        if policy == "set":
            return self.pop.apply_sparse(torch.where(up, k, minus), mag)
        if policy == "reset":
            return self.pop.apply_sparse(torch.where(up, minus, k), -mag)
        # split: the odd pulse alternates between the devices (by weight and step), so single
        # pulses move G+ and G- alike
        odd = mag % 2
        plus_gets_odd = ((k + self.steps) % 2 == 0).to(mag.dtype)
        first = mag // 2 + odd * plus_gets_odd
        second = mag - first
        idx = torch.cat([k, minus])
        counts = torch.cat([torch.where(up, first, -first), torch.where(up, -second, second)])
        return self.pop.apply_sparse(idx, counts)

    def _refresh(self) -> None:
        if self.per_weight == 1:
            return
        g = self.pop.g.view(2, self.size)
        lim = self.mapping.refresh_threshold * self.span
        if self.mapping.policy == "set":
            sat = (g - self.g_lo).amax(dim=0) > lim
        elif self.mapping.policy == "reset":
            sat = (self.g_hi - g).amax(dim=0) > lim
        else:
            sat = ((g - self.g_lo).amax(dim=0) > lim) | ((self.g_hi - g).amax(dim=0) > lim)
        if not bool(sat.any()):
            return
        targets = self._targets(self.flat)
        # only pairs that re-programming actually frees (a |w| at w_max stays where it is)
        sat &= ((targets - g).abs() > 0.01 * self.span).any(dim=0)
        count = int(sat.sum())
        if count:
            self.pop.program(targets, mask=sat.expand(2, -1))
            self.refreshes += count
            self.member_refreshes.index_add_(
                0, self.member_index[sat], torch.ones(count, dtype=torch.float64,
                                                      device=sat.device))
            self._read()


# ------------------------------------------------------------------------ networks


def _sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 and the straight-through (hardtanh) gradient."""
    hard = x.clamp(-1, 1)
    return hard + (torch.where(x >= 0, 1.0, -1.0) - hard).detach()


class Network:
    """An MLP or a binarized network (BNN) for M members at once."""

    def __init__(self, spec: NetworkSpec, n_in: int, n_out: int, synapses_factory,
                 members: int, device, seeds: list[int], init_scale: float = 1.0):
        if spec.kind not in ("mlp", "bnn"):
            raise MemsimError(f"unknown network kind {spec.kind!r}; use mlp or bnn")
        if spec.kind == "mlp" and spec.activation not in ACTIVATIONS:
            raise MemsimError(f"unknown activation {spec.activation!r}")
        self.spec = spec
        self.members = members
        self.sizes = spec.sizes(n_in, n_out)
        shapes = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        self.syn: Synapses = synapses_factory(shapes)
        self.digital: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        self.bn: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.running: list[tuple[torch.Tensor, torch.Tensor]] = []
        for fo in self.sizes[1:]:
            if spec.kind == "mlp":
                b = torch.zeros(members, 1, fo, device=device, requires_grad=True)
                self.biases.append(b)
                self.digital.append(b)
            else:
                gamma = torch.ones(members, 1, fo, device=device, requires_grad=True)
                beta = torch.zeros(members, 1, fo, device=device, requires_grad=True)
                self.bn.append((gamma, beta))
                self.digital += [gamma, beta]
                self.running.append((torch.zeros(members, 1, fo, device=device),
                                     torch.ones(members, 1, fo, device=device)))
        self.syn.initialise(self.initial_weights(seeds, init_scale, device))
        self.training = True

    def initial_weights(self, seeds, scale, device) -> torch.Tensor:
        """Uniform(+-scale/sqrt(fan_in)) per layer (PyTorch's Linear default), one seeded
        generator per member: a member's start does not depend on the ensemble around it.
        Returned in the synapses' flat layer-major layout."""
        per_member = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed))
            layers = []
            for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True):
                bound = scale / math.sqrt(fi)
                layers.append((torch.rand(fi * fo, generator=gen) * 2 - 1) * bound)
            per_member.append(layers)
        blocks = [torch.stack([layers[i] for layers in per_member]).reshape(-1)
                  for i in range(len(self.sizes) - 1)]
        return torch.cat(blocks).to(device)

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor] | None = None
                ) -> torch.Tensor:
        """x: (M, B, n_in) -> logits (M, B, n_out); ``weights`` default to the synapses'."""
        last = len(self.sizes) - 2
        h = x
        for i in range(last + 1):
            w = self.syn.layer(i) if weights is None else weights[i]
            if self.spec.kind == "mlp":
                h = torch.baddbmm(self.biases[i], h, w)
                if i < last:
                    h = ACTIVATIONS[self.spec.activation](h)
            else:
                h = torch.bmm(h, _sign(w))
                h = self._batchnorm(i, h)
                if i < last:
                    h = _sign(h)
        return h

    def _batchnorm(self, i, h, eps=1e-5, momentum=0.1):
        gamma, beta = self.bn[i]
        rmean, rvar = self.running[i]
        if self.training:
            mean = h.mean(dim=1, keepdim=True)
            var = h.var(dim=1, unbiased=False, keepdim=True)
            with torch.no_grad():
                rmean.lerp_(mean, momentum)
                rvar.lerp_(var, momentum)
        else:
            mean, var = rmean, rvar
        return (h - mean) * torch.rsqrt(var + eps) * gamma + beta

    def member_losses(self, x: torch.Tensor, y: torch.Tensor,
                      weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Each member's mean cross-entropy on its own batch: (M,). Their sum is the training
        objective, so members never share a gradient."""
        logits = self.forward(x, weights)
        return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1)

    def gradients(self, x: torch.Tensor, y: torch.Tensor):
        """(per-member losses, flat weight gradient, gradients of the digital parameters)."""
        leaves = self.syn.leaves()
        losses = self.member_losses(x, y, leaves)
        grads = torch.autograd.grad(losses.sum(), [*leaves, *self.digital])
        n = len(leaves)
        return losses.detach(), self.syn.flat_grad(grads[:n]), list(grads[n:])

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 2500) -> torch.Tensor:
        """Test accuracy per member (same inputs for every member)."""
        self.training = False
        correct = torch.zeros(self.members, device=x.device, dtype=torch.float64)
        for s in range(0, len(x), chunk):
            xb = x[s:s + chunk].unsqueeze(0).expand(self.members, -1, -1)
            pred = self.forward(xb).argmax(dim=2)
            correct += (pred == y[s:s + chunk].unsqueeze(0)).sum(dim=1)
        self.training = True
        return correct / len(x)


# ------------------------------------------------------------------------ optimizers


class Optimizer:
    """SGD or Adam that *proposes* weight changes: digital parameters take them directly,
    synapses receive them as the desired update for the device rule."""

    def __init__(self, net: Network, kind: str = "sgd", lr: float = 0.1,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        if kind not in ("sgd", "adam"):
            raise MemsimError(f"unknown optimizer {kind!r}; use sgd or adam")
        self.net, self.kind, self.lr, self.betas, self.eps = net, kind, lr, betas, eps
        self.t = 0
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self, weight_grad: torch.Tensor, digital_grads: list[torch.Tensor]) -> None:
        self.t += 1
        self.net.syn.update(self._delta(-1, weight_grad))
        for i, (p, g) in enumerate(zip(self.net.digital, digital_grads, strict=True)):
            p.add_(self._delta(i, g))

    def _delta(self, key: int, g: torch.Tensor) -> torch.Tensor:
        if self.kind == "sgd":
            return g.mul_(-self.lr)  # gradients are fresh each step: reuse their memory
        if key not in self.state:
            self.state[key] = (torch.zeros_like(g), torch.zeros_like(g))
        m, v = self.state[key]
        b1, b2 = self.betas
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        corr1, corr2 = 1 - b1**self.t, 1 - b2**self.t
        return m.div(v.div(corr2).sqrt_().add_(self.eps)).mul_(-self.lr / corr1)
