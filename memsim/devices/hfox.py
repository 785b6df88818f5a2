"""The ``hfox`` device kind: the HfOx weak-RESET physics model (Majumdar et al., 2021).

Each device keeps t, the number of weak-RESET pulses it has received; its resistance is

    R = R0 exp(w_mean(t) + w_rtn + 0.025 w_pink)

with a piecewise-linear mean in log-resistance (slope m1 before t*, m2 after), random
telegraph noise (a two-state Markov chain per device, started in its stationary distribution;
amplitude A ~ U(0, 0.5) per device; in the high state the term is U(0, U(0, A)), redrawn at
every update; n pulses of one update advance the chain by the n-th power of its transition
matrix) and 1/f noise (a 15-tap filter b_k over a per-device buffer of uniform samples,
advanced one sample per pulse). Device-to-device variability: m1, t*, c1, m2 and R0 are drawn
once per device from the published truncated distributions
(../shared/literature/hfox_weak_reset.md).

Each imperfection is a switch of the spec (``d2d``, ``rtn``, ``pink``, ``nonlinearity``), for
ablations. ``d2d: off`` makes every device the *median behaviour*: R0 the median R0 and w(t) the
population's pointwise median of w_mean(t) (R/R0 1.07 after 100 pulses, 1.23 after 540, as
published; the device of median *parameters* would rise to 1.31). ``nonlinearity: off``
replaces each device's two-slope mean by one slope through its start and its state after
``levels`` pulses. Switched-off noise is still drawn (and not added), so variants of an
ablation share every random number they have in common.

Only RESET is modelled (R only grows, G = 1/R only falls). Programming (initial weights, the
refresh of a saturated pair) re-forms a device and sends the number of weak-RESET pulses that
the median behaviour needs to reach the target, *open loop*: device-to-device variation and
noise land in the written value, as they would on a chip without verify. ``write_verify: on``
instead finds each device's own count (an ideal verify loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
from scipy import stats

from ..errors import MemsimError
from ..seeds import seed_for
from .base import DeviceKind
from .population import Population

TAPS = 15
P_UP, P_DOWN = 0.0008, 0.002  # RTN transition probabilities per pulse (low->high, high->low)
P_HIGH = P_UP / (P_UP + P_DOWN)  # the telegraph chain's stationary share in the high state
PINK_SCALE = 0.025


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
# stated once: draws, the median behaviour and the nominal range all derive from them.
PUBLISHED = {
    "m1": (stats.expon(loc=3.7416e-5, scale=6.5647e-4), 3.74e-5, 0.0076),
    "t_star": (stats.lognorm(s=0.80338, loc=0, scale=542.54), 41, 2000),
    "c1": (stats.norm(loc=0.005293, scale=0.053208), -0.15, 0.15),
    "m2": (stats.expon(loc=0, scale=2.8891e-5), 0.0, 1.3e-4),
    "r0": (stats.norm(loc=6988, scale=381.7), 6252, 7897),
}
RTN_AMP_MAX = 0.5  # telegraph amplitude A ~ U(0, 0.5) per device
R0_MEDIAN = float(PUBLISHED["r0"][0].median())
MEDIAN_DEVICES = 5001  # the population whose pointwise median defines the median behaviour


def draw_parameters(n: int, seed: int) -> dict[str, np.ndarray]:
    """Device-to-device parameters of ``n`` devices (the published distributions)."""
    rng = np.random.default_rng(seed)
    out = {name: _truncated(dist, lo, hi, n, rng) for name, (dist, lo, hi) in PUBLISHED.items()}
    out["rtn_amp"] = rng.uniform(0, RTN_AMP_MAX, n)
    return out


def mean_log_r(t, m1, t_star, c1, m2):
    """w_mean(t): the two-slope mean in log-resistance (numpy or torch, broadcasting)."""
    lib = torch if isinstance(t, torch.Tensor) else np
    return lib.where(t < t_star, m1 * t + c1, m2 * t + t_star * (m1 - m2) + c1)


@lru_cache(maxsize=1)
def _median_knots() -> tuple[np.ndarray, np.ndarray]:
    """The pointwise median of w_mean(t) over a published population, on knots at every pulse
    to 4000 (where the curves bend), then geometric to 1e6 pulses."""
    p = draw_parameters(MEDIAN_DEVICES, seed=0)
    t = np.concatenate([np.arange(0, 4001.0), np.geomspace(4001, 1e6, 200)])
    w = np.concatenate([np.median(mean_log_r(c[:, None], p["m1"], p["t_star"], p["c1"],
                                             p["m2"]), axis=1)
                        for c in np.array_split(t, 16)])
    return t, w


def median_mean_log_r(t) -> np.ndarray:
    """w(t) of the median behaviour (no noise): for ``d2d: off``, the nominal range and step."""
    knots, w = _median_knots()
    t = np.asarray(t, dtype=float)
    slope = (w[-1] - w[-2]) / (knots[-1] - knots[-2])
    return np.where(t <= knots[-1], np.interp(t, knots, w), w[-1] + slope * (t - knots[-1]))


class HfOxPopulation(Population):
    """HfOx devices under weak-RESET pulses; conductance in siemens."""

    exact_programming = False  # open loop unless write_verify

    def __init__(self, shape, max_pulses: int = 2000, device="cpu", seed: int = 0,
                 dtype=torch.float32, d2d: bool = True, rtn: bool = True, pink: bool = True,
                 nonlinearity: bool = True, write_verify: bool = False):
        super().__init__(shape, device, seed, dtype)
        n = self.numel
        self.switches = {"d2d": bool(d2d), "rtn": bool(rtn), "pink": bool(pink),
                         "nonlinearity": bool(nonlinearity)}
        self.write_verify = self.exact_programming = bool(write_verify)
        self.max_pulses = max_pulses
        p = draw_parameters(n, seed_for(seed, "variation"))  # drawn even when unused
        kw = {"dtype": torch.float64, "device": self.device}
        self.amp = torch.tensor(p["rtn_amp"], **kw)
        if d2d:
            self.r0 = torch.tensor(p["r0"], **kw)
            params = [torch.tensor(p[k], **kw) for k in ("m1", "t_star", "c1", "m2")]
            self._curve = lambda t, idx: mean_log_r(t, *(_sel(x, idx) for x in params))
            start = params[2]
            end = mean_log_r(torch.tensor(float(max_pulses), **kw), *params)
        else:  # every device the median behaviour
            self.r0 = torch.full((n,), R0_MEDIAN, **kw)
            knots, w = (torch.tensor(a, **kw) for a in _median_knots())
            self._curve = lambda t, idx: _interp(t, knots, w)
            start = torch.full((n,), float(median_mean_log_r(0.0)), **kw)
            end = torch.full((n,), float(median_mean_log_r(float(max_pulses))), **kw)
        if not nonlinearity:  # one slope from the start to the state after max_pulses
            slope = (end - start) / max_pulses
            self._curve = lambda t, idx: _sel(start, idx) + _sel(slope, idx) * t
        self.b = torch.tensor(_pink_weights(), **kw)
        self._taps = torch.arange(TAPS, device=self.device)
        self.t = torch.zeros(n, **kw)
        self.t_programmed = torch.zeros(n, **kw)  # t when last programmed (pulse budget)
        # the telegraph chain starts in its stationary distribution
        u = torch.rand(3, n, generator=self.generator, device=self.device, dtype=torch.float64)
        self.high = u[0] < P_HIGH
        self.rtn = torch.where(self.high, u[1] * u[2] * self.amp, torch.zeros_like(self.amp))
        # the 1/f buffer (float32: uniforms) and its filtered value, kept per device
        self.buf = torch.rand(n, TAPS, generator=self.generator, device=self.device,
                              dtype=torch.float32)
        self.b32 = self.b.float()
        self.pink_value = (self.buf @ self.b32).double()
        # the nominal range: the median behaviour from t = 0 to max_pulses, as read
        lo_r = R0_MEDIAN * np.exp(self._nominal_curve(np.array([0.0]))[0])
        hi_r = R0_MEDIAN * np.exp(self._nominal_curve(np.array([float(max_pulses)]))[0])
        self.g_max, self.g_min = 1 / lo_r, 1 / hi_r
        self._refresh_g(None)

    def _nominal_curve(self, t: np.ndarray) -> np.ndarray:
        """The median behaviour's log R/R0 as read, on average: its w(t) (with this
        population's nonlinearity switch) plus the mean of the noise switched on (1/f noise
        has a positive mean, 0.025 x 0.5 x sum b_k = 0.055, and telegraph noise adds
        P_high E[A] / 4 = 0.018): what an open-loop programmer calibrates on."""
        offset = ((P_HIGH * RTN_AMP_MAX / 8 if self.switches["rtn"] else 0.0)
                  + (PINK_SCALE * 0.5 * _pink_weights().sum() if self.switches["pink"]
                     else 0.0))
        if self.switches["nonlinearity"]:
            return median_mean_log_r(t) + offset
        w0, w1 = median_mean_log_r([0.0, float(self.max_pulses)])
        return w0 + offset + (w1 - w0) / self.max_pulses * np.asarray(t, dtype=float)

    def _noise(self, idx):
        """The log-resistance noise term each device reads with now."""
        out = torch.zeros(self.numel if idx is None else idx.numel(), dtype=torch.float64,
                          device=self.device)
        if self.switches["rtn"]:
            out += _sel(self.rtn, idx)
        if self.switches["pink"]:
            out += PINK_SCALE * _sel(self.pink_value, idx)
        return out

    def _refresh_g(self, idx) -> None:
        log_r = self._curve(_sel(self.t, idx), idx) + self._noise(idx)
        g = (1.0 / (_sel(self.r0, idx) * torch.exp(log_r))).to(self.dtype)
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
            raise _no_set()
        sel = torch.arange(self.numel, device=self.device) if idx is None else idx
        self._advance(sel, torch.ones(sel.numel(), dtype=torch.float64, device=self.device))

    def apply_sparse(self, idx: torch.Tensor, n: torch.Tensor) -> int:
        """All of an update's pulses at once, as the published model applies them: the pulse
        counter advances by n, the 1/f buffer by n fresh samples, the telegraph chain by the
        n-th power of its transition matrix (one pass, not one per pulse)."""
        if idx.numel() == 0:
            return 0
        if bool((n > 0).any()):
            raise _no_set()
        keep = n != 0
        idx, k = idx[keep], (-n[keep]).to(torch.float64)
        if idx.numel() == 0:
            return 0
        self._advance(idx, k)
        total = int(k.sum())
        self.device_pulses.index_add_(0, idx, k.to(torch.int32))
        self.pulses_applied += total
        return total

    def pulse_all(self, polarity: str, n: int = 1) -> None:
        if polarity == "set":
            raise _no_set()
        self._advance(torch.arange(self.numel, device=self.device),
                      torch.full((self.numel,), float(n), dtype=torch.float64,
                                 device=self.device))
        self.pulses_applied += n * self.numel
        self.device_pulses += n

    def _advance(self, sel: torch.Tensor, k: torch.Tensor) -> None:
        """``k`` (>= 1) weak-RESET pulses on each device of ``sel``."""
        m = sel.numel()
        self.t.index_add_(0, sel, k)
        # 1/f noise: k new uniform samples enter the buffer (newest first), the oldest leave
        fresh = self.draws.uniform_(self.ws.get("fresh", m * TAPS, torch.float32)).view(m, TAPS)
        lag = self._taps.unsqueeze(0) - k.long().unsqueeze(1)
        new = self.buf.index_select(0, sel).gather(1, lag.clamp_(min=0))
        new = torch.where(self._taps.unsqueeze(0) < k.unsqueeze(1), fresh, new)
        self.buf.index_copy_(0, sel, new)
        self.pink_value.index_copy_(0, sel, (new @ self.b32).double())
        # random telegraph noise: the k-step chain, P(high) relaxing to its stationary value
        # by (1 - p_up - p_down)^k; the amplitude redrawn at each update
        u = torch.rand(3, m, generator=self.generator, device=self.device, dtype=torch.float64)
        was_high = self.high.index_select(0, sel).to(torch.float64)
        p_high = P_HIGH + (was_high - P_HIGH) * (1 - P_UP - P_DOWN) ** k
        high = u[0] < p_high
        self.high.index_copy_(0, sel, high)
        term = u[1] * u[2] * self.amp.index_select(0, sel)  # U(0, U(0, A))
        self.rtn.index_copy_(0, sel, torch.where(high, term, torch.zeros_like(term)))
        self._refresh_g(sel)

    def program(self, target, mask: torch.Tensor | None = None) -> None:
        """Re-form devices and send weak-RESET pulses towards ``target``: open loop, the count
        the median behaviour needs (each device lands where its own curve and noise put it);
        with write-verify, each device's own count (with the noise it reads now), to within
        one pulse."""
        target = torch.as_tensor(target, dtype=torch.float64, device=self.device)
        target = torch.broadcast_to(target, self.shape).reshape(-1)
        target = target.clamp(self.g_min, self.g_max)
        if self.write_verify:
            log_r = torch.log(1.0 / (target * self.r0)) - self._noise(None)
            t = self._invert(log_r)
        else:
            log_r = torch.log(1.0 / (target * R0_MEDIAN))
            grid = torch.arange(0, 4 * self.max_pulses + 1, dtype=torch.float64,
                                device=self.device)
            w = torch.as_tensor(self._nominal_curve(grid.cpu().numpy()), device=self.device)
            # the nominal curve rises with t: the count whose w is nearest the target's
            pos = torch.searchsorted(w, log_r).clamp(1, len(grid) - 1)
            nearer_low = (log_r - w[pos - 1]) < (w[pos] - log_r)
            t = torch.where(nearer_low, pos - 1, pos).to(torch.float64)
        sel = torch.ones(self.numel, dtype=torch.bool, device=self.device) if mask is None \
            else mask.reshape(-1)
        self.t = torch.where(sel, t, self.t)
        self.t_programmed = torch.where(sel, t, self.t_programmed)
        self._refresh_g(None)

    def budget_used(self) -> torch.Tensor:
        """Pulses since the device was last programmed, over ``levels``. With device-to-device
        variation a device's conductance says little about how far along its curve it is
        (open-loop programming alone spreads it over half the nominal range), so a refresh
        counts pulses, as a controller can."""
        return (self.t - self.t_programmed) / self.max_pulses

    def _invert(self, log_r: torch.Tensor) -> torch.Tensor:
        """Each device's pulse count whose mean curve is nearest ``log_r`` (a monotone search
        over t: the curve of every switch setting rises with t)."""
        lo = torch.zeros_like(log_r)
        hi = torch.full_like(log_r, 1e6)
        for _ in range(21):  # bisection to one pulse over [0, 1e6]
            mid = ((lo + hi) / 2).floor()
            below = self._curve(mid, None) < log_r
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        near_lo = (log_r - self._curve(lo, None)).abs() <= (self._curve(hi, None) - log_r).abs()
        return torch.where(near_lo, lo, hi)

    def nominal_reset_step(self) -> float:
        """Mean |dG| of one weak-RESET pulse over the nominal range (the median behaviour):
        span / levels. The step of a nonlinear device is far from it locally (the median
        behaviour's first 100 pulses are 4.6x it, pulses after 600 0.34x): the cost of one
        dw_min for a nonlinear device, which ``nonlinearity: off`` removes; the published rule
        (``rounding: nearest`` with ``mapping.dw_min: 1``) uses no dw_min at all."""
        t = np.arange(0, self.max_pulses + 1, dtype=float)
        g = 1 / (R0_MEDIAN * np.exp(self._nominal_curve(t)))
        return float(np.mean(np.abs(np.diff(g))))


def _no_set() -> MemsimError:
    return MemsimError("the HfOx weak-RESET model has no SET pulses: use the mapping policy "
                       "'reset' (and refresh to re-form saturated pairs)")


def _sel(x: torch.Tensor, idx):
    return x if idx is None else x.index_select(0, idx)


def _interp(t: torch.Tensor, knots: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of (knots, w) at t, extended linearly beyond the last."""
    pos = torch.searchsorted(knots, t.contiguous()).clamp(1, len(knots) - 1)
    k0, k1, w0, w1 = knots[pos - 1], knots[pos], w[pos - 1], w[pos]
    return w0 + (w1 - w0) * (t - k0) / (k1 - k0)


@dataclass
class HfOxKind(DeviceKind):
    """``levels``: the pulse budget that defines the nominal range; the switches turn each
    imperfection off (``d2d: off``: every device the median behaviour)."""

    kind: ClassVar[str] = "hfox"
    polarities: ClassVar[tuple[str, ...]] = ("reset",)
    switches: ClassVar[dict[str, dict]] = {
        "d2d": {"d2d": False}, "rtn": {"rtn": False}, "pink": {"pink": False},
        "nonlinearity": {"nonlinearity": False}}
    levels: int = 2000
    d2d: bool = True
    rtn: bool = True
    pink: bool = True
    nonlinearity: bool = True
    write_verify: bool = False

    @property
    def noisy(self) -> bool:
        return self.d2d or self.rtn or self.pink

    @classmethod
    def from_spec(cls, sec, base) -> HfOxKind:
        flags = {k: sec.take(k, bool, True) for k in ("d2d", "rtn", "pink", "nonlinearity")}
        # write-verify inverts the curve over pulse counts up to 1e6 (HfOxPopulation._invert)
        levels = sec.take("levels", int, 2000, check=lambda v: 1 <= v <= 10**6,
                          check_msg="must be between 1 and 1,000,000")
        return cls(levels, **flags,
                   write_verify=sec.take("write_verify", bool, False))

    def g_range(self) -> tuple[float, float]:
        pop = self.population(1)
        return pop.g_min, pop.g_max

    def nominal_step(self, polarities=("reset",)) -> float:
        return self.population(1).nominal_reset_step()  # RESET only

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        return HfOxPopulation(shape, self.levels, device, seed, dtype, d2d=self.d2d,
                              rtn=self.rtn, pink=self.pink, nonlinearity=self.nonlinearity,
                              write_verify=self.write_verify)
