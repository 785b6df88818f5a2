"""The ``hfox`` device kind: the HfOx weak-RESET physics model (Majumdar et al., 2021).

Each device keeps t, the number of weak-RESET pulses it has received; its resistance is

    R = R0 exp(w_mean(t) + w_rtn + 0.025 w_pink)

with a piecewise-linear mean in log-resistance (slope m1 before t*, m2 after), random
telegraph noise (a two-state Markov chain per device, amplitude A ~ U(0, 0.5) per device;
in the high state the term is U(0, U(0, A)), redrawn at every update) and 1/f noise (a
15-tap filter b_k over a per-device buffer of uniform samples, advanced one sample per
pulse). Device-to-device variability: m1, t*, c1, m2 and R0 are drawn once per device from
the published truncated distributions (../shared/literature/hfox_weak_reset.md).

Only RESET is modelled (the resistance only grows, the conductance G = 1/R only falls). A
SET pulse is not part of the model: programming (``program``: initial weights, refresh of a
saturated pair) re-forms a device to the pulse count whose mean resistance gives the target,
as a strong SET followed by weak RESETs would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import stats

from ..errors import MemsimError
from ..seeds import seed_for
from .base import DeviceKind, nonnegative, positive
from .population import Population

TAPS = 15
P_UP, P_DOWN = 0.0008, 0.002  # RTN transition probabilities per pulse (low->high, high->low)


def _pink_weights() -> np.ndarray:
    b = np.ones(TAPS)
    for k in range(1, TAPS):
        b[k] = b[k - 1] * (k - 0.5) / k
    return b


def _truncated(dist, lo: float, hi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a frozen scipy distribution truncated to [lo, hi] (inverse CDF)."""
    a, b = dist.cdf(lo), dist.cdf(hi)
    return dist.ppf(a + rng.random(n) * (b - a))


# The published device-to-device distributions (frozen scipy distribution, truncation bounds),
# stated once: draws, the median device and the nominal range all derive from them.
PUBLISHED = {
    "m1": (stats.expon(loc=3.7416e-5, scale=6.5647e-4), 3.74e-5, 0.0076),
    "t_star": (stats.lognorm(s=0.80338, loc=0, scale=542.54), 41, 2000),
    "c1": (stats.norm(loc=0.005293, scale=0.053208), -0.15, 0.15),
    "m2": (stats.expon(loc=0, scale=2.8891e-5), 0.0, 1.3e-4),
    "r0": (stats.norm(loc=6988, scale=381.7), 6252, 7897),
}
RTN_AMP_MAX = 0.5  # telegraph amplitude A ~ U(0, 0.5) per device
R0_MEDIAN = float(PUBLISHED["r0"][0].median())


def draw_parameters(n: int, seed: int) -> dict[str, np.ndarray]:
    """Device-to-device parameters of ``n`` devices (the published distributions)."""
    rng = np.random.default_rng(seed)
    out = {name: _truncated(dist, lo, hi, n, rng) for name, (dist, lo, hi) in PUBLISHED.items()}
    out["rtn_amp"] = rng.uniform(0, RTN_AMP_MAX, n)
    return out


def median_mean_log_r(t: np.ndarray) -> np.ndarray:
    """w_mean(t) of the median device (no noise): for the nominal range and step."""
    m1, t_star, c1, m2 = (float(PUBLISHED[k][0].median()) for k in ("m1", "t_star", "c1", "m2"))
    return np.where(t < t_star, m1 * t + c1, m2 * t + t_star * (m1 - m2) + c1)


