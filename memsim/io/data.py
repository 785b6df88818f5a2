"""Device data I/O: pulse-response CSV files into (G, dG) points per polarity.

Three CSV layouts are understood (``fmt="auto"`` tells them apart):

* ``tidy``: a header with ``polarity,g,dg`` and optionally ``device``. ``g`` is the conductance
  before a pulse, ``dg`` its change after one pulse, ``polarity`` is ``set`` or ``reset``.
* ``ramps``: wide, one column per ramp of consecutive readings under identical pulses (as in
  CrossSim's ``set.csv``/``reset.csv``); an empty cell ends a ramp. The polarity of the whole
  file is given, or inferred from the net direction of its ramps.
* ``updown``: two columns, potentiation (SET) trace then depression (RESET) trace, with or
  without an ``up,down`` header (as in the Gong et al. trace shipped with aihwkit).

Traces are differenced into (g, dg) pairs and kept as well, for the pulse-train comparison of
a model against the measured ramps. Values are converted to memsim's internal unit
(:mod:`memsim.units`). Every problem is reported as a :class:`~memsim.errors.MemsimError` naming
the file, the row or column and what is wrong. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import units
from ..errors import MemsimError
from .storage import sha256_file

POLARITIES = ("set", "reset")
FORMATS = ("auto", "tidy", "ramps", "updown")
TIDY_COLUMNS = ("polarity", "g", "dg")
# two-column trace headers naming the polarity of each column
UPDOWN_NAMES = {"up": "set", "set": "set", "potentiation": "set", "ltp": "set",
                "down": "reset", "reset": "reset", "depression": "reset", "ltd": "reset"}


@dataclass
class Points:
    """(G, dG) pairs of one polarity; ``device`` labels the measured device of each pair."""

    g: np.ndarray
    dg: np.ndarray
    device: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.g)

    def take(self, idx: np.ndarray) -> Points:
        dev = None if self.device is None else self.device[idx]
        return Points(self.g[idx], self.dg[idx], dev)


@dataclass
class PulseData:
    """Pulse-response data of one device type, in memsim's internal unit."""

    points: dict[str, Points]
    unit: str = units.SIEMENS
    traces: dict[str, list[np.ndarray]] = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for pol in POLARITIES:
            self.points.setdefault(pol, Points(np.empty(0), np.empty(0)))
            self.traces.setdefault(pol, [])

    def n(self, polarity: str | None = None) -> int:
        if polarity is None:
            return sum(len(p) for p in self.points.values())
        return len(self.points[polarity])

    def g_range(self) -> tuple[float, float]:
        """Smallest interval holding every conductance seen, before and after a pulse."""
        vals = [np.concatenate([p.g, p.g + p.dg]) for p in self.points.values() if len(p)]
        allv = np.concatenate(vals)
        return float(allv.min()), float(allv.max())

    def sha256(self) -> str:
        return ",".join(s["sha256"] for s in self.sources) or "generated"

    def with_points(self, points: dict[str, Points]) -> PulseData:
        return PulseData(points, self.unit, {p: [] for p in POLARITIES}, list(self.sources))

    def to_frame(self, unit: str | None = None) -> pd.DataFrame:
        """A tidy table (polarity, g, dg[, device]); values divided into ``unit`` if given."""
        scale = units.factor(unit) if unit else 1.0
        frames = []
        for pol in POLARITIES:
            p = self.points[pol]
            cols = {"polarity": pol, "g": p.g / scale, "dg": p.dg / scale}
            if p.device is not None:
                cols["device"] = p.device
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)


def write_tidy_csv(data: PulseData, path: str | Path, unit: str = "S") -> None:
    from .storage import write_csv

    write_csv(path, data.to_frame(unit if data.unit == units.SIEMENS else None))


# ----------------------------------------------------------------------------- reading


