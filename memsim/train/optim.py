"""Optimizers that *propose* weight changes: digital parameters take them directly, synapses
receive them as the desired update for their device rule."""

from __future__ import annotations

import math

import torch

from ..errors import MemsimError
from .networks import Network


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

    @torch.no_grad()
    def step_outer(self, xs, deltas, digital_grads: list[torch.Tensor]) -> None:
        """A step whose weight update the synapses make from each example's (x, delta) at the
        current learning rate (pulse trains); digital parameters as usual."""
        self.t += 1
        self.net.syn.update_outer(xs, deltas, self.lr)
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


def schedule_lr(schedule: dict, base: float, epoch: int, epochs: int) -> float:
    """The learning rate of ``epoch`` (1-based): ``constant``, ``step`` (times ``factor`` every
    ``every`` epochs) or ``cosine`` (from ``base`` towards ``min_lr`` over the run, as PyTorch's
    CosineAnnealingLR with T_max = epochs: the last epoch stays above ``min_lr``)."""
    kind = schedule.get("kind", "constant")
    if kind == "constant":
        return base
    if kind == "step":
        return base * schedule["factor"] ** ((epoch - 1) // schedule["every"])
    if kind == "cosine":
        lo = schedule.get("min_lr", 0.0)
        frac = (epoch - 1) / max(1, epochs)
        return lo + (base - lo) * (1 + math.cos(math.pi * frac)) / 2
    raise MemsimError(f"unknown learning-rate schedule {kind!r}")
