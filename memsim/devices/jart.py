"""The ``jart`` device kind: the JART VCM v1b valence-change memory model (Bengel et al. 2020,
with the closed-form current fit of Ntinas et al. 2022), as trained on by Yu et al. 2022
(../shared/literature/jart_vcm_v1b.md).

A device's state is N, the oxygen-vacancy concentration in its disc (units of 1e26 m^-3). A
1 us pulse integrates dN/dt (hopping over a field-lowered barrier at the Joule-heated
temperature, limited by window functions near N_discmin / N_discmax) with 100 explicit Euler
steps of 10 ns, in float64; N is kept in float32 between pulses, as the reference does. Every
device advances together: the Euler loop runs over time steps, never over devices, and the
current-fit coefficients, which depend on the voltage only, are computed once per pulse shape.

The conductance a network reads is the read current at 0.2 V over 0.2 V; the nominal range is
N in [0.06, 1.98975], which a ``reference`` cell with ``w_max: 0.6`` maps onto +-0.6 linearly
in read current (the published mapping; w = 0 is N = 0.3421). A pulse is skipped when N sits
at the bound it moves towards; after it, N is clipped to the device's bounds (``clip_n: off``
keeps only the physical N_discmin / N_discmax, as the published runs effectively did).

Noise (every configuration of the note, as YAML; named presets in :data:`PRESETS`):

* ``d2d``: per parameter (``ndiscmax``, ``ndiscmin``, ``ldisc`` and ``rdisc`` in nm, and
  ``w_bounds``, a factor on the weight bounds) ``{sigma: s, bounds: [lo, hi]}``: each device's
  value is nominal x (1 + s N(0, 1)), clipped to the absolute bounds (``null``: unclipped, but
  above 1 % of nominal). ``w_bounds`` is one factor on both bounds of a device (the reference
  draws the two independently) relative to +-0.6: the published +-[1.35, 1.65] of a
  configured 1.5 never reached its +-0.6 mapping, so this is the realistic spread applied
  where it can act;
* ``c2c``: per parameter ``{std: s, slope: q, bounds: [lower, upper]}``: after every pulse that
  fired, the parameter is multiplied by (1 + s U(-1, 1) + ratio q U(-1, 1)) (ratio: how far the
  pulse went towards the physical limit) and kept within its device value x (1 + [lower,
  upper]) (default bounds +- max(s, q)): a persistent, bounded random walk.

The RESET current and the read current use the nominal N_discmin (0.008); a device's own
N_discmin / N_discmax enter the windows and the clipping only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from ..errors import MemsimError
from ..models.base import DeviceModel
from ..seeds import seed_for
from .base import DeviceKind
from .population import Population

# ----------------------------------------------------------------- the model's constants

CURRENT_FIT = {  # Ntinas et al.'s closed-form current
    "alpha0": 4.81951e-5, "alpha2": 1.03685, "alpha3": 0.34567,
    "beta0": 7.0526e-4, "beta1": 4.2383e-5,
    "c0": 4.004, "c1": 2.8646, "c2": 4.2125, "c3": 1.4134,
    "d0": 6.6103, "d1": 1.4524, "d2": 7.4235, "d3": 4.0585,
    "f0": 6.326e-4, "f1": 1.4711, "f2": 0.5199, "f3": 1.561,
    "g0": 4.84e-3, "g1": 0.1353,
    "h0": 5.548, "h1": 6.8648, "h2": 51.586, "h3": 0.36,
    "j0": 1.054, "k0": 1.0526,
}
N_PLUG = 20.0
T0 = 293.0  # K
MU_N = 4e-6  # m^2/Vs
N_DISCMAX, N_DISCMIN = 20.0, 0.008
A_HOP = 0.25e-9  # m, hopping distance
NU0 = 2e13  # Hz
DW_A = 1.35  # eV
R_TH0 = 15.72e6  # K/W
RESET_TH_FACTOR = 0.27
R_DISC, L_CELL, L_DISC = 45e-9, 3e-9, 0.4e-9  # m
R_SERIES = 650.0  # ohm (TiOx)
R_LINE, R_TH_LINE, ALPHA_LINE = 719.2437, 90471.47, 3.92e-3
Z_VO, Q_E, KB_OVER_E = 2, 1.602e-19, 8.6186e-5
DT, PULSE = 10e-9, 1e-6
EULER_STEPS = round(PULSE / DT)  # 100
V_SET, V_RESET, V_READ = -0.342, 0.7065, 0.2
N_LO, N_HI = 0.06, 1.98975  # the N values the weight bounds map to
W_BOUND = 0.6
FLOOR = 0.01  # an unbounded device-to-device draw stays above 1 % of its nominal value
A_NOMINAL = math.pi * R_DISC ** 2
CHUNK = 1 << 17  # devices integrated together: their temporaries stay in cache

F = CURRENT_FIT


def _set_coefficients(v: float) -> tuple[float, ...]:
    """alpha, beta, c, d, f of the SET current at voltage ``v`` (< 0)."""
    alpha1 = F["alpha0"] * math.exp(-F["alpha2"] / F["alpha3"])
    alpha = (alpha1 + F["alpha0"]) / (1 + math.exp(-(v + F["alpha2"]) / F["alpha3"])) \
        - F["alpha0"]
    beta = F["beta1"] * (1 - math.exp(-v)) - F["beta0"] * v
    c = F["c2"] * math.exp(-v / F["c3"]) + F["c1"] * v - F["c0"]
    d = F["d2"] * math.exp(-v / F["d3"]) + F["d1"] * v - F["d0"]
    f = F["f0"] + (F["f1"] - F["f0"]) / (1 + (-v / F["f2"]) ** F["f3"])
    return alpha, beta, c, d, f


def _positive_coefficients(v: float) -> tuple[float, float]:
    """g, h of the RESET / read current at voltage ``v`` (> 0)."""
    g = -F["g0"] * (math.exp(-F["g1"] * v) - 1)
    h = F["h0"] + F["h1"] * v + F["h2"] * math.exp(-F["h3"] * v)
    return g, h


def read_current(n, v: float = V_READ):
    """The current at a positive voltage (read, RESET) of discs with concentration ``n``."""
    g, h = _positive_coefficients(v)
    if isinstance(n, torch.Tensor):
        return g / (1 + h * (n / N_DISCMIN) ** (-F["j0"])) ** (1 / F["k0"])
    return g / (1 + h * (np.asarray(n, dtype=float) / N_DISCMIN) ** (-F["j0"])) ** (1 / F["k0"])


def n_for_current(i, v: float = V_READ):
    """The inverse of :func:`read_current`: N reading current ``i`` (0 < i < g(v))."""
    g, h = _positive_coefficients(v)
    i = i if isinstance(i, torch.Tensor) else np.asarray(i, dtype=float)
    return N_DISCMIN * (((g / i) ** F["k0"] - 1) / h) ** (-1 / F["j0"])


I_MIN, I_MAX = float(read_current(N_LO)), float(read_current(N_HI))
# the largest factor on the weight bounds a disc can reach: its read current tends to g(0.2 V)
# as N grows, so a wider upper bound maps to no N at all
W_BOUNDS_MAX = (_positive_coefficients(V_READ)[0] - I_MIN) / (I_MAX - I_MIN) * 2 - 1


def weight_of(n, w_bound: float = W_BOUND):
    """The published weight of discs at ``n``: linear in read current, N_LO -> -w_bound,
    N_HI -> +w_bound."""
    return (read_current(n) - I_MIN) / (I_MAX - I_MIN) * 2 * w_bound - w_bound


def n_of_weight(w, w_bound: float = W_BOUND):
    """The N that reads as weight ``w`` (the inverse of :func:`weight_of`)."""
    return n_for_current((w + w_bound) / (2 * w_bound) * (I_MAX - I_MIN) + I_MIN)


# ------------------------------------------------------------------------------ noise

D2D_PARAMS = ("ndiscmax", "ndiscmin", "ldisc", "rdisc", "w_bounds")
C2C_PARAMS = ("ndiscmax", "ndiscmin", "ldisc", "rdisc")
NOMINAL = {"ndiscmax": N_DISCMAX, "ndiscmin": N_DISCMIN, "ldisc": L_DISC * 1e9,
           "rdisc": R_DISC * 1e9, "w_bounds": 1.0}  # lengths in nm, as specs write them
SLOPED = ("ldisc", "rdisc")  # the parameters with a progress-dependent ("slope") term

# the note's device-to-device configurations: sigma and absolute bounds per parameter
D2D_REALISTIC = {"ndiscmax": {"sigma": 1.0, "bounds": [18, 22]},
                 "ndiscmin": {"sigma": 1.0, "bounds": [0.004, 0.016]},
                 "ldisc": {"sigma": 1.0, "bounds": [0.36, 0.44]},
                 "rdisc": {"sigma": 1.0, "bounds": [40.5, 49.5]}}
D2D_30 = {"ndiscmax": {"sigma": 1.0, "bounds": [14, 26]},
          "ndiscmin": {"sigma": 1.0, "bounds": [0.0056, 0.0104]},
          "ldisc": {"sigma": 1.0, "bounds": [0.28, 0.52]},
          "rdisc": {"sigma": 1.0, "bounds": [31.5, 58.5]}}
D2D_UNBOUNDED = {p: {"sigma": 0.3, "bounds": None} for p in C2C_PARAMS}
W_BOUNDS_REALISTIC = {"sigma": 1.0, "bounds": [0.9, 1.1]}  # +-[1.35, 1.65] of a nominal 1.5


def _presets() -> dict[str, dict]:
    out = {"noise_free": {}}
    for tag, table in (("realistic", D2D_REALISTIC), ("30", D2D_30),
                       ("unbounded", D2D_UNBOUNDED)):
        for p in C2C_PARAMS:
            out[f"d2d_{p}_{tag}"] = {"d2d": {p: table[p]}}
    out["d2d_realistic"] = {"d2d": {**D2D_REALISTIC, "w_bounds": W_BOUNDS_REALISTIC}}
    for p, levels in (("ndiscmax", (10, 30, 90)), ("ndiscmin", (10, 30, 90)),
                      ("ldisc", (1, 30)), ("rdisc", (1, 10, 30))):
        for pct in levels:
            out[f"c2c_{p}_{pct}"] = {"c2c": {p: {"std": pct / 100}}}
    for p in SLOPED:
        for pct in (10, 30):
            out[f"c2c_{p}_slope_{pct}"] = {"c2c": {p: {"slope": pct / 100}}}
    out["realistic_mixed"] = {
        "d2d": {**D2D_REALISTIC, "w_bounds": W_BOUNDS_REALISTIC},
        "c2c": {"ndiscmax": {"std": 0.1, "bounds": [-0.1, 0.1]},
                "ndiscmin": {"std": 0.9, "bounds": [-0.9, 0.9]},
                "ldisc": {"std": 0.01, "slope": 0.1, "bounds": [-0.1, 0.1]},
                "rdisc": {"std": 0.01, "slope": 0.1, "bounds": [-0.1, 0.1]}}}
    return out


PRESETS: dict[str, dict] = _presets()


def parse_d2d(sec) -> dict:
    """A ``d2d:`` section, checked: {param: {sigma, bounds}}."""
    out = {}
    for p in list(sec.data):
        if p not in D2D_PARAMS:
            raise sec.error(p, f"unknown parameter (device-to-device: {', '.join(D2D_PARAMS)})")
        sub = sec.sub(p)
        sigma = sub.take("sigma", float, check=lambda v: v >= 0, check_msg="must be >= 0")
        bounds = _bounds(sub, None)
        if bounds is not None and not 0 < bounds[0] <= NOMINAL[p] <= bounds[1]:
            raise sub.error("bounds", f"must be positive and hold the nominal {NOMINAL[p]:g}")
        if p == "w_bounds" and bounds is not None and bounds[1] >= W_BOUNDS_MAX:
            raise sub.error("bounds", f"upper bound must be below {W_BOUNDS_MAX:.4f}: no disc "
                                      "reads a weight beyond that factor of +-0.6")
        sub.done()
        out[p] = {"sigma": sigma, "bounds": bounds}
    return out


def parse_c2c(sec) -> dict:
    """A ``c2c:`` section, checked: {param: {std, slope, bounds}}."""
    out = {}
    for p in list(sec.data):
        if p not in C2C_PARAMS:
            raise sec.error(p, f"unknown parameter (cycle-to-cycle: {', '.join(C2C_PARAMS)})")
        sub = sec.sub(p)
        nonneg = {"check": lambda v: 0 <= v < 1, "check_msg": "must be in [0, 1)"}
        std = sub.take("std", float, 0.0, **nonneg)
        slope = sub.take("slope", float, 0.0, **nonneg) if p in SLOPED else 0.0
        width = max(std, slope)
        bounds = _bounds(sub, [-width, width])
        if not -1 < bounds[0] <= 0 <= bounds[1]:
            raise sub.error("bounds", "must be [lower, upper] with -1 < lower <= 0 <= upper")
        sub.done()
        out[p] = {"std": std, **({"slope": slope} if p in SLOPED else {}), "bounds": bounds}
    return out


def _bounds(sub, default):
    value = sub.take("bounds", (list, type(None)), default)
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, (int, float)) for v in value) \
            or value[0] > value[1]:
        raise sub.error("bounds", "must be two numbers [lo, hi] with lo <= hi")
    return [float(value[0]), float(value[1])]


# ------------------------------------------------------------------------- population


class JartPopulation(Population):
    """JART VCM devices; ``g`` is the read conductance I(0.2 V) / 0.2 V, in siemens."""

    clips = True

    def __init__(self, shape, d2d: dict, c2c: dict, clip_n: bool = True, device="cpu",
                 seed: int = 0, dtype=torch.float32, tabulate: bool = False):
        super().__init__(shape, device, seed, dtype)
        if tabulate and (d2d or c2c):
            raise MemsimError("jart: tabulate needs a noise-free device (no d2d, no c2c)")
        self.tabulate, self.clip_n = tabulate, clip_n
        n = self.numel
        kw = {"dtype": torch.float64, "device": self.device}
        gen = torch.Generator().manual_seed(seed_for(seed, "variation"))
        normals = torch.randn(len(D2D_PARAMS), n, generator=gen, dtype=torch.float64)
        value = {}
        for i, p in enumerate(D2D_PARAMS):  # drawn even when unused: variants share them
            v = torch.full((n,), NOMINAL[p], dtype=torch.float64)
            if p in d2d:
                v = v * (1 + d2d[p]["sigma"] * normals[i])
                if d2d[p]["bounds"] is not None:
                    v = v.clamp(*d2d[p]["bounds"])
                else:  # unbounded spreads: a physical size stays positive (3.3 sigma at 0.3)
                    v = v.clamp(min=FLOOR * NOMINAL[p])
                    if p == "w_bounds":  # and a weight bound one a disc can read
                        v = v.clamp(max=W_BOUNDS_MAX * (1 - 1e-6))
            value[p] = v.to(self.device)
        self.ndiscmax, self.ndiscmin = value["ndiscmax"], value["ndiscmin"]
        self.ldisc = value["ldisc"] * 1e-9
        self.area = math.pi * (value["rdisc"] * 1e-9) ** 2
        # the cycle-to-cycle walk's limits: each device's own value x (1 + [lower, upper])
        self.c2c = c2c
        self.walls = {}
        for p, cfg in c2c.items():
            lo, hi = (1 + cfg["bounds"][0], 1 + cfg["bounds"][1])
            base = {"ndiscmax": self.ndiscmax, "ndiscmin": self.ndiscmin, "ldisc": self.ldisc,
                    "rdisc": value["rdisc"] * 1e-9}[p]
            self.walls[p] = (base * lo, base * hi)
        # N bounds of the periphery (per device where the weight bounds vary)
        wb = value["w_bounds"] * W_BOUND
        if clip_n:
            self.n_lo, self.n_hi = n_of_weight(-wb), n_of_weight(wb)
        else:
            self.n_lo = torch.zeros(n, **kw)
            self.n_hi = torch.full((n,), math.inf, **kw)
        self.g_min, self.g_max = I_MIN / V_READ, I_MAX / V_READ
        # G stays within the nominal range unless the weight bounds vary or N is unclipped
        self.clips = clip_n and "w_bounds" not in d2d
        start = torch.full((n,), float(n_of_weight(0.0)), **kw)
        self.n = torch.minimum(torch.maximum(start, self._lower()), self._upper()).float()
        self._sync(None)

    # -- reading and programming

    def _sync(self, idx) -> None:
        n = self.n if idx is None else self.n.index_select(0, idx)
        g = (read_current(n.double()) / V_READ).to(self.dtype)
        if idx is None:
            self.g.copy_(g)
        else:
            self.g.index_copy_(0, idx, g)

    def _clip(self, g, idx=None):
        return g  # the physics bounds G (program() clips N to each device's bounds)

    def program(self, target, mask: torch.Tensor | None = None) -> None:
        """Write N so each device reads ``target`` (write-verify), within its bounds."""
        target = torch.as_tensor(target, dtype=torch.float64, device=self.device)
        target = torch.broadcast_to(target, self.shape).reshape(-1)
        i = (target * V_READ).clamp(1e-12, _positive_coefficients(V_READ)[0] * (1 - 1e-9))
        n = torch.maximum(torch.minimum(n_for_current(i), self._upper()), self._lower())
        n = n.to(torch.float32)
        self.n = n if mask is None else torch.where(mask.reshape(-1), n, self.n)
        self._sync(None)

    # the bounds as N is stored (float32): a device clipped to its bound compares equal to
    # it and skips the next pulse towards it, as in the reference
    def _upper(self, idx=None):
        return torch.minimum(_sel(self.n_hi, idx), _sel(self.ndiscmax, idx)).float().double()

    def _lower(self, idx=None):
        return torch.maximum(_sel(self.n_lo, idx), _sel(self.ndiscmin, idx)).float().double()

    # -- pulses

    def _pulse(self, idx, is_set) -> None:
        if isinstance(is_set, bool):
            self._pulse_one(idx, is_set)
            return
        sel = torch.arange(self.numel, device=self.device) if idx is None else idx
        for polarity in (True, False):
            part = sel[is_set] if polarity else sel[~is_set]
            if part.numel():
                self._pulse_one(part, polarity)

    def _pulse_one(self, idx, is_set: bool) -> None:
        if self.tabulate:
            self._look_up(idx, is_set)
            return
        n_old = (self.n if idx is None else self.n.index_select(0, idx)).double()
        upper, lower = self._upper(idx), self._lower(idx)
        fires = n_old < upper if is_set else n_old > lower
        ndmax, ndmin = _sel(self.ndiscmax, idx), _sel(self.ndiscmin, idx)
        ldisc, area = _sel(self.ldisc, idx), _sel(self.area, idx)
        n_new = torch.empty_like(n_old)
        step = _euler_set if is_set else _euler_reset
        for s in range(0, n_old.numel(), CHUNK):
            part = slice(s, s + CHUNK)
            n_new[part] = step(n_old[part].clone(), ndmax[part] if is_set else ndmin[part],
                               ldisc[part], area[part])
        n_new = torch.where(fires, n_new, n_old)
        if self.c2c:
            if is_set:
                ratio = (n_new - n_old) / (ndmax - n_old)
            else:
                ratio = (n_old - n_new) / (n_old - ndmin)
            self._walk(idx, fires, ratio)
        n_new = torch.minimum(torch.maximum(n_new, lower), upper).to(torch.float32)
        if idx is None:
            self.n = n_new
        else:
            self.n.index_copy_(0, idx, n_new)
        self._sync(idx)

    def _look_up(self, idx, is_set: bool) -> None:
        """One pulse of a noise-free device as a look-up in its state table."""
        table = state_table(is_set, self.clip_n, self.device)
        n_new = table(self.n if idx is None else self.n.index_select(0, idx))
        if idx is None:
            self.n = n_new
        else:
            self.n.index_copy_(0, idx, n_new)
        self._sync(idx)

    def _walk(self, idx, fires, ratio) -> None:
        """Cycle-to-cycle noise on the devices that fired: a bounded persistent random walk of
        each configured parameter."""
        m = fires.numel()
        u = torch.empty(2 * len(C2C_PARAMS), m, dtype=torch.float64, device=self.device)
        self.draws.uniform_(u.view(-1))
        u = 2 * u - 1
        for i, p in enumerate(C2C_PARAMS):
            cfg = self.c2c.get(p)
            if cfg is None:
                continue
            factor = 1 + cfg["std"] * u[2 * i] + ratio * cfg.get("slope", 0.0) * u[2 * i + 1]
            lo, hi = (_sel(w, idx) for w in self.walls[p])
            if p == "rdisc":
                r = torch.sqrt(_sel(self.area, idx) / math.pi) * factor
                new = math.pi * torch.minimum(torch.maximum(r, lo), hi) ** 2
                target = self.area
            else:
                attr = {"ndiscmax": "ndiscmax", "ndiscmin": "ndiscmin", "ldisc": "ldisc"}[p]
                target = getattr(self, attr)
                new = torch.minimum(torch.maximum(_sel(target, idx) * factor, lo), hi)
            new = torch.where(fires, new, _sel(target, idx))
            if idx is None:
                target.copy_(new)
            else:
                target.index_copy_(0, idx, new)

    def weights(self) -> torch.Tensor:
        """The published weight of every device (+-0.6 over the nominal N range)."""
        return weight_of(self.n.double())


class StateTable:
    """The noise-free device's one-pulse map of one polarity over every float32 N in its
    bounds, filled as states are visited: ``table[k]`` is N after one pulse from the N whose
    float32 bit pattern is ``base + k`` (positive floats order as their bits do). N is stored in
    float32 between pulses, so the map is the simulation itself: blocks of ``BLOCK`` states are
    simulated by the same pulse code the first time any of their states is looked up, whole
    blocks at a time, so no state falls in a vector loop's scalar tail and every entry is the
    same whichever states were visited first. The clipped range holds 42.6 M states (170 MB
    of address space, resident as it fills)."""

    BLOCK = 1 << 12

    def __init__(self, is_set: bool, clip_n: bool, device):
        probe = JartPopulation(1, {}, {}, clip_n)
        lo, hi = (float(b) for b in (probe._lower(), probe._upper()))
        bits = torch.tensor([lo, hi], dtype=torch.float32).view(torch.int32)
        self.base, top = int(bits[0]), int(bits[1])
        blocks = (top - self.base) // self.BLOCK + 1
        self.is_set, self.clip_n, self.device = is_set, clip_n, device
        self.table = torch.empty(blocks * self.BLOCK, dtype=torch.float32, device=device)
        self.built = torch.zeros(blocks, dtype=torch.bool, device=device)

    def __call__(self, n: torch.Tensor) -> torch.Tensor:
        """N after one pulse from each of ``n`` (float32, within the device's bounds)."""
        k = n.view(torch.int32) - self.base
        block = k // self.BLOCK
        missing = block[~self.built[block]]
        if missing.numel():
            self._fill(torch.unique(missing))
        return self.table[k]

    def _fill(self, blocks: torch.Tensor) -> None:
        offsets = torch.arange(self.BLOCK, dtype=torch.int32, device=self.device)
        k = (blocks[:, None] * self.BLOCK + offsets).reshape(-1)
        pop = JartPopulation(k.numel(), {}, {}, self.clip_n, device=self.device)
        pop.n = (k + self.base).view(torch.float32)
        pop._pulse_one(None, self.is_set)
        self.table[k] = pop.n
        self.built[blocks] = True


_STATE_TABLES: dict[tuple, StateTable] = {}


def forget_state_tables() -> None:
    """Drop the process's state tables (a benchmark timing them from empty)."""
    _STATE_TABLES.clear()


def state_table(is_set: bool, clip_n: bool = True, device="cpu") -> StateTable:
    """The process's :class:`StateTable` of a polarity (one per device, shared by every
    population of the noise-free device)."""
    key = (is_set, clip_n, str(torch.device(device)))
    if key not in _STATE_TABLES:
        _STATE_TABLES[key] = StateTable(is_set, clip_n, device)
    return _STATE_TABLES[key]


def _sel(x: torch.Tensor, idx):
    return x if idx is None else x.index_select(0, idx)


# the voltage-only factors of each pulse, computed once
_A_SET, _B_SET, _C_SET, _D_SET, _F_SET = _set_coefficients(V_SET)
_G_RESET, _H_RESET = _positive_coefficients(V_RESET)
_V_SERIES = R_LINE * ALPHA_LINE * R_LINE * R_TH_LINE  # the line's self-heating term
_R_SERIES = R_SERIES + R_LINE
_DISC_FIELD = Z_VO * Q_E * MU_N * 1e26  # V_disc = I l_disc / (_DISC_FIELD A N)
_GAMMA = Z_VO * A_HOP / (DW_A * math.pi)  # gamma per unit field
_HOP = A_HOP * NU0 * DT  # a nu0, times the Euler step


def _tenth_power(x):
    """x^10 in place by squaring (faster than pow)."""
    x2 = x.mul_(x)
    x8 = torch.mul(x2, x2)  # x^4, squared to x^8 below
    return x8.mul_(x8).mul_(x2)


def _advance(n, rate_of, limit, upward: bool):
    """100 Euler steps of N (float64, in place); ``rate_of(nf)`` is dN per step computed from
    N in float32, as the reference computes its currents and barriers in single precision.

    N is held at the physical limit it moves towards (``limit``: N_discmax for SET, N_discmin
    for RESET), where the window function stops the continuous solution. For the nominal
    device and the study's realistic spreads a step never reaches it and this changes
    nothing; a disc much smaller than nominal (cycle-to-cycle radius noise of 30 %) heats so
    much that one 10 ns step would overshoot the limit and the explicit scheme would diverge
    (N < 0, NaN)."""
    nf = torch.empty(n.shape, dtype=torch.float32, device=n.device)
    for _ in range(EULER_STEPS):
        nf.copy_(n)
        n.sub_(rate_of(nf))
        if upward:
            torch.minimum(n, limit, out=n)
        else:
            torch.maximum(n, limit, out=n)
    return n


def _hopping(nf, kt, gamma, window, hop):
    """The Euler step's decrease of N: ((N_plug + N) / 2) a nu0 F (exp(-dW_-/kT) -
    exp(-dW_+/kT)) / l_disc dt, with the barriers dW_+- = dW_A (sqrt(1 - gamma^2) +
    gamma asin(gamma) +- gamma pi / 2), written as 2 exp(-dW_mean/kT) sinh(dW_A gamma pi/2/kT).
    Consumes its arguments. |gamma| >= 1 is a barrier lowered to nothing (the formula's
    limit); it is held there rather than let asin return NaN."""
    gamma.clamp_(-1.0, 1.0)
    root = torch.mul(gamma, gamma).neg_().add_(1).sqrt_()
    mean = torch.asin(gamma).mul_(gamma).add_(root).mul_(-DW_A).div_(kt).exp_()
    split = gamma.mul_(DW_A * math.pi / 2).div_(kt).sinh_()
    return mean.mul_(split).mul_(window).mul_(hop).mul_(nf.add_(N_PLUG))


def _per_device(area, ldisc, th_factor):
    """The Euler loop's per-device factors (float32): k_B/e R_th, the hop term a nu0 dt /
    l_disc and gamma per unit current over N (the SET field V_disc / l_disc)."""
    f32 = torch.float32
    return ((KB_OVER_E * R_TH0 * th_factor * A_NOMINAL / area).to(f32),
            (_HOP / ldisc).to(f32), (_GAMMA / (_DISC_FIELD * area)).to(f32))


def _euler_set(n, ndiscmax, ldisc, area):
    """N after one SET pulse (100 Euler steps), per device (``n`` float64, updated)."""
    kb_rth, hop, field = _per_device(area, ldisc, 1.0)
    inv_max = (1 / ndiscmax).to(torch.float32)

    def rate(nf):
        i = torch.reciprocal(nf).mul_(_C_SET).pow_(_D_SET).add_(1).pow_(-_F_SET) \
            .mul_(-_B_SET).sub_(_A_SET)
        v_other = torch.mul(i, i).mul_(_V_SERIES).add_(_R_SERIES).mul_(i).neg_().add_(V_SET)
        kt = v_other.mul_(i).mul_(kb_rth).add_(KB_OVER_E * T0)  # k_B T / e
        gamma = i.mul_(field).div_(nf)  # gamma of E = V_disc / l_disc
        window = _tenth_power(torch.mul(nf, inv_max)).neg_().add_(1)
        return _hopping(nf, kt, gamma, window, hop)

    return _advance(n, rate, ndiscmax, upward=True)


def _euler_reset(n, ndiscmin, ldisc, area):
    """N after one RESET pulse (100 Euler steps), per device; the current uses the nominal
    N_discmin, the window the device's own."""
    kb_rth, hop, _ = _per_device(area, ldisc, RESET_TH_FACTOR)
    dmin = ndiscmin.to(torch.float32)

    def rate(nf):
        i = torch.mul(nf, 1 / N_DISCMIN).pow_(-F["j0"]).mul_(_H_RESET).add_(1) \
            .pow_(-1 / F["k0"]).mul_(_G_RESET)
        v_other = torch.mul(i, i).mul_(_V_SERIES).add_(_R_SERIES).mul_(i).neg_().add_(V_RESET)
        gamma = torch.mul(v_other, _GAMMA / L_CELL)  # E = V_other / l_cell
        kt = v_other.mul_(i).mul_(kb_rth).add_(KB_OVER_E * T0)
        window = _tenth_power(torch.div(dmin, nf)).neg_().add_(1)
        return _hopping(nf, kt, gamma, window, hop)

    return _advance(n, rate, ndiscmin, upward=False)


# ------------------------------------------------------------------------------ model


class JartModel(DeviceModel):
    """A JART device as a device model (the one-pulse distribution of dG given G): what a
    modeling-bias sweep fits jump tables to and compares them with. Each draw is a fresh device
    (its device-to-device parameters drawn) programmed to G and pulsed once, as Algorithm 2
    measures a population; quantiles, CDF, mean and SD are those of a fixed sample of
    ``SAMPLE`` devices per G (one where the device has no variation). Conductance in S."""

    SAMPLE = 64

    def __init__(self, kind: JartKind):
        self.kind = kind
        self.g_min, self.g_max = kind.g_range()
        self.unit = "S"
        self.name = kind.describe()
        self._cache: dict = {}

    @property
    def memoryless(self) -> bool:
        """A noise-free device is deterministic given G; a noisy one keeps its drawn and
        walked parameters from pulse to pulse, which no jump table can carry."""
        return not self.kind.noisy

    def _response(self, polarity: str, g, seed: int, repeat: int) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        pop = self.kind.population(len(g) * repeat, seed=seed, dtype=torch.float64)
        pop.program(torch.as_tensor(np.repeat(g, repeat)))
        start = pop.g.clone()
        pop._pulse(None, polarity == "set")
        return (pop.g - start).numpy().reshape(len(g), repeat)

    def _sorted(self, polarity: str, g) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        key = (polarity, g.tobytes())
        if key not in self._cache:
            repeat = self.SAMPLE if self.kind.d2d else 1
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = np.sort(self._response(polarity, g, 0, repeat), axis=1)
        return self._cache[key]

    def quantile(self, polarity, g, p):
        samples = self._sorted(polarity, g)
        k = samples.shape[1]
        p = np.broadcast_to(np.asarray(p, dtype=float), (len(samples), np.shape(p)[-1]))
        pos = np.clip(p, 0, 1) * (k - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, k - 1)
        rows = np.arange(len(samples))[:, None]
        frac = pos - lo
        return samples[rows, lo] * (1 - frac) + samples[rows, hi] * frac

    def cdf(self, polarity, g, x):
        samples = self._sorted(polarity, g)
        x = np.broadcast_to(np.asarray(x, dtype=float), (len(samples), np.shape(x)[-1]))
        return (samples[:, None, :] <= x[:, :, None]).mean(axis=2)

    def mean(self, polarity, g):
        return self._sorted(polarity, g).mean(axis=1)

    def std(self, polarity, g):
        return self._sorted(polarity, g).std(axis=1)

    def sample_dg(self, polarity, g, rng):
        return self._response(polarity, g, int(rng.integers(2**31)), 1)[:, 0]


# ------------------------------------------------------------------------------- kind


@dataclass
class JartKind(DeviceKind):
    """``preset``: a named noise configuration (:data:`PRESETS`) that ``d2d`` / ``c2c``
    written next to it extend; ``clip_n``: clip N to the weight bounds' [0.06, 1.98975];
    ``tabulate`` (noise-free only): pulses looked up in a :class:`StateTable`, for long runs
    whose pulses come a few devices at a time, where a simulated pulse costs its 100 steps'
    dispatch rather than its arithmetic (filling the whole table costs about a minute per
    polarity on one core)."""

    kind: ClassVar[str] = "jart"
    model_type: ClassVar[type] = JartModel  # as a truth of modeling-bias sweeps
    switches: ClassVar[dict[str, dict]] = {"d2d": {"d2d": {}}, "c2c": {"c2c": {}}}
    presets: ClassVar[dict[str, dict]] = PRESETS
    w_bound: ClassVar[float] = W_BOUND  # the read-current range maps onto +-0.6
    preset: str = "noise_free"
    d2d: dict = field(default_factory=dict)
    c2c: dict = field(default_factory=dict)
    clip_n: bool = True
    tabulate: bool = False

    @property
    def noisy(self) -> bool:
        return bool(self.d2d or self.c2c)

    @classmethod
    def from_model(cls, model: JartModel, ref: str = "") -> JartKind:
        return model.kind

    def as_model(self) -> JartModel:
        return JartModel(self)

    @classmethod
    def example(cls) -> JartKind:
        return cls.from_preset("realistic_mixed")

    @classmethod
    def from_preset(cls, name: str) -> JartKind:
        if name not in PRESETS:
            raise MemsimError(f"unknown jart preset {name!r} (known: {', '.join(PRESETS)})")
        cfg = PRESETS[name]
        from ..io.schema import Section

        return cls(name, parse_d2d(Section(cfg.get("d2d", {}), None, "d2d")),
                   parse_c2c(Section(cfg.get("c2c", {}), None, "c2c")))

    @classmethod
    def from_spec(cls, sec, base) -> JartKind:
        preset = sec.take("preset", str, "noise_free", choices=tuple(PRESETS))
        dev = cls.from_preset(preset)
        if sec.has("d2d"):
            dev.d2d = {**dev.d2d, **parse_d2d(sec.sub("d2d"))}
        if sec.has("c2c"):
            dev.c2c = {**dev.c2c, **parse_c2c(sec.sub("c2c"))}
        dev.clip_n = sec.take("clip_n", bool, True)
        dev.tabulate = sec.take("tabulate", bool, False)
        if dev.tabulate and dev.noisy:
            raise sec.error("tabulate", "needs a noise-free device (no d2d, no c2c): a noisy "
                            "device's own draws and walks are no function of N alone")
        return dev

    def resolved(self, relto=None) -> dict:
        """As every kind; ``tabulate`` is written only when on (the same device either way)."""
        out = super().resolved(relto)
        if not self.tabulate:
            out.pop("tabulate")
        return out

    def switched(self, states: dict[str, bool]) -> JartKind:
        """As every kind; the preset name then follows the noise that is left (a written spec
        merges ``d2d`` / ``c2c`` over its preset, so a stale name would bring noise back)."""
        out = super().switched(states)
        out.preset = out.matching_preset() or "noise_free"
        return out

    def matching_preset(self) -> str | None:
        for name in (self.preset, *PRESETS):
            known = self.from_preset(name)
            if (known.d2d, known.c2c) == (self.d2d, self.c2c):
                return name
        return None

    def describe(self) -> str:
        """``jart:PRESET`` when the noise is a named configuration, else ``jart``."""
        name = self.matching_preset()
        return ("jart" if name is None else f"jart:{name}") + \
            ("" if self.clip_n else "-unclipped")

    def g_range(self) -> tuple[float, float]:
        return I_MIN / V_READ, I_MAX / V_READ

    def nominal_step(self, polarities=("set",)) -> float:
        """Mean |dG| of one pulse of the nominal device over the range (N on a grid uniform
        in G): what a pulse-count controller calibrates dw_min on."""
        g_lo, g_hi = self.g_range()
        pop = JartPopulation(257, {}, {}, True)
        pop.program(torch.linspace(g_lo, g_hi, 257, dtype=torch.float64))
        start = pop.g.double().clone()
        steps = []
        for pol in polarities:
            pop.program(start)
            pop._pulse(None, pol == "set")
            steps.append(float((pop.g.double() - start).abs().mean()))
        return float(np.mean(steps))

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        return JartPopulation(shape, self.d2d, self.c2c, self.clip_n, device, seed, dtype,
                              tabulate=self.tabulate)
