"""The ``memsim fit`` experiment: data -> jump table -> device-level metrics -> files.

Input is either measured data (CSV files, see :mod:`memsim.io.data`) or a device model used as a
truth generator (a table file or a synthetic preset: N points per polarity are drawn from it
with Algorithm 2). Evaluation comes first: a fraction of the points is held out, the method is
fitted on the rest and scored against the held-out points (``table: holdout`` rows of
metrics.csv, out of sample). Then the method is run again on every point, and that table is
the one exported, checked over its whole G range against the data's ΔG range
(``reference: data_range``) and scored against the truth whenever it is known.

A fit spec (YAML)::

    name: tiox_1.5V_optuna
    source: ../device_data/xbtorch_tiox/optuna_exp_1.5V   # data CSV(s) or a model
    n: 3000                # points per polarity when the source is a model
    unit: S                # data unit: S, mS, uS, nS, A (with read_voltage), norm
    method: optuna         # binning | optuna | smooth
    optuna: {trials: 100, folds: 5}
    holdout: 0.2
    seed: 0
    export: [xbtorch, crosssim]
    out: ../results/fit/tiox_1.5V_optuna

Relative paths in a spec are relative to the spec file.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import seeds, units
from ..errors import MemsimError
from ..io.data import FORMATS as INPUT_FORMATS
from ..io.data import POLARITIES, PulseData, load_device_data
from ..io.paths import portable
from ..io.schema import Section, load_yaml
from ..io.storage import save_figure, write_csv, write_text
from ..metrics import distances as metrics
from ..metrics.pulse_trains import read_noise_fraction
from ..models import formats
from ..models.base import DeviceModel
from ..models.resolve import load_model, ref_name, resolve_ref
from ..models.sampling import MAX_POINTS, sample_points
from ..units import INPUT_UNITS, to_internal
from . import plots
from .base import FitMethod, require_both_polarities
from .registry import METHODS
from .sanity import table_sanity

EXPORTS = ("xbtorch", "crosssim")
MANAGED = ("table.json", "metrics.csv", "search.csv", "spec.yaml", "fit.png", "table.png",
           "pulse_train.png", "xbtorch", "crosssim")  # what write_fit_outputs owns in a folder


@dataclass
class FitSpec:
    source: list[str]
    name: str = "fit"
    n: int = 3000
    truth: str | None = None
    unit: str = "S"
    read_voltage: float | None = None
    format: str = "auto"
    polarity: str | None = None
    method: str = "binning"
    methods: dict[str, FitMethod] = field(
        default_factory=lambda: {name: cls() for name, cls in METHODS.items()})
    holdout: float = 0.2
    seed: int = 0
    g_range: list[float] | None = None
    export: list[str] = field(default_factory=list)
    out: str | None = None
    plots: bool = True

    @property
    def fitter(self) -> FitMethod:
        """The configured method of this fit."""
        return self.methods[self.method]

    def resolved(self, relto: Path | None = None) -> dict:
        """The spec as written to the output's spec.yaml: paths relative to ``relto``."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "methods"}
        d["source"] = portable(self.source, relto)
        d["truth"] = portable(self.truth, relto)
        d["out"] = portable(self.out, relto)
        d[self.method] = self.fitter.portable_doc(relto)
        return d


