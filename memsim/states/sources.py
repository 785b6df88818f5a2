"""Where state look-up tables come from: one loader per source, and the registry of them.

* ``levy``: measured multi-level 1T1R RRAM (device_data/levy_multilevel, MIT, A. Levy): about
  16,000 cells programmed by write-verify to one of 32 levels and read as they relax; choose
  the levels that become states and the read times. Without ``file:``, the table shipped with
  memsim, wherever the spec lies.
* ``synaptogen``: the generative HfOx 1T1R model of the PyPI package ``synaptogen`` (MIT,
  T. Hennen; fitted to measured cycling): cells SET at -2 V, then RESET to each stop voltage
  in turn (intermediate states), then fully RESET at its U_max; read at 0.2 V, every cycle.
* ``csv``: the user's own measurements, ``state,value[,device][,cycle][,time]``.

Adding a source is a function ``(Section, base_dir) -> StateLUT`` and a line in ``SOURCES``;
``base_dir`` (a str or Path, or None: the working directory) is what relative files are
relative to.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from .. import seeds
from ..errors import MemsimError
from ..io.paths import ROOT
from ..io.schema import Section
from ..units import SCALE_TO_SIEMENS
from .lut import StateLUT

LEVY_COLUMNS = ["addr", "time_abs", "r", "g", "gi", "range", "timept"]
LEVY_LEVELS = 32
RESISTANCE_UNITS = {"ohm": 1.0, "kohm": 1e3, "Mohm": 1e6}
CSV_UNITS = (*SCALE_TO_SIEMENS, *RESISTANCE_UNITS)
LEVY_FILE = ROOT / "device_data" / "levy_multilevel" / "techC_relaxdata.min.tsv.gz"


def _resolve(path: str | Path, base_dir: str | Path | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else Path(base_dir) / p


def _times(sec: Section, default: list[float]) -> list[float]:
    times = sec.number_list("times", default)
    if sorted(times) != list(times) or len(set(times)) != len(times):
        raise sec.error("times", "must be increasing (the first is the reference read time)")
    return [float(t) for t in times]


def levy_lut(sec: Section, base_dir: str | Path | None) -> StateLUT:
    file = sec.take("file", str, None)
    levels = sec.number_list("levels", [0, LEVY_LEVELS - 1], integer=True)
    if any(not 0 <= v < LEVY_LEVELS for v in levels) or len(set(levels)) != len(levels):
        raise sec.error("levels", f"must be distinct levels between 0 and {LEVY_LEVELS - 1}")
    if len(levels) < 2:
        raise sec.error("levels", "needs at least 2 levels")
    times = _times(sec, [0.0])
    path = LEVY_FILE if file is None else _resolve(file, base_dir)
    if not path.exists():
        raise MemsimError("file not found", path)
    try:
        raw = pd.read_csv(path, sep="\t", header=None, names=LEVY_COLUMNS,
                          usecols=["addr", "g", "range", "timept"])
    except (ValueError, OSError, EOFError) as exc:
        raise MemsimError(f"cannot read the Levy relaxation table ({exc})", path) from None
    missing = [t for t in times if not np.isclose(raw["timept"], t).any()]
    if missing:
        raise sec.error("times", f"no reads at {missing[0]:g} s in {path.name} (it has "
                                 f"{', '.join(f'{t:g}' for t in sorted(raw['timept'].unique()))})")
    levels = sorted(levels)
    keep = raw[raw["range"].isin(levels)]
    time = np.array(times)[np.abs(keep["timept"].to_numpy()[:, None] - np.array(times)).argmin(1)]
    near = np.isclose(keep["timept"].to_numpy(), time)
    keep = keep[near]
    data = pd.DataFrame({"state": keep["range"].map({v: i for i, v in enumerate(levels)}),
                         "time": time[near], "g": keep["g"].to_numpy(np.float64),
                         "device": -1})
    return StateLUT(sec.take("name", str, f"levy_{len(levels)}"), [f"L{v}" for v in levels],
                    data.reset_index(drop=True), source=str(path), times=times)


@contextlib.contextmanager
def _seeded_synaptogen(seed: int):
    """synaptogen draws from a module-level, unseeded numpy generator; its draws become
    reproducible by pointing its two sampling functions at a seeded one for the duration."""
    from functools import partial

    import synaptogen.synaptogen as sg

    saved = sg.randn, sg.rand
    gen = seeds.rng(seed, "variation")
    sg.randn = partial(gen.standard_normal, dtype=np.float32)
    sg.rand = partial(gen.random, dtype=np.float32)
    try:
        yield sg
    finally:
        sg.randn, sg.rand = saved


MAX_SYNAPTOGEN_READS = 10**7  # cells x cycles: what simulates in minutes and fits in memory


def synaptogen_lut(sec: Section, base_dir: str | Path | None) -> StateLUT:
    cells = sec.take("cells", int, 1000, check=lambda v: v >= 2, check_msg="must be at least 2")
    cycles = sec.take("cycles", int, 100, check=lambda v: v >= 2,
                      check_msg="must be at least 2")
    if cells * cycles > MAX_SYNAPTOGEN_READS:
        raise sec.error("cycles", f"cells x cycles must be at most {MAX_SYNAPTOGEN_READS:,} "
                                  f"(each is simulated), not {cells * cycles:,}")
    stops = sec.number_list("reset_stops", [], nonempty=False)
    seed = sec.seed()
    set_voltage = sec.take("set_voltage", (int, float), -2.0)
    try:
        import synaptogen  # noqa: F401
    except ImportError:
        raise MemsimError("source synaptogen needs the package synaptogen==0.2.0 "
                          "(`make setup` installs it)") from None
    with _seeded_synaptogen(seed) as sg:
        u_max = float(sg.default_params.Umax)
        if any(not 0 < v < u_max for v in stops) or sorted(stops) != stops:
            raise sec.error("reset_stops", f"must be increasing voltages between 0 and the "
                                           f"full-RESET voltage {u_max:g} V")
        array = sg.CellArrayCPU(cells)
        reads = np.empty((cycles, len(stops) + 2, cells))
        for c in range(cycles):  # cycles are sequential in time; cells are vectorized
            sg.applyVoltage(array, np.float32(set_voltage))
            reads[c, 0] = sg.Iread(array)
            for i, v in enumerate(stops):
                sg.applyVoltage(array, np.float32(v))
                reads[c, 1 + i] = sg.Iread(array)
            sg.applyVoltage(array, np.float32(u_max))
            reads[c, -1] = sg.Iread(array)
        read_v = float(sg.Uread)
    g = reads / read_v
    labels = ["LRS", *[f"RESET_{v:g}V" for v in stops], "HRS"]
    cyc, state, dev = np.meshgrid(np.arange(cycles), np.arange(len(labels)), np.arange(cells),
                                  indexing="ij")
    data = pd.DataFrame({"state": state.ravel(), "time": 0.0, "g": g.ravel(),
                         "device": dev.ravel(), "cycle": cyc.ravel()})
    return _ordered(StateLUT(sec.take("name", str, f"synaptogen_{len(labels)}"), labels, data,
                             source="synaptogen", times=[0.0]))


def _ordered(lut: StateLUT) -> StateLUT:
    """The same LUT with states renumbered by ascending median conductance."""
    order = np.argsort(lut.medians())
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    data = lut.data.assign(state=rank[lut.data["state"].to_numpy()])
    return StateLUT(lut.name, [lut.states[i] for i in order], data, lut.source, lut.times)


def read_state_csv(path: str | Path, unit: str, name: str | None = None) -> StateLUT:
    """A user's state measurements: header ``state,value`` and optionally ``device``,
    ``cycle``, ``time`` (s since programming, default 0). ``unit``: S/mS/uS/nS for conductances
    or ohm/kohm/Mohm for resistances."""
    path = Path(path)
    if unit not in CSV_UNITS:
        raise MemsimError(f"unknown unit {unit!r}; use one of {', '.join(CSV_UNITS)}", path,
                          "unit")
    if not path.is_file():
        raise MemsimError("is a folder, not a CSV file" if path.is_dir() else "file not found",
                          path)
    try:
        frame = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MemsimError(f"not a readable CSV ({str(exc).splitlines()[0]})", path) from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise MemsimError(f"column {repeated[0]!r} is given twice", path, "line 1")
    for col in ("state", "value"):
        if col not in frame:
            raise MemsimError(f"missing column {col!r} (header must start state,value and may "
                              "add device, cycle, time)", path, "line 1")
    unknown = [c for c in frame.columns if c not in ("state", "value", "device", "cycle", "time")]
    if unknown:
        raise MemsimError(f"unknown column {unknown[0]!r} (allowed: state, value, device, "
                          "cycle, time)", path, "line 1")
    out = {}
    for col in ("value", "device", "cycle", "time"):
        if col not in frame:
            continue
        num = pd.to_numeric(frame[col], errors="coerce")
        bad = num.isna() | ~np.isfinite(num)
        if col in ("device", "cycle"):
            bad |= num.notna() & (num % 1 != 0)
        if col == "value":
            bad |= num <= 0
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            what = {"value": "a positive number", "time": "a number"}.get(col, "an integer")
            raise MemsimError(f"{col} must be {what}, found {frame[col].iloc[i]!r}", path,
                              f"line {i + 2}")
        out[col] = num.to_numpy(np.float64)
    if frame["state"].isna().any():
        i = int(np.flatnonzero(frame["state"].isna().to_numpy())[0])
        raise MemsimError("empty state", path, f"line {i + 2}")
    value = out["value"]
    g = 1.0 / (value * RESISTANCE_UNITS[unit]) if unit in RESISTANCE_UNITS \
        else value * SCALE_TO_SIEMENS[unit]
    labels = sorted(frame["state"].str.strip().unique())
    if len(labels) < 2:
        raise MemsimError(f"needs at least 2 states, found {len(labels)}", path)
    index = {lab: i for i, lab in enumerate(labels)}
    data = pd.DataFrame({"state": frame["state"].str.strip().map(index).to_numpy(),
                         "time": out.get("time", np.zeros(len(g))), "g": g,
                         "device": out.get("device", np.full(len(g), -1)).astype(np.int64)})
    if "cycle" in out:
        data["cycle"] = out["cycle"].astype(np.int64)
    return _ordered(StateLUT(name or path.stem, labels, data, source=str(path)))


def csv_lut(sec: Section, base_dir: str | Path | None) -> StateLUT:
    file = sec.take("file", str)
    unit = sec.take("unit", str, choices=CSV_UNITS)
    lut = read_state_csv(_resolve(file, base_dir), unit, sec.take("name", str, None))
    times = _times(sec, lut.times)
    missing = [t for t in times if t not in lut.times]
    if missing:
        raise sec.error("times", f"no values at time {missing[0]:g} s in {file}")
    return StateLUT(lut.name, lut.states, lut.data, lut.source, times)


SOURCES = {"levy": levy_lut, "synaptogen": synaptogen_lut, "csv": csv_lut}


def parse_lut(sec: Section, base_dir: str | Path | None = None) -> StateLUT:
    """A LUT from one spec entry (``source:`` names the loader, the rest are its options)."""
    source = sec.take("source", str, choices=tuple(SOURCES))
    return SOURCES[source](sec, base_dir)