class HfOxPopulation(Population):
    """HfOx devices under weak-RESET pulses; conductance in siemens."""

    def __init__(self, shape, max_pulses: int = 2000, device="cpu", seed: int = 0,
                 dtype=torch.float32, d2d: bool = True):
        super().__init__(shape, device, seed, dtype)
        n = self.numel
        if d2d:
            p = draw_parameters(n, seed_for(seed, "variation"))
        else:  # every device the median device
            med = draw_parameters(20001, 0)
            p = {k: np.full(n, np.median(v)) for k, v in med.items()}
        kw = {"dtype": torch.float64, "device": self.device}
        self.m1 = torch.tensor(p["m1"], **kw)
        self.t_star = torch.tensor(p["t_star"], **kw)
        self.c1 = torch.tensor(p["c1"], **kw)
        self.m2 = torch.tensor(p["m2"], **kw)
        self.r0 = torch.tensor(p["r0"], **kw)
        self.amp = torch.tensor(p["rtn_amp"], **kw)
        self.b = torch.tensor(_pink_weights(), **kw)
        self.t = torch.zeros(n, **kw)
        self.high = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.rtn = torch.zeros(n, **kw)
        self.buf = torch.rand(n, TAPS, generator=self.generator, device=self.device,
                              dtype=torch.float64)
        # nominal range: the median device from t = 0 to max_pulses, noise-free
        lo_r = R0_MEDIAN * np.exp(median_mean_log_r(np.array([0.0]))[0])
        hi_r = R0_MEDIAN * np.exp(median_mean_log_r(np.array([float(max_pulses)]))[0])
        self.g_max, self.g_min = 1 / lo_r, 1 / hi_r
        self.max_pulses = max_pulses
        self._refresh_g(None)

    # the conductance follows from the state
    def _mean_log_r(self, idx):
        take = (lambda x: x) if idx is None else (lambda x: x.index_select(0, idx))
        t, ts, m1, m2, c1 = take(self.t), take(self.t_star), take(self.m1), take(self.m2), \
            take(self.c1)
        return torch.where(t < ts, m1 * t + c1, m2 * t + ts * (m1 - m2) + c1)

    def _refresh_g(self, idx) -> None:
        take = (lambda x: x) if idx is None else (lambda x: x.index_select(0, idx))
        pink = take(self.buf) @ self.b
        log_r = self._mean_log_r(idx) + take(self.rtn) + 0.025 * pink
        g = (1.0 / (take(self.r0) * torch.exp(log_r))).to(self.dtype)
        if idx is None:
            self.g.copy_(g)
        else:
            self.g.index_copy_(0, idx, g)

    clips = False  # the physics bounds G; no artificial clipping

    def _clip(self, g, idx=None):
        return g

    def _pulse(self, idx, is_set) -> None:
        if not (isinstance(is_set, bool) and not is_set) and bool(
                torch.as_tensor(is_set).any()):
            raise MemsimError("the HfOx weak-RESET model has no SET pulses: use the mapping "
                              "policy 'reset' (and refresh to re-form saturated pairs)")
        sel = torch.arange(self.numel, device=self.device) if idx is None else idx
        n = sel.numel()
        self.t.index_add_(0, sel, torch.ones(n, dtype=torch.float64, device=self.device))
        # 1/f noise: one new uniform sample per pulse
        new = torch.rand(n, 1, generator=self.generator, device=self.device,
                         dtype=torch.float64)
        shifted = torch.cat([new, self.buf.index_select(0, sel)[:, :-1]], dim=1)
        self.buf.index_copy_(0, sel, shifted)
        # random telegraph noise: one Markov step per pulse, amplitude redrawn each update
        u = torch.rand(n, generator=self.generator, device=self.device, dtype=torch.float64)
        high = self.high.index_select(0, sel)
        high = torch.where(high, u >= P_DOWN, u < P_UP)
        self.high.index_copy_(0, sel, high)
        v = torch.rand(2, n, generator=self.generator, device=self.device, dtype=torch.float64)
        term = v[0] * v[1] * self.amp.index_select(0, sel)  # U(0, U(0, A))
        self.rtn.index_copy_(0, sel, torch.where(high, term, torch.zeros_like(term)))
        self._refresh_g(sel)

    def program(self, target, mask: torch.Tensor | None = None) -> None:
        """Re-form devices to the pulse count whose resistance, with the present noise, reads
        as ``target`` (write-verify), to within one pulse."""
        target = torch.as_tensor(target, dtype=torch.float64, device=self.device)
        target = torch.broadcast_to(target, self.shape).reshape(-1)
        target = target.clamp(self.g_min, self.g_max)
        noise = self.rtn + 0.025 * (self.buf @ self.b)  # verify against the read value
        log_r = torch.log(1.0 / (target * self.r0)) - noise
        # invert the piecewise-linear mean: before t* (slope m1), else after (slope m2)
        t1 = (log_r - self.c1) / self.m1
        t2 = (log_r - self.c1 - self.t_star * (self.m1 - self.m2)) / self.m2.clamp(min=1e-12)
        t = torch.where(t1 < self.t_star, t1, t2).clamp(0, 1e6).round()
        sel = torch.ones(self.numel, dtype=torch.bool, device=self.device) if mask is None \
            else mask.reshape(-1)
        self.t = torch.where(sel, t, self.t)
        self._refresh_g(None)

    def nominal_reset_step(self) -> float:
        """Mean |dG| of one weak-RESET pulse over the nominal range (median device)."""
        t = np.arange(0, self.max_pulses + 1, dtype=float)
        g = 1 / (R0_MEDIAN * np.exp(median_mean_log_r(t)))
        return float(np.mean(np.abs(np.diff(g))))


@dataclass
class HfOxKind(DeviceKind):
    """``levels``: the pulse budget that defines the nominal range; ``d2d: 0`` makes every
    device the median device."""

    kind: ClassVar[str] = "hfox"
    polarities: ClassVar[tuple[str, ...]] = ("reset",)
    levels: int = 2000
    d2d: float = 1.0

    @classmethod
    def from_spec(cls, sec, base) -> HfOxKind:
        return cls(sec.take("levels", int, 2000, **positive),
                   sec.take("d2d", float, 1.0, **nonnegative))

    def g_range(self) -> tuple[float, float]:
        pop = self.population(1)
        return pop.g_min, pop.g_max

    def nominal_step(self, polarities=("reset",)) -> float:
        return self.population(1).nominal_reset_step()  # RESET only

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        return HfOxPopulation(shape, self.levels, device, seed, dtype, d2d=self.d2d > 0)