def parse_fit_spec(data: dict, file=None) -> FitSpec:
    sec = Section(data, file)
    base = Path(file).parent if file is not None else None
    source = sec.take("source", (str, list))
    sources = [source] if isinstance(source, str) else source
    if not sources or not all(isinstance(s, str) for s in sources):
        raise sec.error("source", "must be a path or a list of paths")
    spec = FitSpec(source=[resolve_ref(s, base) for s in sources])
    spec.name = sec.take("name", str, default_name(sources) if file is None else Path(file).stem,
                         check=_plain_name,
                         check_msg="must be a plain file name: not empty, without /, \\ or ..")
    spec.n = sec.take("n", int, spec.n, check=lambda v: 0 < v <= MAX_POINTS,
                      check_msg=f"must be between 1 and {MAX_POINTS:,} points per polarity")
    truth = sec.take("truth", str, None)
    spec.truth = None if truth is None else resolve_ref(truth, base)
    spec.unit = sec.take("unit", str, spec.unit, choices=INPUT_UNITS)
    spec.read_voltage = sec.take("read_voltage", float, None, check=lambda v: v > 0,
                                 check_msg="must be positive")
    spec.format = sec.take("format", str, "auto", choices=INPUT_FORMATS)
    spec.polarity = sec.take("polarity", str, None, choices=POLARITIES)
    spec.method = sec.take("method", str, spec.method, choices=METHODS)
    for name, cls in METHODS.items():  # every method's section is checked, one is used
        sub = sec.sub(name, {})
        spec.methods[name] = cls.from_spec(sub, base)
        if name == "optuna" and not sub.has("study_name"):  # a stored study is the spec's
            spec.methods[name].settings.study_name = spec.name
        sub.done()
    spec.holdout = sec.take("holdout", float, 0.2, check=lambda v: 0 <= v < 1,
                            check_msg="must be in [0, 1)")
    spec.seed = sec.seed()
    if sec.has("g_range"):
        rng = sec.number_list("g_range")
        if len(rng) != 2 or not rng[1] > rng[0]:
            raise sec.error("g_range", "must be [low, high] with high > low")
        spec.g_range = [float(v) for v in rng]
    else:
        sec.take("g_range", None, None)
    export = sec.take("export", (str, list), [])
    spec.export = [export] if isinstance(export, str) else list(export)
    for e in spec.export:
        if e not in EXPORTS:
            raise sec.error("export", f"must list formats among {', '.join(EXPORTS)}, not {e!r}")
    spec.out = sec.out_dir(base)
    spec.plots = sec.take("plots", bool, True)
    sec.done()
    return spec


def _plain_name(name: str) -> bool:
    """Whether ``name`` can name files inside the output folder (an XBTorch export's prefix)
    without leaving it."""
    return bool(name.strip()) and not any(part in name for part in ("/", "\\", ".."))


def default_name(sources: list[str]) -> str:
    return ref_name(sources)


def load_fit_spec(path) -> FitSpec:
    """A fit spec from its YAML file (relative paths relative to it)."""
    return parse_fit_spec(load_yaml(path), path)


# --------------------------------------------------------------------------- running


@dataclass
class FitResult:
    spec: FitSpec
    table: DeviceModel
    train: PulseData
    heldout: PulseData | None
    truth: DeviceModel | None
    metrics: pd.DataFrame
    records: list[dict]
    full: PulseData
    warnings: list[str] = field(default_factory=list)  # see warnings_for


class FitWarning(UserWarning):
    """Something a device engineer should know before trusting a fitted table."""


def _is_csv_source(sources: list[str]) -> bool:
    return all(Path(s).suffix.lower() in (".csv", ".tsv", ".txt") and not
               s.endswith(("_cdf.txt", "_axis_level_G.txt", "_axis_level_dG.txt",
                           "dG_increasing.txt", "dG_decreasing.txt")) for s in sources)


def load_source(spec: FitSpec) -> tuple[PulseData, DeviceModel | None]:
    """The data to fit, and the generating model when the source is a model."""
    if _is_csv_source(spec.source):
        data = load_device_data(spec.source, spec.unit, spec.read_voltage, spec.format,
                                spec.polarity)
        return data, None
    if len(spec.source) != 1:
        raise MemsimError("give either CSV data files or one device model as the source")
    model = load_model(spec.source[0], unit=spec.unit if spec.unit != "A" else "S")
    return sample_points(model, spec.n, spec.seed), model


def _trace_devices(pts, traces: list[np.ndarray]) -> np.ndarray:
    """The device label of each measured ramp: the label whose points are that ramp's
    (readings before each pulse, differences); -1 for a ramp no labelled device matches."""
    if pts.device is None or not traces:
        return np.full(len(traces), -1)
    order = np.argsort(pts.device, kind="stable")  # keeps each device's points in ramp order
    labels, starts = np.unique(pts.device[order], return_index=True)
    by_points: dict[bytes, list[int]] = {}
    for label, g, dg in zip(labels, np.split(pts.g[order], starts[1:]),
                            np.split(pts.dg[order], starts[1:]), strict=True):
        by_points.setdefault(g.tobytes() + dg.tobytes(), []).append(int(label))
    # identical ramps (the same readings twice) take their labels in order
    return np.array([(by_points.get(t[:-1].tobytes() + np.diff(t).tobytes()) or [-1]).pop(0)
                     for t in traces])


