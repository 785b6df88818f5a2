"""The ``table`` device kind: devices following jump tables (memsim .json, XBTorch triplet or
CrossSim LUT). Several tables give device-to-device variability, each device drawing one of
them at creation (or as assigned by ``choice``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..errors import MemsimError
from ..models.base import POLARITIES
from ..models.resolve import load_model, resolve_ref
from ..models.table import ConditionalTable, JumpTable, quantile_rows_at
from ..seeds import seed_for
from .base import ModelBackedKind
from .population import BOUNDS, Draws, Population, Workspace


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
        dg = self.stack.sample(g, t, self.draws, self.ws)
        if self.bounds == "reject":
            dg = dg.clone()  # redraws reuse the workspace buffers

            def redraw(pos, g=g, t=t):
                tt = t if isinstance(t, int) else t.index_select(0, pos)
                return self.stack.sample(g.index_select(0, pos), tt, self.draws, self.ws)

            self._redraw_leaving(g, dg, idx, redraw)
        g.add_(dg)
        self._clip(g, idx)
        self._scatter(idx, g)



@dataclass
class TableKind(ModelBackedKind):
    """Weights on jump-table devices."""

    kind: ClassVar[str] = "table"
    path_fields: ClassVar[tuple[str, ...]] = ('paths',)
    model_type: ClassVar[type] = JumpTable
    paths: list[str] = field(default_factory=list)
    unit: str = "S"
    bounds: str = "clip"  # a change leaving the range: clip, or reject (redrawn)
    models: list = field(default_factory=list, repr=False)

    @classmethod
    def from_spec(cls, sec, base) -> TableKind:
        path = sec.take("path", (str, list))
        paths = [path] if isinstance(path, str) else path
        if not paths or not all(isinstance(p, str) for p in paths):
            raise sec.error("path", "must be a table path or a list of them")
        unit = sec.take("unit", str, "S", choices=("S", "mS", "uS", "nS", "norm"))
        return cls(paths=[resolve_ref(p, base) for p in paths], unit=unit,
                   bounds=sec.take("bounds", str, "clip", choices=BOUNDS))

    @classmethod
    def example(cls) -> TableKind:
        """Two small tables (device-to-device choice between them) built in code."""
        edges = np.linspace(1e-6, 2e-6, 5)
        rows = np.linspace(-1, 1, 9)[None, :] * 2e-8
        models = [JumpTable({"set": ConditionalTable(edges, "quantile", quantiles=np.repeat(
                                 rows + k * 1e-8 + 1e-8, 4, axis=0)),
                             "reset": ConditionalTable(edges, "gaussian", means=np.full(4, -2e-8),
                                                       stds=np.full(4, 1e-8))}, 1e-6, 2e-6)
                  for k in range(2)]
        return cls(paths=["example-a", "example-b"], models=models)

    @classmethod
    def from_model(cls, model, ref: str = "") -> TableKind:
        return cls(paths=[ref] if ref else [], models=[model])

    def load(self) -> TableKind:
        if not self.models:
            if not self.paths:
                raise MemsimError("a table device needs a path")
            self.models = [load_model(p, unit=self.unit) for p in self.paths]
            self.check_models(", ".join(self.paths))
        return self

    def population(self, shape, *, device="cpu", seed: int = 0, choice=None,
                   dtype=torch.float32) -> Population:
        self.load()
        if choice is None and len(self.models) > 1:
            gen = torch.Generator().manual_seed(seed_for(seed, "choice"))
            choice = torch.randint(0, len(self.models), (int(np.prod(shape)),), generator=gen)
        pop = TablePopulation(self.models, shape, choice=choice, device=device, seed=seed,
                              dtype=dtype)
        pop.bounds = self.bounds
        return pop

    def resolved(self, relto=None) -> dict:
        out = super().resolved(relto)
        out["path"] = out.pop("paths")  # the spec's key
        return out

    def describe(self) -> str:
        return f"table:{','.join(Path(p).name for p in self.paths)}"
