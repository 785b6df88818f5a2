"""Networks whose weights live on synapses (:mod:`memsim.train.cells`): MLPs, binarized
networks (BNN: sign weights and activations, BatchNorm, straight-through estimator) and
their convolutional versions (CNN, BCNN: 'same' convolutions and 2x2 max pooling, VGG style).
Every tensor has a leading *member* dimension M: one network is M = 1, an ensemble trained in one
vectorized pass is M > 1."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import MemsimError
from ..seeds import seed_for
from .periphery import Noise, Periphery, analog_linear
from .synapses import Synapses

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
KINDS = ("mlp", "bnn", "cnn", "bcnn")
POOL = "pool"


@dataclass
class Layer:
    """One weight layer: a conv layer's weights are a (C_in k k, C_out) matrix, so every layer
    is a (fan_in, fan_out) block of the synapses and the cells and update algorithms serve
    conv and linear layers alike."""

    kind: str  # conv or linear
    fan_in: int
    fan_out: int
    pool: bool = False  # 2x2 max pooling after this conv layer


@dataclass
class NetworkSpec:
    kind: str = "mlp"  # mlp, bnn (binarized MLP), cnn or bcnn (binarized CNN)
    hidden: tuple[int, ...] = (100,)
    activation: str = "relu"
    conv: tuple = ()  # conv nets: output channels of each conv layer, "pool" for 2x2 max pool
    kernel: int = 3

    @property
    def binarized(self) -> bool:
        return self.kind in ("bnn", "bcnn")

    @property
    def convolutional(self) -> bool:
        return self.kind in ("cnn", "bcnn")

    def sizes(self, n_in: int, n_out: int) -> list[int]:
        return [n_in, *self.hidden, n_out]

    def to_doc(self) -> dict:
        """The settings as a spec writes them (conv settings only for conv nets)."""
        doc = {"kind": self.kind, "hidden": list(self.hidden), "activation": self.activation}
        if self.convolutional:
            doc.update(conv=list(self.conv), kernel=self.kernel)
        return doc

    def layers(self, n_in: int, n_out: int) -> list[Layer]:
        """The weight layers for ``n_in`` inputs (a conv net: a square one-channel image)."""
        if not self.convolutional:
            sizes = self.sizes(n_in, n_out)
            return [Layer("linear", a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        side = image_side(n_in)
        out, channels = [], 1
        for entry in self.conv:
            if entry == POOL:
                if not out or out[-1].kind != "conv" or out[-1].pool:
                    raise MemsimError("'pool' must follow a conv layer")
                if side < 2:
                    raise MemsimError(f"too many pools for {image_side(n_in)}-pixel images")
                out[-1].pool = True
                side //= 2
            else:
                out.append(Layer("conv", channels * self.kernel**2, int(entry)))
                channels = int(entry)
        sizes = [channels * side * side, *self.hidden, n_out]
        return out + [Layer("linear", a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


def image_side(n_in: int) -> int:
    side = math.isqrt(n_in)
    if side * side != n_in:
        raise MemsimError(f"a conv network needs square one-channel images, not {n_in} inputs")
    return side

# ------------------------------------------------------------------------ networks


def _sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 and the straight-through (hardtanh) gradient."""
    hard = x.clamp(-1, 1)
    return hard + (torch.where(x >= 0, 1.0, -1.0) - hard).detach()