def split_holdout(data: PulseData, fraction: float, seed: int) -> tuple[PulseData, PulseData]:
    """Hold out ``fraction`` of the points of each polarity: whole ramps (devices) when there
    are at least five, since the changes along one ramp are correlated; else single points.
    Each part keeps the measured ramps whose devices it holds whole (with single points held
    out, no ramp is out of sample: the held-out part has none)."""
    train, held = {}, {}
    train_traces, held_traces = {}, {}
    for i, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        rng = seeds.rng(seed, "holdout", i)
        n_held = int(round(fraction * len(pts)))
        if pts.device is not None and len(np.unique(pts.device)) >= 5:
            groups = rng.permutation(np.unique(pts.device))
            sizes = np.array([np.sum(pts.device == d) for d in groups])
            take = groups[: max(1, int(np.searchsorted(np.cumsum(sizes), n_held)) + 1)]
            mask = np.isin(pts.device, take)
            held[pol], train[pol] = pts.take(np.flatnonzero(mask)), pts.take(
                np.flatnonzero(~mask))
            traces = data.traces[pol]
            owner = _trace_devices(pts, traces)
            held_traces[pol] = [t for t, d in zip(traces, owner, strict=True) if d in take]
            train_traces[pol] = [t for t, d in zip(traces, owner, strict=True)
                                 if d >= 0 and d not in take]
            continue
        perm = rng.permutation(len(pts))
        held[pol], train[pol] = pts.take(perm[:n_held]), pts.take(perm[n_held:])
    train_data, held_data = data.with_points(train), data.with_points(held)
    train_data.traces.update(train_traces)
    held_data.traces.update(held_traces)
    return train_data, held_data


def validate(spec: FitSpec, data: PulseData) -> None:
    """Refuse impossible settings before any work (and before any file is written)."""
    require_both_polarities(data, ", ".join(spec.source))
    for pol in POLARITIES:
        n_fit = data.n(pol) - int(round(spec.holdout * data.n(pol)))  # the holdout fit's
        spec.fitter.check_points(n_fit, pol, ", ".join(spec.source))


def run_fit(spec: FitSpec) -> FitResult:
    """Load the spec's data, evaluate its method on a hold-out, fit the exported table on
    every point and measure it; writes nothing (:func:`write_fit_outputs` does). What a user
    should know before trusting the table is in ``.warnings`` and issued as FitWarnings."""
    data, generator = load_source(spec)
    validate(spec, data)
    truth = generator
    if spec.truth is not None:
        truth = load_model(spec.truth)
    train, held = split_holdout(data, spec.holdout, spec.seed) if spec.holdout > 0 else (data,
                                                                                        None)
    if spec.g_range is not None:
        g_range = tuple(to_internal(np.array(spec.g_range), spec.unit, spec.read_voltage)[0])
    elif truth is not None:
        g_range = (truth.g_min, truth.g_max)
    else:
        g_range = data.g_range()
    rows = []
    if held is not None and held.n() > 0:  # evaluate the procedure on points it never saw
        probe = spec.fitter.fit(train, seed=spec.seed, g_range=g_range).table
        rows += [{"reference": "heldout", "table": "holdout", "out_of_sample": True, **r}
                 for r in metrics.compare_to_data(probe, held, seed=spec.seed)]
    fitted = spec.fitter.fit(data, seed=spec.seed, g_range=g_range)  # the table to export
    table, records = fitted.table, fitted.records
    table.metadata.update({"name": spec.name, "source": list(spec.source),
                           "source_sha256": data.sha256(), "holdout": spec.holdout,
                           "fitted_on": "all points", "seed": spec.seed})
    sane = table_sanity(table, data)
    for row in sane:  # in sample, as with single points held out no ramp is out of sample
        if data.traces[row["polarity"]]:
            row["read_noise_frac"] = read_noise_fraction(table, row["polarity"],
                                                         data.traces[row["polarity"]])
    rows += [{"reference": "data_range", "table": "exported", "out_of_sample": False, **r}
             for r in sane]
    if truth is not None:
        rows += [{"reference": "truth", "table": "exported", "out_of_sample": True, **r}
                 for r in metrics.compare_models(table, truth, seed=spec.seed)]
    result = FitResult(spec, table, train, held, truth, pd.DataFrame(rows), records, data)
    result.warnings = warnings_for(result)
    for message in result.warnings:
        warnings.warn(message, FitWarning, stacklevel=2)
    return result


