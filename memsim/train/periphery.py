"""The periphery of an analog tile: what a crossbar's matrix-vector product returns once its
inputs pass DACs and its outputs noisy, bounded ADCs (the analog kit's ``IOParameters``).

Without a periphery a layer computes ``x @ W`` exactly. With one, as the kit does per example:

* forward: the input is divided by its largest magnitude (noise management ``abs_max``),
  rounded to ``inp_bits`` levels over [-inp_bound, inp_bound], multiplied by W; Gaussian
  ``out_noise`` (in units of the scaled output) is added, the result rounded to ``out_bits``
  levels over [-out_bound, out_bound] and clipped there. Where an output hits the bound, the
  input is halved and the product repeated (bound management ``iterative``) until none does or
  the input's resolution would pass ``max_bm_res``; the output is scaled back.
* backward: the error ``delta @ W^T`` the same way, without bound management (the kit has
  none backward).

The update still sees the exact (x, delta) of each example, as in the kit. Why it matters:
with a device whose every pulse is far larger than the rule's dw_min (JART under the kit's
pulse trains), sigmoid layers saturate within two minibatches; with an ideal periphery no
pulse is sent after that, while the kit's output noise and converters keep errors flowing
(checked against the authors' own code; README).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import MemsimError
from ..io.schema import Section
from ..seeds import seed_for

NOISE_MANAGEMENT = ("abs_max", "none")
BOUND_MANAGEMENT = ("iterative", "none")


@dataclass(frozen=True)
class Periphery:
    """The kit's defaults (its ``IOParameters``: 7-bit inputs, 9-bit outputs, noise 0.06)."""
    out_noise: float = 0.06
    inp_bits: int = 7
    out_bits: int = 9
    inp_bound: float = 1.0
    out_bound: float = 12.0
    noise_management: str = "abs_max"
    bound_management: str = "iterative"
    max_bm_res: float = 0.25

    @property
    def inp_res(self) -> float:
        """The DAC's step: 2^bits - 2 steps over the range, as the kit counts (0: exact)."""
        return 2 * self.inp_bound / (2 ** self.inp_bits - 2) if self.inp_bits else 0.0

    @property
    def out_res(self) -> float:
        return 2 * self.out_bound / (2 ** self.out_bits - 2) if self.out_bits else 0.0

    @property
    def max_reduction(self) -> float:
        """Bound management halves the input until the reduction passes this."""
        return min(1000.0, self.max_bm_res / self.inp_res) if self.inp_res else 1000.0


def parse_periphery(value, file=None, where: str = "periphery") -> Periphery | None:
    """``periphery: kit`` (the kit's defaults), a mapping overriding some of them, or
    absent / ``none`` (an exact product)."""
    if value is None or value == "none":
        return None
    if value == "kit":
        value = {}
    if not isinstance(value, dict):
        raise MemsimError(f"must be kit, none or a mapping, not {value!r}", file,
                          f"key {where!r}")
    sec = Section(value, file, where)
    d = Periphery()
    bits = {"check": lambda v: v == 0 or 2 <= v <= 24, "check_msg": "must be 0 or 2..24"}
    positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
    p = Periphery(
        out_noise=sec.take("out_noise", float, d.out_noise, check=lambda v: v >= 0,
                           check_msg="must be >= 0"),
        inp_bits=sec.take("inp_bits", int, d.inp_bits, **bits),
        out_bits=sec.take("out_bits", int, d.out_bits, **bits),
        inp_bound=sec.take("inp_bound", float, d.inp_bound, **positive),
        out_bound=sec.take("out_bound", float, d.out_bound, **positive),
        noise_management=sec.take("noise_management", str, d.noise_management,
                                  choices=NOISE_MANAGEMENT),
        bound_management=sec.take("bound_management", str, d.bound_management,
                                  choices=BOUND_MANAGEMENT),
        max_bm_res=sec.take("max_bm_res", float, d.max_bm_res, **positive))
    sec.done()
    return p


def _round_to(v: torch.Tensor, res: float) -> torch.Tensor:
    return v if res <= 0 else torch.round(v / res) * res


class Noise:
    """Standard normal draws, one generator per member: a member's noise does not depend on
    the ensemble around it."""

    def __init__(self, seeds: list[int], device):
        self.gens = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(seed_for(s, "periphery"))
            self.gens.append(g)

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        shape = like.shape[1:]
        return torch.stack([torch.randn(shape, generator=g, device=like.device,
                                        dtype=like.dtype) for g in self.gens])


def _scale(v: torch.Tensor, p: Periphery) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise management: (each example's divisor, its largest magnitude or 1 if all zero;
    whether it is converted at all: the kit short-cuts an all-zero input to a zero output)."""
    if p.noise_management == "none":
        return torch.ones_like(v[..., :1]), torch.ones_like(v[..., :1], dtype=torch.bool)
    s = v.abs().amax(dim=-1, keepdim=True)
    live = s > 0
    return torch.where(live, s, torch.ones_like(s)), live


def _product(x: torch.Tensor, w: torch.Tensor, p: Periphery, noise: Noise):
    """One pass through the converters: (rounded, clipped output, saturated per example)."""
    xq = _round_to(x, p.inp_res).clamp_(-p.inp_bound, p.inp_bound)
    y = torch.bmm(xq, w)
    if p.out_noise > 0:
        y = y + p.out_noise * noise(y)
    y = _round_to(y, p.out_res)
    saturated = (y.abs() > p.out_bound).any(dim=-1, keepdim=True)
    return y.clamp_(-p.out_bound, p.out_bound), saturated


def forward_mvm(h: torch.Tensor, w: torch.Tensor, p: Periphery, noise: Noise) -> torch.Tensor:
    """h (M, B, fan_in) @ w (M, fan_in, fan_out) through the periphery."""
    scale, pending = _scale(h, p)
    reduction = torch.ones_like(scale)
    out = torch.zeros(*h.shape[:2], w.shape[-1], device=h.device, dtype=h.dtype)
    while True:  # at most log2(max_reduction) + 1 rounds, every example at once
        y, saturated = _product(h / (scale * reduction), w, p, noise)
        done = pending & (~saturated | (p.bound_management == "none")
                          | (reduction > p.max_reduction))
        out = torch.where(done, y * scale * reduction, out)
        pending = pending & ~done
        if not bool(pending.any()):
            return out
        reduction = torch.where(pending, reduction * 2, reduction)


def backward_mvm(d: torch.Tensor, w: torch.Tensor, p: Periphery, noise: Noise) -> torch.Tensor:
    """d (M, B, fan_out) @ w^T through the periphery, no bound management."""
    scale, live = _scale(d, p)
    y, _ = _product(d / scale, w.transpose(1, 2), p, noise)
    return torch.where(live, y * scale, torch.zeros_like(y))


class _AnalogLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, p, noise):
        ctx.save_for_backward(h, w)
        ctx.periphery, ctx.noise = p, noise
        return forward_mvm(h, w, p, noise)

    @staticmethod
    def backward(ctx, grad):
        h, w = ctx.saved_tensors
        gh = backward_mvm(grad, w, ctx.periphery, ctx.noise) if ctx.needs_input_grad[0] else None
        # the weight gradient is the exact outer product, as the kit's update sees it
        gw = torch.bmm(h.transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
        return gh, gw, None, None


def analog_linear(h: torch.Tensor, w: torch.Tensor, p: Periphery, noise: Noise) -> torch.Tensor:
    """h @ w through the periphery forward; its error goes back through it too."""
    return _AnalogLinear.apply(h, w, p, noise)