def conv_members(h: torch.Tensor, w: torch.Tensor, kernel: int) -> torch.Tensor:
    """Each member's 'same' convolution in one grouped call: h (M, B, C, H, W), w the layer's
    weight matrix (M, C k k, O) with rows ordered (c, kh, kw) -> (M, B, O, H, W)."""
    m, b, c, hh, ww = h.shape
    o = w.shape[2]
    x = h.transpose(0, 1).reshape(b, m * c, hh, ww)
    weight = w.transpose(1, 2).reshape(m * o, c, kernel, kernel)
    y = F.conv2d(x, weight, padding=kernel // 2, groups=m)
    return y.view(b, m, o, hh, ww).transpose(0, 1)


def pool_members(h: torch.Tensor) -> torch.Tensor:
    m, b = h.shape[:2]
    y = F.max_pool2d(h.flatten(0, 1), 2)
    return y.view(m, b, *y.shape[1:])


class Network:
    """An MLP, a binarized MLP (BNN), a CNN or a binarized CNN for M members at once."""

    def __init__(self, spec: NetworkSpec, n_in: int, n_out: int, synapses_factory,
                 members: int, device, seeds: list[int], init_scale: float = 1.0,
                 periphery: Periphery | None = None):
        if spec.kind not in KINDS:
            raise MemsimError(f"unknown network kind {spec.kind!r}; use {', '.join(KINDS)}")
        if not spec.binarized and spec.activation not in ACTIVATIONS:
            raise MemsimError(f"unknown activation {spec.activation!r}")
        if periphery is not None and (spec.binarized or spec.convolutional):
            raise MemsimError("periphery: modelled for the linear layers of an mlp only")
        self.spec = spec
        self.periphery = periphery
        self.noise = Noise(seeds, device) if periphery is not None else None
        self.members = members
        self.n_in = n_in
        self.layers = spec.layers(n_in, n_out)
        shapes = [(la.fan_in, la.fan_out) for la in self.layers]
        self.syn: Synapses = synapses_factory(shapes)
        self.digital: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        self.bn: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.running: list[tuple[torch.Tensor, torch.Tensor]] = []
        for la in self.layers:
            shape = (members, 1, la.fan_out) + ((1, 1) if la.kind == "conv" else ())
            if not spec.binarized:
                b = torch.zeros(shape, device=device, requires_grad=True)
                self.biases.append(b)
                self.digital.append(b)
            else:
                gamma = torch.ones(shape, device=device, requires_grad=True)
                beta = torch.zeros(shape, device=device, requires_grad=True)
                self.bn.append((gamma, beta))
                self.digital += [gamma, beta]
                self.running.append((torch.zeros(shape, device=device),
                                     torch.ones(shape, device=device)))
        self.syn.initialise(self.initial_weights(seeds, init_scale, device))
        self.training = True

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].fan_in, *(la.fan_out for la in self.layers)]

    def initial_weights(self, seeds, scale, device) -> torch.Tensor:
        """Uniform(+-scale/sqrt(fan_in)) per layer (PyTorch's Linear and Conv2d default), one
        seeded generator per member: a member's start does not depend on the ensemble around
        it. Returned in the synapses' flat layer-major layout."""
        per_member = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed_for(seed, "init"))
            layers = []
            for la in self.layers:
                bound = scale / math.sqrt(la.fan_in)
                layers.append((torch.rand(la.fan_in * la.fan_out, generator=gen) * 2 - 1)
                              * bound)
            per_member.append(layers)
        blocks = [torch.stack([layers[i] for layers in per_member]).reshape(-1)
                  for i in range(len(self.layers))]
        return torch.cat(blocks).to(device)

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor] | None = None,
                record: list | None = None) -> torch.Tensor:
        """x: (M, B, n_in) -> logits (M, B, n_out); ``weights`` default to the synapses'.
        ``record``: gets (input, pre-activation) of every layer, for per-example updates."""
        last = len(self.layers) - 1
        binarized = self.spec.binarized
        h = x
        if self.spec.convolutional:
            if record is not None:
                raise MemsimError("per-example (outer-product) updates need linear layers")
            side = image_side(self.n_in)
            h = x.view(*x.shape[:2], 1, side, side)
        for i, la in enumerate(self.layers):
            w = self.syn.layer(i) if weights is None else weights[i]
            if binarized:
                w = _sign(w)
            if la.kind == "conv":
                z = conv_members(h, w, self.spec.kernel)
                if binarized:  # conv -> pool -> BatchNorm -> sign
                    if la.pool:
                        z = pool_members(z)
                    h = _sign(self._batchnorm(i, z))
                else:  # conv + bias -> activation -> pool
                    h = ACTIVATIONS[self.spec.activation](z + self.biases[i])
                    if la.pool:
                        h = pool_members(h)
                continue
            if h.dim() > 3:
                h = h.flatten(2)
            inp = h
            if not binarized:
                if self.periphery is None:
                    h = torch.baddbmm(self.biases[i], h, w)
                else:  # the bias is digital, after the converters (as in the kit)
                    h = analog_linear(h, w, self.periphery, self.noise) + self.biases[i]
                if record is not None:
                    record.append((inp, h))
                if i < last:
                    h = ACTIVATIONS[self.spec.activation](h)
            else:
                h = torch.bmm(h, w)
                if record is not None:
                    record.append((inp, h))
                h = self._batchnorm(i, h)
                if i < last:
                    h = _sign(h)
        return h

    def _batchnorm(self, i, h, eps=1e-5, momentum=0.1):
        gamma, beta = self.bn[i]
        rmean, rvar = self.running[i]
        if self.training:  # over the batch (and the positions of a conv layer's channels)
            dims = (1,) if h.dim() == 3 else (1, 3, 4)
            mean = h.mean(dim=dims, keepdim=True)
            var = h.var(dim=dims, unbiased=False, keepdim=True)
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

    def layer_terms(self, x: torch.Tensor, y: torch.Tensor):
        """(per-member losses, each layer's inputs x_l (M, B, fan_in), each layer's error
        delta_l = dL/d(pre-activation) (M, B, fan_out), gradients of the digital parameters):
        what a per-example (outer-product) update needs; x_l^T delta_l is the weight gradient."""
        record: list = []
        weights = [self.syn.layer(i).detach() for i in range(len(self.syn.shapes))]
        logits = self.forward(x, weights, record)
        losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1)
        pre = [z for _, z in record]
        grads = torch.autograd.grad(losses.sum(), [*pre, *self.digital])
        n = len(pre)
        xs = [inp.detach() for inp, _ in record]
        return losses.detach(), xs, list(grads[:n]), list(grads[n:])

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 2500) -> torch.Tensor:
        """Test accuracy per member (same inputs for every member)."""
        if self.spec.convolutional:  # feature maps are large: smaller chunks
            chunk = max(50, 2000 // self.members // 4)
        self.training = False
        correct = torch.zeros(self.members, device=x.device, dtype=torch.float64)
        for s in range(0, len(x), chunk):
            xb = x[s:s + chunk].unsqueeze(0).expand(self.members, -1, -1)
            pred = self.forward(xb).argmax(dim=2)
            correct += (pred == y[s:s + chunk].unsqueeze(0)).sum(dim=1)
        self.training = True
        return correct / len(x)

