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

from ..seeds import seed_for, substreams


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
        *torch_seeds, np_seed = substreams(seed, 3)
        for s in torch_seeds:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(s)
            self.gens.append(gen)
        self.np = np.random.Generator(np.random.PCG64(np_seed))

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


BOUNDS = ("clip", "reject")
REJECT_ROUNDS = 16


class Population(ABC):
    """Many devices of one kind; state tensors are flat, ``shape`` is the user's view.

    ``bounds`` says what a change that would leave [g_min, g_max] does: ``clip`` (the device
    saturates at the bound) or ``reject`` (the change is redrawn, up to REJECT_ROUNDS times:
    the one-pulse distribution truncated to the range, as Algorithm 2's rejected data show it;
    a device that still leaves the range is clipped, for where the model (almost) always leaves
    it the truncated distribution does not exist)."""

    clips = True  # conductances stay within [g_min, g_max]
    exact_programming = True  # program() reaches its targets (write-verify)
    bounds = "clip"

    def __init__(self, shape, device="cpu", seed: int = 0, dtype=torch.float32):
        self.shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list))
                                            else (shape,)))
        self.numel = int(np.prod(self.shape)) if self.shape else 1
        self.device = torch.device(device)
        self.dtype = dtype
        self.seed = int(seed)  # the population's root: its streams derive from it
        self.draws = Draws(self.device, seed_for(seed, "device"))
        self.generator = self.draws.generator
        self.g = torch.zeros(self.numel, dtype=dtype, device=self.device)
        self.ws = Workspace(self.device)
        self.pulses_applied = 0
        # pulses each device received: the endurance cost of an update algorithm
        self.device_pulses = torch.zeros(self.numel, dtype=torch.int32, device=self.device)

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

    def budget_used(self) -> torch.Tensor | None:
        """Per device, the share of its pulse budget used since it was programmed, for models
        whose range is a pulse count (a refresh then re-forms spent devices); None: the
        refresh judges saturation by conductance."""
        return None

    def _after_program(self, mask) -> None:  # noqa: B027 - optional hook
        """Hook for models with hidden state (pulse counters, noise state) to re-sync."""

    def _clip(self, g: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        lo, hi = self.g_min, self.g_max
        if isinstance(lo, torch.Tensor):
            lo = lo if idx is None else lo.index_select(0, idx)
            hi = hi if idx is None else hi.index_select(0, idx)
            return torch.minimum(torch.maximum(g, lo), hi, out=g)
        return g.clamp_(lo, hi)

    def _range_of(self, idx):
        lo, hi = self.g_min, self.g_max
        if isinstance(lo, torch.Tensor) and idx is not None:
            lo, hi = lo.index_select(0, idx), hi.index_select(0, idx)
        return lo, hi

    def _redraw_leaving(self, g: torch.Tensor, dg: torch.Tensor, idx, redraw) -> None:
        """``bounds: reject``: redraw (in place) the changes ``dg`` that would take ``g`` out
        of range; ``redraw(positions)`` gives fresh changes for those positions of ``g``."""
        lo, hi = self._range_of(idx)
        for _ in range(REJECT_ROUNDS):
            new = g + dg
            bad = ((new < lo) | (new > hi)).nonzero().squeeze(1)
            if bad.numel() == 0:
                return
            dg.index_copy_(0, bad, redraw(bad))

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
        self.device_pulses.index_add_(0, idx, mag.to(torch.int32))
        self.pulses_applied += total
        return total

    def pulse_all(self, polarity: str, n: int = 1) -> None:
        """``n`` pulses of one polarity on every device (pulse trains, benchmarks)."""
        is_set = polarity == "set"
        for _ in range(n):
            self._pulse(None, is_set)
        self.pulses_applied += n * self.numel
        self.device_pulses += n

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

