"""Jump-table file formats: memsim's own, XBTorch's triplets and CrossSim's LUTs.

memsim format (``*.json``)::

    {"format": "memsim-jump-table", "version": 1, "unit": "S", "g_min": .., "g_max": ..,
     "metadata": {method, parameters, source file hash, N, unit, seed, ...},
     "set":   {"edges": [K+1], "kind": "quantile", "quantiles": [[Q+1] x K], "counts": [K]},
     "reset": {"edges": [K+1], "kind": "gaussian", "mean": [K], "std": [K]}}

Quantile rows are the dG quantiles at p = 0, 1/Q, ..., 1 (linear in between). All values are
in the file's ``unit`` (memsim writes siemens).

Level formats (XBTorch, CrossSim) list conductance *levels*; a device at G uses the row of the
nearest level, and the first and last levels bound the range. memsim reads them as bins whose
edges are the midpoints between levels. To write arbitrary bin edges exactly, every interior
edge e is written as two levels e - d and e + d (d tiny) carrying the rows of the two bins it
separates, so export -> import reproduces the bins.

* XBTorch: ``PREFIX_{set,reset}_axis_level_G.txt`` (L levels), ``..._axis_level_dG.txt`` (D
  change levels), ``..._cdf.txt`` (L x D, P(dG <= dG_j | G_i)); linear between dG levels.
* CrossSim: ``dG_increasing.txt`` (SET) / ``dG_decreasing.txt`` (RESET): a title line, the G
  levels, the CDF points, then the dG matrix (rows = CDF points, columns = G levels); either
  file may be gzip-compressed (``dG_increasing.txt.gz``), as large measured LUTs are shipped.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

import numpy as np
import torch

from .. import units
from ..errors import MemsimError
from ..io.storage import atomic_write, write_json
from .base import POLARITIES, DeviceModel
from .table import ConditionalTable, JumpTable, probability_grid

FORMAT_TAG = "memsim-jump-table"
IMPORT_Q = 512  # probability-grid resolution for tables imported from CDF formats
CROSSSIM_FILES = {"set": "dG_increasing.txt", "reset": "dG_decreasing.txt"}
XBTORCH_PARTS = ("axis_level_G", "axis_level_dG", "cdf")


# ------------------------------------------------------------------ memsim format


def table_document(table: JumpTable) -> dict:
    """A jump table as the JSON document of memsim's format."""
    doc = {"format": FORMAT_TAG, "version": 1, "unit": table.unit,
           "g_min": table.g_min, "g_max": table.g_max, "metadata": table.metadata}
    for pol in POLARITIES:
        doc[pol] = table.tables[pol].to_dict()
    return doc


def write_table(table: JumpTable, path: str | Path) -> None:
    write_json(path, table_document(table))


def read_table(path: str | Path) -> JumpTable:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise MemsimError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MemsimError(f"not a JSON file ({exc})", path) from None
    except OSError as exc:
        raise MemsimError(f"cannot read file ({exc.__class__.__name__})", path) from None
    return table_from_document(doc, path)


def table_from_document(doc, source: str | Path = "table") -> JumpTable:
    path = Path(source)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_TAG:
        raise MemsimError(f"not a memsim jump table (missing \"format\": \"{FORMAT_TAG}\")", path)
    try:
        unit = doc.get("unit", units.SIEMENS)
        scale = units.factor(unit)  # memsim writes siemens; other units are scaled to S
        tables = {pol: _polarity_table(doc[pol], pol).scaled(scale) for pol in POLARITIES}
        internal = units.ARBITRARY if unit in ("norm", units.ARBITRARY) else units.SIEMENS
        return JumpTable(tables, float(doc["g_min"]) * scale, float(doc["g_max"]) * scale,
                         internal, doc.get("metadata", {}), name=path.stem)
    except KeyError as exc:
        raise MemsimError(f"missing key {exc}", path) from None
    except MemsimError as err:
        raise MemsimError(err.problem, path, err.where) from None
    except (TypeError, ValueError) as exc:
        raise MemsimError(f"malformed table ({exc})", path) from None


def _polarity_table(d, pol: str) -> ConditionalTable:
    """One polarity's table of a document; its problems are placed in that polarity."""
    try:
        return ConditionalTable.from_dict(d)
    except MemsimError as err:
        raise MemsimError(err.problem, None, " ".join(filter(None, (pol, err.where)))) from None


