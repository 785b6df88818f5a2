"""Populations: the state of many simulated devices, pulsed all at once with torch.

A population holds a flat tensor state (at least the conductance ``g``) for any number of
devices, on CPU or CUDA, and applies a tensor of signed pulse counts (positive = SET,
negative = RESET). Multi-pulse counts are applied one pulse at a time through the device model
(a jump table describes ONE pulse), vectorized across devices: devices are sorted by pulse
count once, so pulse k touches only the prefix of devices that still need it.

Subclasses implement ``_pulse(idx, is_set)``: one pulse on devices ``idx`` (``None`` = all).
That is the whole contract a new device physics must meet; training never looks further.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from .errors import MemsimError
from .models import POLARITIES, ConditionalTable, DeviceModel, JumpTable, quantile_rows_at


class Workspace:
    """Reusable scratch tensors. Fresh multi-megabyte CPU allocations cost page faults on every
    pulse; keeping the buffers makes a pulse on a million devices several times faster."""

    def __init__(self, device: torch.device):
        self.device = device
        self.bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, n: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self.bufs.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            buf = torch.empty(n, dtype=dtype, device=self.device)
            self.bufs[name] = buf
        return buf[:n]


_POOL = None
PARALLEL_DRAW = 1 << 18  # draws this large are split over two generators


def _pool():
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(1, thread_name_prefix="memsim-rng")
    return _POOL


class Draws:
    """Seeded random draws for one population (or one rounding stream).

    Uniforms on CPU come from numpy's PCG64, about twice as fast as torch's CPU generator
    (writing straight into the torch buffer). Normals and all CUDA draws use torch generators;
    large CPU normal draws are split in two halves filled concurrently, a split that depends
    only on the size, so results never depend on the number of threads."""

    def __init__(self, device: torch.device, seed: int):
        self.device = torch.device(device)
        self.gens = []
        for k in range(2):
            gen = torch.Generator(device=self.device)
            gen.manual_seed(int(seed) * 2 + k)
            self.gens.append(gen)
        self.np = np.random.Generator(np.random.PCG64(int(seed)))

    @property
    def generator(self) -> torch.Generator:
        return self.gens[0]

    def uniform_(self, buf: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu" and buf.dtype in (torch.float32, torch.float64):
            self.np.random(out=buf.numpy(), dtype=np.float32 if buf.dtype == torch.float32
                           else np.float64)
            return buf
        return buf.uniform_(generator=self.gens[0])

    def rounding_uniform(self, n: int) -> torch.Tensor:
        """Uniforms (k + 1/2) / 2^16 for stochastic rounding, float32.

        Sixteen random bits per draw (four from each 64-bit PCG64 output, four times cheaper
        than float draws): the rounding probability of any fraction is exact to 2^-16, i.e.
        E[floor(x + u)] = x up to 8e-6 of a pulse."""
        if self.device.type != "cpu":
            return torch.rand(n, generator=self.gens[0], device=self.device)
        raw = self.np.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n]
        if getattr(self, "_u16", None) is None or self._u16.numel() != n:
            self._u16 = torch.empty(n, dtype=torch.float32)
        np.copyto(self._u16.numpy(), raw, casting="unsafe")
        return self._u16.add_(0.5).mul_(1.0 / 65536)

    def normal_(self, buf: torch.Tensor) -> torch.Tensor:
        n = buf.numel()
        if n < PARALLEL_DRAW:
            return buf.normal_(generator=self.gens[0])
        half = n // 2
        first, second = buf[:half], buf[half:]
        if self.device.type == "cpu" and torch.get_num_threads() > 1:
            job = _pool().submit(second.normal_, generator=self.gens[1])
            first.normal_(generator=self.gens[0])
            job.result()
        else:
            first.normal_(generator=self.gens[0])
            second.normal_(generator=self.gens[1])
        return buf


class Population(ABC):
    """Many devices of one kind; state tensors are flat, ``shape`` is the user's view."""

    def __init__(self, shape, device="cpu", seed: int = 0, dtype=torch.float32):
        self.shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list))
                                            else (shape,)))
        self.numel = int(np.prod(self.shape)) if self.shape else 1
        self.device = torch.device(device)
        self.dtype = dtype
        self.draws = Draws(self.device, seed)
        self.generator = self.draws.generator
        self.g = torch.zeros(self.numel, dtype=dtype, device=self.device)
        self.ws = Workspace(self.device)
        self.pulses_applied = 0

    # -- range of each device; floats when shared, else flat tensors
    g_min: float | torch.Tensor
    g_max: float | torch.Tensor

    def conductance(self) -> torch.Tensor:
        return self.g.view(self.shape)

    def program(self, target, mask: torch.Tensor | None = None) -> None:
        """Write-verify to a target conductance (ideal programming), clipped to the range."""
        target = torch.as_tensor(target, dtype=self.dtype, device=self.device)
        target = torch.broadcast_to(target, self.shape).reshape(-1)
        new = self._clip(target.clone())
        if mask is None:
            self.g.copy_(new)
        else:
            m = mask.reshape(-1)
            self.g.copy_(torch.where(m, new, self.g))
        self._after_program(mask)

    def _after_program(self, mask) -> None:  # noqa: B027 - optional hook
        """Hook for models with hidden state (pulse counters, noise state) to re-sync."""

    def _clip(self, g: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        lo, hi = self.g_min, self.g_max
        if isinstance(lo, torch.Tensor):
            lo = lo if idx is None else lo.index_select(0, idx)
            hi = hi if idx is None else hi.index_select(0, idx)
            return torch.minimum(torch.maximum(g, lo), hi, out=g)
        return g.clamp_(lo, hi)

    def apply(self, counts: torch.Tensor) -> int:
        """Apply signed pulse counts (same shape as the population); returns pulses applied."""
        c = counts.reshape(-1)
        idx = c.nonzero().squeeze(1)
        if idx.numel() == 0:
            return 0
        return self.apply_sparse(idx, c.index_select(0, idx))

    def apply_sparse(self, idx: torch.Tensor, n: torch.Tensor) -> int:
        """Signed pulse counts ``n`` for the distinct flat device indices ``idx``."""
        if idx.numel() == 0:
            return 0
        mag = n.abs()
        mag, order = torch.sort(mag, descending=True)
        if int(mag[0]) == 0:
            return 0
        idx = idx.index_select(0, order)
        is_set = n.index_select(0, order) > 0
        per_level = torch.bincount(mag, minlength=int(mag[0]) + 1)
        active = per_level.flip(0).cumsum(0).flip(0).tolist()  # devices needing >= k pulses
        for k in range(1, len(active)):
            a = active[k]
            self._pulse(idx[:a], is_set[:a])
        total = int(sum(active[1:]))
        self.pulses_applied += total
        return total

    def pulse_all(self, polarity: str, n: int = 1) -> None:
        """``n`` pulses of one polarity on every device (pulse trains, benchmarks)."""
        is_set = polarity == "set"
        for _ in range(n):
            self._pulse(None, is_set)
        self.pulses_applied += n * self.numel

    @abstractmethod
    def _pulse(self, idx: torch.Tensor | None, is_set) -> None:
        """One pulse on devices ``idx`` (None: all); ``is_set`` a bool or a bool tensor."""

    def _gather(self, idx):
        if idx is None:
            return self.g
        return torch.index_select(self.g, 0, idx, out=self.ws.get("g", idx.numel(), self.dtype))

    def _scatter(self, idx, g) -> None:
        if idx is not None:
            self.g.index_copy_(0, idx, g)


# ---------------------------------------------------------------------- jump tables


def _regular_grid(edges: np.ndarray) -> tuple[float, float] | None:
    """(origin, width) if bin k is [origin + k*width, origin + (k+1)*width] clipped to the range
    (uniform bins, or uniform levels whose end bins are half as wide); else None."""
    w = np.diff(edges)
    if len(w) == 1:
        return float(edges[0]), float(w[0])
    inner = w[1:-1] if len(w) > 2 else w
    h = float(np.median(inner))
    if len(w) > 2 and not np.allclose(inner, h, rtol=1e-6, atol=0):
        return None
    if len(w) == 2:
        h = float(max(w))
    if w[0] > h * (1 + 1e-6) or w[-1] > h * (1 + 1e-6):
        return None
    return float(edges[1] - h), h


class TableStack:
    """Several conditional tables compiled into flat tensors for vectorized sampling.

    Table ``t`` of the stack is addressed per device; a bin is found from a uniform grid of
    cells over the table's range (plus one comparison per edge that can fall inside a cell),
    so the cost of a lookup does not grow with the number of bins.
    """

    MAX_CELLS = 1 << 16

    def __init__(self, tables: list[ConditionalTable], ranges: list[tuple[float, float]],
                 device, dtype=torch.float32):
        self.n_tables = len(tables)
        self.device = torch.device(device)
        self.dtype = dtype
        ks = [t.n_bins for t in tables]
        offsets = np.concatenate([[0], np.cumsum(ks)[:-1]]).astype(np.int64)
        lo = np.array([r[0] for r in ranges], dtype=float)
        hi = np.array([r[1] for r in ranges], dtype=float)
        grids = [_regular_grid(t.edges) for t in tables]
        self.identity = len(set(ks)) == 1 and all(gr is not None for gr in grids)
        if self.identity:  # bin = floor((g - origin) / width), clipped
            self.cells = ks[0]
            self.n_corr = 0
            self.cell_bin = None
            origin = np.array([gr[0] for gr in grids])
            inv = np.array([1.0 / gr[1] for gr in grids])
            base = offsets
        else:  # a fine uniform grid of cells, each mapped to the bin at its left boundary
            widths = [np.min(np.diff(t.edges)) for t in tables]
            self.cells = int(min(self.MAX_CELLS,
                                 max(int(np.ceil((h - low) / w)) for h, low, w
                                     in zip(hi, lo, widths, strict=True))))
            self.cells = max(self.cells, max(ks))
            cell_bin, n_corr = [], 0
            for t, off, low, h in zip(tables, offsets, lo, hi, strict=True):
                bounds = np.linspace(low, h, self.cells + 1)
                first = np.clip(np.searchsorted(t.edges, bounds[:-1], "right") - 1, 0,
                                t.n_bins - 1)
                last = np.clip(np.searchsorted(t.edges, bounds[1:], "left") - 1, 0,
                               t.n_bins - 1)
                n_corr = max(n_corr, int(np.max(last - first)))
                cell_bin.append(first + off)
            self.n_corr = n_corr  # edges that can fall inside one cell: one compare each
            self.cell_bin = torch.tensor(np.concatenate(cell_bin), dtype=torch.int32,
                                         device=self.device)
            upper = np.concatenate([np.append(t.edges[1:-1], np.inf) for t in tables])
            self.upper = torch.tensor(upper, dtype=dtype, device=self.device)
            origin, inv = lo, self.cells / (hi - lo)
            base = np.arange(self.n_tables) * self.cells
        self.offsets = offsets
        self.lo_list = origin.tolist()
        self.inv_list = inv.tolist()
        self.lo = torch.tensor(origin, dtype=dtype, device=self.device)
        self.inv = torch.tensor(inv, dtype=dtype, device=self.device)
        self.base_list = [int(v) for v in base]
        self.base = torch.tensor(base, dtype=torch.int32, device=self.device)

        kinds = {t.kind for t in tables}
        self.has_gauss = "gaussian" in kinds
        self.has_quant = "quantile" in kinds
        q = max((t.q for t in tables if t.kind == "quantile"), default=0)
        self.q = q
        total = int(sum(ks))
        mu = np.zeros(total)
        sd = np.zeros(total)
        is_gauss = np.zeros(total, dtype=bool)
        rows = np.zeros((total, q + 1)) if self.has_quant else None
        for t, off in zip(tables, offsets, strict=True):
            sl = slice(off, off + t.n_bins)
            if t.kind == "gaussian":
                mu[sl], sd[sl], is_gauss[sl] = t.means, t.stds, True
            else:
                rows[sl] = t.quantiles if t.q == q else quantile_rows_at(
                    t.quantiles, np.linspace(0, 1, q + 1))
        kw = {"dtype": dtype, "device": self.device}
        self.mu = torch.tensor(mu, **kw)
        self.sd = torch.tensor(sd, **kw)
        self.is_gauss = torch.tensor(is_gauss, device=self.device)
        # neighbouring quantiles side by side as one complex number: a single gather fetches
        # both ends of the probability cell (half the memory traffic of two gathers)
        self.pairs = None
        if rows is not None:
            both = torch.tensor(np.stack([rows[:, :-1], rows[:, 1:]], axis=-1), **kw)
            self.pairs = torch.view_as_complex(both.contiguous()).reshape(-1)

    def bins(self, g: torch.Tensor, t, ws: Workspace) -> torch.Tensor:
        """Global bin index (int32) of each conductance under table(s) ``t``."""
        n = g.numel()
        x = ws.get("x", n, self.dtype)
        if isinstance(t, int):
            torch.sub(g, self.lo_list[t], out=x).mul_(self.inv_list[t])
        else:
            torch.sub(g, self.lo.index_select(0, t), out=x).mul_(self.inv.index_select(0, t))
        b = ws.get("b", n, torch.int32)
        b.copy_(x).clamp_(0, self.cells - 1)
        if isinstance(t, int):
            if self.base_list[t]:
                b.add_(self.base_list[t])
        else:
            b.add_(self.base.index_select(0, t))
        if self.identity:
            return b
        b = torch.index_select(self.cell_bin, 0, b, out=ws.get("cb", n, torch.int32))
        for _ in range(self.n_corr):
            b.add_(g >= self.upper.index_select(0, b))
        return b

    def sample(self, g: torch.Tensor, t, draws: Draws, ws: Workspace) -> torch.Tensor:
        """One dG per conductance; returns a workspace buffer."""
        n = g.numel()
        b = self.bins(g, t, ws)
        out = ws.get("dg", n, self.dtype)
        if not self.has_quant:  # Gaussian bins only: draw normals directly
            z = draws.normal_(ws.get("u", n, self.dtype))
            return torch.index_select(self.mu, 0, b, out=out).addcmul_(
                self.sd.index_select(0, b), z)
        u = draws.uniform_(ws.get("u", n, self.dtype))
        if self.has_quant:
            q = self.q
            u.mul_(q)
            cell = torch.floor(u, out=ws.get("cell", n, self.dtype))
            u.sub_(cell)  # position within the probability cell
            flat = ws.get("flat", n, torch.int32)
            flat.copy_(cell).clamp_(0, q - 1)
            flat.add_(b * q if self.has_gauss else b.mul_(q))
            pair = torch.index_select(self.pairs, 0, flat,
                                      out=ws.get("pair", n, self.pairs.dtype))
            ends = torch.view_as_real(pair)
            torch.lerp(ends[:, 0], ends[:, 1], u, out=out)
            if not self.has_gauss:
                return out
            u = (u + cell).div_(q)  # the uniform draw again, for the Gaussian bins
        z = torch.special.ndtri(u.clamp_(1e-7, 1 - 1e-7))
        gauss = self.mu.index_select(0, b).addcmul_(self.sd.index_select(0, b), z)
        return torch.where(self.is_gauss.index_select(0, b), gauss, out)


class TablePopulation(Population):
    """Devices following jump tables; each device may use its own table (``choice``)."""

    def __init__(self, tables: list[JumpTable], shape, choice: torch.Tensor | None = None,
                 device="cpu", seed=0, dtype=torch.float32):
        super().__init__(shape, device, seed, dtype)
        conds, ranges = [], []
        for tab in tables:
            for pol in POLARITIES:
                conds.append(tab.tables[pol])
                ranges.append((tab.g_min, tab.g_max))
        self.tables = tables
        self.stack = TableStack(conds, ranges, self.device, dtype)
        lows = {tab.g_min for tab in tables}
        highs = {tab.g_max for tab in tables}
        if choice is None or len(tables) == 1:
            self.choice = None
        else:
            self.choice = torch.as_tensor(choice, device=self.device).reshape(-1).to(torch.int32)
            if self.choice.numel() != self.numel:
                raise MemsimError("table choice must give one table per device")
        if len(lows) == 1 and len(highs) == 1:
            self.g_min, self.g_max = float(tables[0].g_min), float(tables[0].g_max)
        else:
            lo = torch.tensor([t.g_min for t in tables], dtype=dtype, device=self.device)
            hi = torch.tensor([t.g_max for t in tables], dtype=dtype, device=self.device)
            self.g_min = lo.index_select(0, self.choice)
            self.g_max = hi.index_select(0, self.choice)
        if isinstance(self.g_min, float):
            self.g.fill_(self.g_min)
        else:
            self.g.copy_(self.g_min)

    def _table_index(self, idx, is_set):
        if self.choice is None and isinstance(is_set, bool):
            return 0 if is_set else 1
        if isinstance(is_set, bool):
            is_set = torch.full((self.numel if idx is None else idx.numel(),), is_set,
                                device=self.device)
        t = (~is_set).to(torch.int32)
        if self.choice is not None:
            ch = self.choice if idx is None else self.choice.index_select(0, idx)
            t = t.add_(ch * 2)
        return t

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        t = self._table_index(idx, is_set)
        g.add_(self.stack.sample(g, t, self.draws, self.ws))
        self._clip(g, idx)
        self._scatter(idx, g)


# ---------------------------------------------------------------- synthetic / ideal


class SyntheticPopulation(Population):
    """Devices following a synthetic Gaussian-profile model, optionally with device-to-device
    variability: each device's mean and spread scaled by a factor ~ N(1, d2d^2) drawn once."""

    def __init__(self, model, shape, device="cpu", seed=0, dtype=torch.float32, d2d=0.0):
        super().__init__(shape, device, seed, dtype)
        self.model = model
        self.g_min, self.g_max = float(model.g_min), float(model.g_max)
        self.g.fill_(self.g_min)
        self.scale = None
        if d2d > 0:
            z = torch.randn(self.numel, generator=self.generator, device=self.device,
                            dtype=dtype)
            self.scale = (1 + d2d * z).clamp_(min=0)

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        if isinstance(is_set, bool):
            pol = "set" if is_set else "reset"
            mu, sd = self.model.means[pol](g), self.model.stds[pol](g)
        else:
            mu = torch.where(is_set, self.model.means["set"](g), self.model.means["reset"](g))
            sd = torch.where(is_set, self.model.stds["set"](g), self.model.stds["reset"](g))
        z = torch.randn(g.shape, generator=self.generator, device=self.device, dtype=self.dtype)
        dg = mu.addcmul_(sd.clamp_(min=0), z)
        if self.scale is not None:
            dg.mul_(self.scale if idx is None else self.scale.index_select(0, idx))
        g.add_(dg)
        self._clip(g, idx)
        self._scatter(idx, g)


class IdealPopulation(Population):
    """An ideal linear device: every pulse moves G by exactly +-step, no noise."""

    def __init__(self, g_min: float, g_max: float, levels: int, shape, device="cpu", seed=0,
                 dtype=torch.float32):
        super().__init__(shape, device, seed, dtype)
        self.g_min, self.g_max = float(g_min), float(g_max)
        self.step = (self.g_max - self.g_min) / levels
        self.g.fill_(self.g_min)

    def _pulse(self, idx, is_set) -> None:
        g = self._gather(idx)
        if isinstance(is_set, bool):
            g.add_(self.step if is_set else -self.step)
        else:
            g.add_(torch.where(is_set, self.step, -self.step))
        self._clip(g, idx)
        self._scatter(idx, g)


def population_for(model: DeviceModel, shape, device="cpu", seed=0, g0=None,
                   dtype=torch.float32) -> Population:
    """The natural population of a device model, started at ``g0`` (default: G_min)."""
    from .synthetic import SyntheticDevice

    if isinstance(model, JumpTable):
        pop = TablePopulation([model], shape, device=device, seed=seed, dtype=dtype)
    elif isinstance(model, SyntheticDevice):
        pop = SyntheticPopulation(model, shape, device=device, seed=seed, dtype=dtype)
    else:
        raise MemsimError(f"no population for a {type(model).__name__}")
    if g0 is not None:
        pop.program(g0)
    return pop