PLAUSIBLE_G = (1e-11, 1.0)  # siemens: 100 GOhm to 1 Ohm, wider than any ReRAM cell


def warnings_for(result: FitResult) -> list[str]:
    """Things a device engineer should know before trusting the table."""
    out = []
    table = result.table
    if table.unit == units.SIEMENS and not (PLAUSIBLE_G[0] <= table.g_max and
                                            table.g_min <= PLAUSIBLE_G[1]):
        out.append(f"conductances {table.g_min:.3g}–{table.g_max:.3g} S lie outside anything a "
                   f"resistive memory shows ({PLAUSIBLE_G[0]:g}–{PLAUSIBLE_G[1]:g} S): is the "
                   "unit of the data (--unit) right?")
    frame = result.metrics
    if "read_noise_frac" in frame:  # once per polarity: hold-out and exported rows both have it
        for _, row in (frame.dropna(subset=["read_noise_frac"])
                       .drop_duplicates("polarity").iterrows()):
            if row["read_noise_frac"] > 0.3:
                out.append(f"about {row['read_noise_frac']:.0%} of the {row['polarity']} ramps' "
                           "dG variance looks like read noise (consecutive changes are "
                           "anti-correlated); the table treats it as write noise, so simulated "
                           "trajectories spread faster than the measured ones")
    return out


def _portable_table(table, out: Path):
    """The table with the paths its metadata records made relative to ``out``."""
    meta = dict(table.metadata)
    meta["source"] = portable(meta.get("source"), out)
    meta["sources"] = [{**src, "path": portable(src["path"], out)}
                       for src in meta.get("sources", [])]
    return replace(table, metadata=meta)


def default_out(spec: FitSpec) -> Path:
    """Where a fit's outputs go when neither the caller nor the spec says."""
    return Path(spec.out or f"results/fit/{spec.name}-{spec.method}")


def write_fit_outputs(result: FitResult, out: str | Path | None = None) -> list[Path]:
    """Write every output into ``out`` (default: the spec's ``out``, else
    results/fit/NAME-METHOD), as ``memsim fit`` does: the table with its recorded paths
    relative to ``out``, metrics, search records, the spec, plots and exports. Files appear
    only once all are complete."""
    out = Path(out) if out is not None else default_out(result.spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        spec, table = result.spec, result.table
        formats.write_table(_portable_table(table, out), staging / "table.json")
        write_csv(staging / "metrics.csv", result.metrics)
        if result.records:
            write_csv(staging / "search.csv", pd.DataFrame(result.records))
        write_text(staging / "spec.yaml", yaml.safe_dump(spec.resolved(out), sort_keys=False))
        if "xbtorch" in spec.export:
            (staging / "xbtorch").mkdir()
            formats.write_xbtorch(table, staging / "xbtorch" / spec.name)
        if "crosssim" in spec.export:
            (staging / "crosssim").mkdir()
            formats.write_crosssim(table, staging / "crosssim")
        if spec.plots:
            title = f"{spec.name}: {spec.method}"
            save_figure(staging / "fit.png", plots.plot_fit(table, result.full, None,
                                                            result.truth, title, seed=spec.seed))
            save_figure(staging / "table.png", plots.plot_table(table, title))
            save_figure(staging / "pulse_train.png",
                        plots.plot_pulse_train(table, result.full, result.truth, title,
                                               seed=spec.seed))
        out.mkdir(exist_ok=True)
        for name in MANAGED:  # a re-run must not leave an earlier run's files beside its own
            old = out / name
            if not (staging / name).exists():
                if old.is_dir():
                    shutil.rmtree(old)
                elif old.exists():
                    old.unlink()
        written = []
        for item in sorted(staging.rglob("*")):
            if item.is_file():
                dest = out / item.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                item.replace(dest)
                written.append(dest)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