# ------------------------------------------------------------------ level formats


def _levels_to_edges(levels: np.ndarray, file) -> np.ndarray:
    if not np.all(np.isfinite(levels)):
        raise MemsimError("conductance levels hold NaN or inf", file)
    if levels.ndim != 1 or len(levels) < 2 or np.any(np.diff(levels) <= 0):
        raise MemsimError("conductance levels must be strictly increasing (at least 2)", file)
    return np.concatenate([[levels[0]], (levels[1:] + levels[:-1]) / 2, [levels[-1]]])


def _merge_equal_bins(table: ConditionalTable) -> ConditionalTable:
    """Join neighbouring bins with identical distributions (undoes the edge-pair encoding)."""
    rows = table.quantiles if table.kind == "quantile" else np.stack([table.means, table.stds], 1)
    same = np.all(rows[1:] == rows[:-1], axis=1)
    keep = np.concatenate([[True], ~same])
    edges = np.concatenate([table.edges[:-1][keep], [table.edges[-1]]])
    if table.kind == "quantile":
        return ConditionalTable(edges, "quantile", quantiles=table.quantiles[keep])
    return ConditionalTable(edges, "gaussian", means=table.means[keep], stds=table.stds[keep])


def _edges_to_levels(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels whose nearest-level cells are exactly the bins; returns (levels, bin per level)."""
    k = len(edges) - 1
    d = np.min(np.diff(edges)) * 1e-6
    inner = edges[1:-1]
    levels = np.empty(2 * k)
    levels[0], levels[-1] = edges[0], edges[-1]
    levels[1:-1:2] = inner - d
    levels[2:-1:2] = inner + d
    return levels, np.repeat(np.arange(k), 2)


def invert_cdf_rows(x: np.ndarray, cdf: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Quantiles at ``p`` of piecewise-linear CDF rows (n, D) given at points ``x`` (D,)."""
    n, d = cdf.shape
    pt = torch.tensor(np.broadcast_to(p, (n, len(p))))
    j = torch.searchsorted(torch.from_numpy(np.ascontiguousarray(cdf)), pt).numpy()  # F_j >= p
    lo = np.clip(j - 1, 0, d - 1)
    hi = np.clip(j, 0, d - 1)
    flo = np.take_along_axis(cdf, lo, 1)
    fhi = np.take_along_axis(cdf, hi, 1)
    width = fhi - flo
    frac = np.where(width > 0, (p[None, :] - flo) / np.where(width > 0, width, 1), 0.0)
    out = x[lo] + np.clip(frac, 0, 1) * (x[hi] - x[lo])
    out = np.where(j == 0, x[0], out)
    out = np.where(j >= d, x[-1], out)
    # p = 0: the distribution starts where the CDF leaves zero (the last point with F = 0),
    # not at the start of the shared axis
    last_zero = np.clip((cdf <= 0).sum(axis=1) - 1, 0, d - 1)
    return np.where(p[None, :] <= 0, x[last_zero][:, None], out)


def _table_from_cdf(levels, x, cdf, file, q=IMPORT_Q) -> ConditionalTable:
    if cdf.shape != (len(levels), len(x)):
        raise MemsimError(f"CDF matrix is {cdf.shape[0]}x{cdf.shape[1]}, expected "
                          f"{len(levels)} G levels x {len(x)} dG levels", file)
    if not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise MemsimError("dG levels must be finite and strictly increasing", file)
    if not np.all(np.isfinite(cdf)) or cdf.min() < -1e-9 or cdf.max() > 1 + 1e-9:
        raise MemsimError("CDF values must be finite and within [0, 1]", file)
    if np.any(np.diff(cdf, axis=1) < -1e-9):
        row = int(np.argmax(np.any(np.diff(cdf, axis=1) < -1e-9, axis=1)))
        raise MemsimError("CDF row decreases", file, f"row {row + 1}")
    rows = invert_cdf_rows(x, np.clip(cdf, 0, 1), probability_grid(q))
    table = ConditionalTable(_levels_to_edges(levels, file), "quantile", quantiles=rows)
    return _merge_equal_bins(table)


def _loadtxt(path: Path, ndim: int) -> np.ndarray:
    import warnings

    if not path.exists():
        raise MemsimError("file not found", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns about empty files: we say it once
            arr = np.loadtxt(path, ndmin=ndim)
    except ValueError as exc:
        raise MemsimError(f"not a table of numbers ({exc})", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MemsimError(f"cannot read file ({exc.__class__.__name__})", path) from None
    if arr.size == 0:
        raise MemsimError("file holds no numbers", path)
    return arr


def xbtorch_prefix(path: str | Path) -> Path:
    """The common prefix of an XBTorch triplet from any of its files or the prefix itself."""
    p = Path(path)
    m = re.match(r"(.*)_(set|reset)_(axis_level_G|axis_level_dG|cdf)\.txt$", p.name)
    if m:
        return p.with_name(m.group(1))
    return p


def read_xbtorch(path: str | Path, unit: str = "S") -> JumpTable:
    prefix = xbtorch_prefix(path)
    scale = units.factor(unit)
    tables, lo, hi = {}, [], []
    for pol in POLARITIES:
        files = {part: Path(f"{prefix}_{pol}_{part}.txt") for part in XBTORCH_PARTS}
        levels = _loadtxt(files["axis_level_G"], 1).ravel() * scale
        x = _loadtxt(files["axis_level_dG"], 1).ravel() * scale
        cdf = _loadtxt(files["cdf"], 2)
        tables[pol] = _table_from_cdf(levels, x, cdf, files["cdf"])
        lo.append(levels[0])
        hi.append(levels[-1])
    return _finish_import(tables, lo, hi, unit, prefix, "xbtorch")


def _finish_import(tables, lo, hi, unit, source, fmt) -> JumpTable:
    g_min, g_max = min(lo), max(hi)
    for t in tables.values():
        t.edges[0], t.edges[-1] = g_min, g_max
    internal = units.ARBITRARY if unit == "norm" else units.SIEMENS
    return JumpTable(tables, g_min, g_max, internal,
                     {"method": "import", "format": fmt, "source": str(source)},
                     name=Path(source).name)


def write_xbtorch(model: DeviceModel, prefix: str | Path, dg_levels: int = 1000) -> list[Path]:
    """Export as an XBTorch triplet per polarity; returns the files written."""
    prefix = Path(prefix)
    written = []
    for pol in POLARITIES:
        levels, rows = _export_levels(model, pol)
        x = _dg_axis(model, pol, levels, dg_levels)
        cdf = model.cdf(pol, levels, x)
        cdf = np.maximum.accumulate(np.clip(cdf, 0, 1), axis=1)
        for part, arr in (("axis_level_G", levels), ("axis_level_dG", x), ("cdf", cdf)):
            path = Path(f"{prefix}_{pol}_{part}.txt")
            with atomic_write(path) as fh:
                np.savetxt(fh, arr, fmt="%.17g")
            written.append(path)
    return written


def _export_levels(model: DeviceModel, pol: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(model, JumpTable):
        levels, rows = _edges_to_levels(model.tables[pol].edges)
        return levels, rows
    levels = np.linspace(model.g_min, model.g_max, 200)
    return levels, np.arange(len(levels))


def _dg_axis(model: DeviceModel, pol: str, levels: np.ndarray, n: int) -> np.ndarray:
    tails = model.quantile(pol, levels, np.array([1e-6, 1 - 1e-6]))
    lo, hi = float(tails.min()), float(tails.max())
    if hi <= lo:
        hi = lo + max(abs(lo), 1e-30) * 1e-6
    return np.linspace(lo, hi, n)


def crosssim_dir(path: str | Path) -> Path:
    p = Path(path)
    names = {*CROSSSIM_FILES.values(), *(n + ".gz" for n in CROSSSIM_FILES.values())}
    return p.parent if p.name in names else p


def crosssim_file(folder: str | Path, polarity: str) -> Path:
    """The LUT file of ``polarity`` in ``folder``: plain text, or gzip-compressed."""
    plain = Path(folder) / CROSSSIM_FILES[polarity]
    packed = plain.with_name(plain.name + ".gz")
    return packed if packed.exists() and not plain.exists() else plain


def is_crosssim(path: str | Path) -> bool:
    """Whether ``path`` names a CrossSim LUT (its folder or one of its files)."""
    folder = crosssim_dir(path)
    return folder != Path(path) or (folder.is_dir() and crosssim_file(folder, "set").exists())


def read_crosssim(path: str | Path, unit: str = "S") -> JumpTable:
    folder = crosssim_dir(path)
    scale = units.factor(unit)
    tables, lo, hi = {}, [], []
    for pol in CROSSSIM_FILES:
        file = crosssim_file(folder, pol)
        if not file.exists():
            raise MemsimError("file not found (a CrossSim LUT needs dG_increasing.txt and "
                              "dG_decreasing.txt)", file)
        try:
            text = (gzip.decompress(file.read_bytes()).decode() if file.suffix == ".gz"
                    else file.read_text())
            lines = [ln for ln in text.splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise MemsimError(f"cannot read file ({exc.__class__.__name__})", file) from None
        if len(lines) < 5:
            raise MemsimError("too short for a CrossSim LUT (title, G levels, CDF points, "
                              "dG rows)", file)
        try:
            levels = np.loadtxt(io.StringIO(lines[1]), delimiter=",", ndmin=1) * scale
            probs = np.loadtxt(io.StringIO(lines[2]), delimiter=",", ndmin=1)
            mat = np.loadtxt(io.StringIO("\n".join(lines[3:])), delimiter=",", ndmin=2) * scale
        except ValueError as exc:
            raise MemsimError(f"not a CrossSim LUT ({exc})", file) from None
        if mat.shape != (len(probs), len(levels)):
            raise MemsimError(f"dG matrix is {mat.shape[0]}x{mat.shape[1]}, expected "
                              f"{len(probs)} CDF points x {len(levels)} G levels", file)
        if not (np.all(np.diff(probs) >= 0) and probs[0] >= 0 and probs[-1] <= 1):  # NaN too
            raise MemsimError("CDF points must increase within [0, 1]", file, "line 3")
        if not np.all(np.isfinite(mat)):
            raise MemsimError("dG matrix holds NaN or inf", file)
        # one quantile function per G level. CrossSim draws a column's values at uniform
        # random CDF points, so their order carries no information: measured LUTs whose
        # columns dip (crosssim_taox 1, 22, 35, 41) or a reversed LUT are the distribution of
        # their values, sorted (a running maximum would flatten them into point masses)
        rows = np.sort(mat.T, axis=1)
        uniform = len(probs) > 1 and np.allclose(probs, np.linspace(0, 1, len(probs)),
                                                 atol=1e-12)
        if not uniform:
            rows = _resample_quantiles(probs, rows, probability_grid(IMPORT_Q))
        table = ConditionalTable(_levels_to_edges(levels, file), "quantile", quantiles=rows)
        tables[pol] = _merge_equal_bins(table)
        lo.append(levels[0])
        hi.append(levels[-1])
    return _finish_import(tables, lo, hi, unit, folder, "crosssim")


def _resample_quantiles(probs, rows, grid) -> np.ndarray:
    """Quantile rows given at ``probs`` (linear between), evaluated on ``grid``; ends held."""
    return np.stack([np.interp(grid, probs, r) for r in rows])


def write_crosssim(model: DeviceModel, folder: str | Path, q: int = 256) -> list[Path]:
    folder = Path(folder)
    written = []
    for pol, name in CROSSSIM_FILES.items():
        levels, rows_of = _export_levels(model, pol)
        if isinstance(model, JumpTable):
            table = model.tables[pol].to_quantile(q)
            probs = probability_grid(table.q)
            mat = table.quantiles[rows_of].T
        else:
            probs = probability_grid(q)
            mat = model.quantile(pol, levels, np.clip(probs, 1e-4, 1 - 1e-4)).T
        buf = io.StringIO()
        buf.write("1st Row = Gbins, 2nd Row = CDF Points, 3rd row onward = dG matrix "
                  "(rows= CDF, columns = Gbins); written by memsim\n")
        buf.write(",".join(f"{v:.17g}" for v in levels) + "\n")
        buf.write(",".join(f"{v:.17g}" for v in probs) + "\n")
        for row in mat:
            buf.write(",".join(f"{v:.17g}" for v in row) + "\n")
        path = folder / name
        with atomic_write(path) as fh:
            fh.write(buf.getvalue())
        written.append(path)
    return written
