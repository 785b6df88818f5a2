"""Networks whose weights live on synapses (:mod:`memsim.train.cells`): MLPs and binarized
networks (BNN: sign weights and activations, BatchNorm, straight-through estimator). Every
tensor has a leading *member* dimension M: one network is M = 1, an ensemble trained in one
vectorized pass is M > 1."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import MemsimError
from ..seeds import seed_for
from .synapses import Synapses

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


@dataclass
class NetworkSpec:
    kind: str = "mlp"  # mlp or bnn
    hidden: tuple[int, ...] = (100,)
    activation: str = "relu"

    def sizes(self, n_in: int, n_out: int) -> list[int]:
        return [n_in, *self.hidden, n_out]

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
            gen = torch.Generator().manual_seed(seed_for(seed, "init"))
            layers = []
            for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True):
                bound = scale / math.sqrt(fi)
                layers.append((torch.rand(fi * fo, generator=gen) * 2 - 1) * bound)
            per_member.append(layers)
        blocks = [torch.stack([layers[i] for layers in per_member]).reshape(-1)
                  for i in range(len(self.sizes) - 1)]
        return torch.cat(blocks).to(device)

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor] | None = None,
                record: list | None = None) -> torch.Tensor:
        """x: (M, B, n_in) -> logits (M, B, n_out); ``weights`` default to the synapses'.
        ``record``: gets (input, pre-activation) of every layer, for per-example updates."""
        last = len(self.sizes) - 2
        h = x
        for i in range(last + 1):
            w = self.syn.layer(i) if weights is None else weights[i]
            inp = h
            if self.spec.kind == "mlp":
                h = torch.baddbmm(self.biases[i], h, w)
                if record is not None:
                    record.append((inp, h))
                if i < last:
                    h = ACTIVATIONS[self.spec.activation](h)
            else:
                h = torch.bmm(h, _sign(w))
                if record is not None:
                    record.append((inp, h))
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
        self.training = False
        correct = torch.zeros(self.members, device=x.device, dtype=torch.float64)
        for s in range(0, len(x), chunk):
            xb = x[s:s + chunk].unsqueeze(0).expand(self.members, -1, -1)
            pred = self.forward(xb).argmax(dim=2)
            correct += (pred == y[s:s + chunk].unsqueeze(0)).sum(dim=1)
        self.training = True
        return correct / len(x)