def load_device_data(paths, unit: str = "S", read_voltage: float | None = None,
                     fmt: str = "auto", polarity: str | None = None) -> PulseData:
    """Read one or more CSV files of one device type into a :class:`PulseData`.

    ``polarity`` forces the polarity of ramp files (otherwise inferred from their trend).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if fmt not in FORMATS:
        raise MemsimError(f"unknown data format {fmt!r}; use one of {', '.join(FORMATS)}")
    if polarity is not None and polarity not in POLARITIES:
        raise MemsimError(f"polarity must be 'set' or 'reset', not {polarity!r}")
    merged: dict[str, list[Points]] = {p: [] for p in POLARITIES}
    traces: dict[str, list[np.ndarray]] = {p: [] for p in POLARITIES}
    sources, out_unit = [], None
    next_device = 0
    for path in paths:
        part = _read_one(Path(path), unit, read_voltage, fmt, polarity)
        out_unit = part.unit
        labels = [p.device for p in part.points.values() if p.device is not None and len(p)]
        for pol in POLARITIES:
            pts = part.points[pol]
            if pts.device is not None:  # device labels stay distinct across files
                pts = Points(pts.g, pts.dg, pts.device + next_device)
            if len(pts):
                merged[pol].append(pts)
            traces[pol].extend(part.traces[pol])
        if labels:
            next_device += int(max(lab.max() for lab in labels)) + 1
        sources.extend(part.sources)
    points = {pol: _concat(merged[pol]) for pol in POLARITIES}
    data = PulseData(points, out_unit or units.SIEMENS, traces, sources)
    where = ", ".join(str(p) for p in paths)
    if data.n() == 0:
        raise MemsimError("no (g, dg) points could be read", where)
    for pol in POLARITIES:
        g = data.points[pol].g
        if len(g) > 1 and np.ptp(g) == 0:
            raise MemsimError(f"column g is constant ({g[0]:g}) for polarity {pol}: "
                              "a jump table needs a range of conductances", where)
    return data


def _concat(parts: list[Points]) -> Points:
    if not parts:
        return Points(np.empty(0), np.empty(0))
    devs = [p.device for p in parts]
    device = None
    if all(d is not None for d in devs):
        device = np.concatenate(devs)
    return Points(np.concatenate([p.g for p in parts]), np.concatenate([p.dg for p in parts]),
                  device)


def _read_one(path: Path, unit: str, read_voltage: float | None, fmt: str,
              polarity: str | None) -> PulseData:
    if not path.exists():
        raise MemsimError("file not found", path)
    if path.is_dir():
        raise MemsimError("is a directory, expected a CSV file", path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise MemsimError(f"cannot read file ({exc.__class__.__name__}: {exc})", path) from None
    # instrument exports carry '#' comment lines: dropped with the blank lines, and error
    # messages still name the line of the file
    lines = text.splitlines()
    kept = [i + 1 for i, ln in enumerate(lines)
            if ln.strip() and not ln.lstrip().startswith("#")]
    if not kept:
        raise MemsimError("file holds only comments" if text.strip() else "file is empty", path)
    text = "\n".join(lines[i - 1] for i in kept)
    try:
        raw = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                          skipinitialspace=True, skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1]
        raise MemsimError(f"not a readable CSV table ({msg})", path) from None
    raw = raw.apply(lambda c: c.str.strip())
    first = list(raw.iloc[0])
    has_header = any(_is_text(v) for v in first)
    header = [str(v).strip().lower() for v in first] if has_header else None
    body = raw.iloc[1:] if has_header else raw
    line0 = np.array(kept[1:] if has_header else kept)  # file line of each body row
    if fmt == "auto":
        fmt = _detect_format(header, raw.shape[1])
    if body.shape[0] == 0:
        raise MemsimError("no data rows below the header", path)
    if fmt == "tidy":
        data = _parse_tidy(path, header, body, line0, unit, read_voltage)
    elif fmt == "updown":
        pols = ["set", "reset"]
        if header is not None and all(h in UPDOWN_NAMES for h in header):
            pols = [UPDOWN_NAMES[h] for h in header]
        data = _parse_traces(path, header, body, line0, unit, read_voltage, pols)
    else:
        data = _parse_traces(path, header, body, line0, unit, read_voltage, polarity)
    data.sources = [{"path": str(path), "sha256": sha256_file(path), "format": fmt}]
    return data


def _is_text(value: str) -> bool:
    if value == "":
        return False
    try:
        float(value)
        return False
    except ValueError:
        return True


def _detect_format(header: list[str] | None, ncols: int) -> str:
    if header is not None and set(header) & {*TIDY_COLUMNS, "device"}:
        return "tidy"
    if header is not None and len(header) == 2 and all(h in UPDOWN_NAMES for h in header) \
            and {UPDOWN_NAMES[h] for h in header} == {"set", "reset"}:
        return "updown"
    if header is None and ncols == 2:
        return "updown"
    return "ramps"


def _numeric(body: pd.DataFrame, col: int, name: str, path: Path, line0: np.ndarray,
             allow_empty: bool = False) -> np.ndarray:
    """Column ``col`` of ``body`` as float64; one-line error at the first bad cell."""
    cells = body.iloc[:, col]
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
    empty = (cells == "").to_numpy()
    bad_text = np.isnan(values) & ~empty & ~cells.str.lower().isin(["nan", "-nan"]).to_numpy()
    if bad_text.any():
        i = int(np.argmax(bad_text))
        raise MemsimError(f"{cells.iloc[i]!r} is not a number", path,
                          f"line {line0[i]}, column {name!r}")
    nonfinite = ~np.isfinite(values) & ~empty
    if nonfinite.any():
        i = int(np.argmax(nonfinite))
        raise MemsimError(f"value {cells.iloc[i]!r} is not finite (NaN/inf)", path,
                          f"line {line0[i]}, column {name!r}")
    if not allow_empty and empty.any():
        i = int(np.argmax(empty))
        raise MemsimError("empty cell", path, f"line {line0[i]}, column {name!r}")
    return values


def _check_conductance(g: np.ndarray, unit: str, path: Path, line0: np.ndarray, name: str,
                       rows: np.ndarray | None = None) -> None:
    if unit == "norm":
        return  # normalised traces may be negative by construction
    neg = g < 0
    if neg.any():
        i = int(np.argmax(neg))
        line = line0[int(rows[i]) if rows is not None else i]
        raise MemsimError(f"negative conductance {g[i]:g} (unit {unit}); "
                          "use --unit norm for normalised data", path,
                          f"line {line}, column {name!r}")


def _parse_tidy(path, header, body, line0, unit, read_voltage) -> PulseData:
    if header is None:
        raise MemsimError("a tidy table needs a header row polarity,g,dg", path)
    for col in TIDY_COLUMNS:
        if col not in header:
            near = difflib.get_close_matches(col, header, n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise MemsimError(f"missing column {col!r}{hint}; found columns "
                              f"{', '.join(header)}", path, "header")
    idx = {name: header.index(name) for name in header}
    pol = body.iloc[:, idx["polarity"]].str.lower().to_numpy()
    bad = ~np.isin(pol, POLARITIES)
    if bad.any():
        i = int(np.argmax(bad))
        raise MemsimError(f"polarity {body.iloc[i, idx['polarity']]!r} is not 'set' or 'reset'",
                          path, f"line {line0[i]}, column 'polarity'")
    g = _numeric(body, idx["g"], "g", path, line0)
    dg = _numeric(body, idx["dg"], "dg", path, line0)
    _check_conductance(g, unit, path, line0, "g")
    _check_conductance(g + dg, unit, path, line0, "dg")
    g, out_unit = units.to_internal(g, unit, read_voltage, str(path))
    dg, _ = units.to_internal(dg, unit, read_voltage, str(path))
    device = None
    if "device" in idx:
        labels = body.iloc[:, idx["device"]].to_numpy()
        _, device = np.unique(labels, return_inverse=True)
    points = {}
    for p in POLARITIES:
        m = pol == p
        points[p] = Points(g[m], dg[m], None if device is None else device[m])
    return PulseData(points, out_unit)


def _parse_traces(path, header, body, line0, unit, read_voltage, polarity) -> PulseData:
    """Ramps or up/down traces: each column is a run of readings; differences give dg."""
    ncols = body.shape[1]
    names = header if header is not None else [f"column {j + 1}" for j in range(ncols)]
    if isinstance(polarity, list) and ncols != len(polarity):
        raise MemsimError(f"an up/down trace needs exactly {len(polarity)} columns, found {ncols}",
                          path)
    ramps: list[tuple[int, np.ndarray]] = []  # (column, readings)
    out_unit = units.SIEMENS
    for j in range(ncols):
        try:
            col = _numeric(body, j, names[j], path, line0, allow_empty=True)
        except MemsimError as err:
            if body.iloc[:, j].str.lower().isin(POLARITIES).any():
                if set(TIDY_COLUMNS) <= {str(n).strip().lower() for n in names}:
                    raise MemsimError("a tidy table (polarity,g,dg), not traces: read it with "
                                      "format tidy or auto", path, "header") from None
                raise MemsimError("looks like a tidy table, but the header lacks "
                                  f"{','.join(TIDY_COLUMNS)} (found {', '.join(names)})",
                                  path, "header") from None
            raise err
        n = int(np.argmax(np.isnan(col))) if np.isnan(col).any() else len(col)
        ramp = col[:n]
        _check_conductance(ramp, unit, path, line0, names[j])
        ramp, out_unit = units.to_internal(ramp, unit, read_voltage, str(path))
        if len(ramp) >= 2:
            ramps.append((j, ramp))
    if not ramps:
        raise MemsimError("no column holds two or more consecutive readings", path)
    if isinstance(polarity, list):  # updown: first column SET, second RESET
        pols = {j: polarity[j] for j, _ in ramps}
    else:
        if polarity is None:
            trends = np.array([float(r[-1] - r[0]) for _, r in ramps])
            ups, downs = int((trends > 0).sum()), int((trends < 0).sum())
            if min(ups, downs) >= max(1, len(ramps) // 5):
                raise MemsimError(f"the ramps go both up ({ups}) and down ({downs}): give SET "
                                  "and RESET ramps in separate files, or say --polarity (or "
                                  "--format updown for an up,down pair)", path)
            polarity = "set" if trends.sum() > 0 else "reset"
        pols = {j: polarity for j, _ in ramps}
    points: dict[str, list[Points]] = {p: [] for p in POLARITIES}
    traces: dict[str, list[np.ndarray]] = {p: [] for p in POLARITIES}
    for j, ramp in ramps:
        pol = pols[j]
        points[pol].append(Points(ramp[:-1], np.diff(ramp), np.full(len(ramp) - 1, j)))
        traces[pol].append(ramp)
    return PulseData({p: _concat(points[p]) for p in POLARITIES}, out_unit, traces)
