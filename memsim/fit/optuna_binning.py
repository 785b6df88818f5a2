"""Optuna-optimized fits: Optuna's TPE sampler searches, per polarity, binning (K, the edge
rule, the per-bin statistic) and smooth fits (shape, kernel bandwidth) together, minimising
the k-fold cross-validated CRPS of held-out points (never the in-sample fit). The plain
configurations a user would try first (20 equal-width empirical bins; the smooth defaults)
are the first trials, so the search can only improve on them by its own criterion. The
chosen configuration is then refitted on all points. Studies can live in a SQLite file (or
any RDB URL) to be resumed and inspected."""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._version import code_identity
from ..errors import MemsimError
from ..io.data import POLARITIES, PulseData
from ..models.resolve import resolve_ref
from ..models.table import ConditionalTable, JumpTable
from ..seeds import seed_for
from .base import FitMethod, FitOutput, at_least_1, at_least_2, data_range, fit_metadata
from .binning import EDGE_RULES, STATS, cv_crps_binning, fit_binning_polarity, max_bins_for
from .cv import check_cv_points, fold_labels
from .smooth import (
    CONTINUOUS_SHAPES,
    cv_crps_smooth,
    fold_cuts,
    jump_options,
    shapes_for,
    smooth_table,
    table_cuts,
)

FAMILIES = ("binning", "smooth")
# kernel sds searched, as fractions of the G range: a geometric grid (ratio 1.5), so that a
# smooth configuration is scored once however often the sampler proposes it
BANDWIDTHS = tuple(float(f"{v:.3g}") for v in np.geomspace(0.003, 0.5, 13))
PLAIN_BINS = 20  # the plain binning every search starts from


@dataclass
class OptunaSettings:
    trials: int = 100
    folds: int = 5
    max_bins: int = 256
    storage: str | None = None
    study_name: str = "memsim"
    q: int = 128
    progress: bool = True
    families: tuple[str, ...] = FAMILIES  # which fit families the search may choose
    table_bins: int = 256  # bins of a chosen smooth fit's table


def _storage_relative_to(storage: str | None, base) -> str | None:
    """A storage path, or a SQLite URL with a relative path, made relative to the spec's
    folder (workers elsewhere must find the same file); other URLs unchanged."""
    if storage is None:
        return None
    if storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        return f"sqlite:///{Path(resolve_ref(storage.removeprefix('sqlite:///'), base))}"
    return storage if "://" in storage else resolve_ref(storage, base)


def _storage_url(storage: str | None) -> str | None:
    if storage is None:
        return None
    if "://" in storage:
        return storage
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(storage).resolve()}"


# a part of sweep fit keys, which seed a sweep's random draws: changing it would move every
# sweep result on record (a store is kept apart per code version by its folder instead)
SEARCH_VERSION = 2
OPEN_ATTEMPTS = 4  # workers creating one new database at once can race on its tables


def _study_digest(pts, s: OptunaSettings, seed: int, lo: float, hi: float) -> str:
    """What a stored study must match to be resumed: memsim's code (which scored its trials)
    and Optuna's version (whose sampler proposed them), the data (and its devices, which the
    folds follow), the range, the seed (folds and proposals derive from it) and every setting
    that shapes the search, but not the number of trials (a study run to 50 trials resumes to
    100)."""
    from importlib.metadata import version  # not importing Optuna, which loads slowly

    h = hashlib.sha256(np.stack([pts.g, pts.dg]).tobytes())
    if pts.device is not None:
        h.update("\n".join(map(str, pts.device)).encode())
    h.update(repr((code_identity(), version("optuna"), SEARCH_VERSION, seed, lo, hi, s.folds,
                   s.max_bins, s.q, tuple(s.families), s.table_bins)).encode())
    return h.hexdigest()[:10]


def prepare_storage(storage: str | None) -> None:
    """Create the storage's tables once, before several workers open it at the same time."""
    if storage is not None:
        import optuna

        _retrying(lambda: optuna.storages.RDBStorage(_storage_url(storage)), storage)


def _open_study(storage: str | None, name: str):
    """The study ``name`` in ``storage`` (a SQLite file or an RDB URL), in memory if None."""
    import optuna

    return _retrying(lambda: optuna.create_study(
        direction="minimize", storage=_storage_url(storage), study_name=name,
        load_if_exists=True), storage)


def _retrying(open_it, storage: str | None):
    """``open_it()``, tried a few times (workers creating one new database at once can race
    on its tables); a missing driver or a storage that stays unusable: one line."""
    import time

    last = None
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return open_it()
        except ImportError as exc:  # a PostgreSQL / MySQL URL without its driver
            raise MemsimError(f"cannot open the Optuna storage: {exc} (install the database "
                              "driver, e.g. psycopg2-binary or pymysql)", storage) from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy/OS errors, a creation race
            last = exc
            time.sleep(0.2 * (attempt + 1))
    raise MemsimError(f"cannot open the Optuna storage ({last.__class__.__name__})",
                      storage) from None


def _search(log, objective, starts: list[dict], trials: int, seed: int, key: int,
            advance) -> list:
    """Search until ``log`` (the study that keeps finished trials: in memory or in an RDB)
    holds ``trials`` positions; returns the trials at positions 0 … trials-1.

    Position k is the k-th starting point, or else the proposal of a TPE sampler seeded by k
    that sees exactly positions 0 … k-1 (an in-memory study rebuilt from the log). Trials
    are added to the log whole, tagged with their position, and only the first complete trial
    at each position counts, so neither a trial left running by a killed worker nor a second
    process searching the same study at once changes the result: a resumed study ends
    exactly where an uninterrupted one would."""
    import math

    import optuna
    from optuna.trial import TrialState

    search = optuna.create_study(direction="minimize")  # positions 0 … k-1, and nothing else
    known: dict[int, optuna.trial.FrozenTrial] = {}
    counted = 0
    while True:
        for t in log.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            known.setdefault(t.user_attrs.get("position", -1), t)
        k = 0
        while k in known:
            k += 1
        for pos in range(len(search.trials), min(k, trials)):
            t = known[pos]
            search.add_trial(optuna.trial.create_trial(
                params=t.params, distributions=t.distributions, value=t.value))
        advance(min(k, trials) - counted)
        counted = min(k, trials)
        if k >= trials:
            return [known[i] for i in range(trials)]
        if k < len(starts):
            trial = optuna.trial.FixedTrial(starts[k])
        else:
            search.sampler = optuna.samplers.TPESampler(
                seed=seed_for(seed, "search", key, k), constant_liar=False)
            trial = search.ask()
        value = float(objective(trial))
        if not math.isfinite(value):  # a configuration that cannot be scored: never chosen
            value = math.inf
        if not isinstance(trial, optuna.trial.FixedTrial):
            search.tell(trial, value)
        log.add_trial(optuna.trial.create_trial(
            params=trial.params, distributions=trial.distributions, value=value,
            user_attrs={"position": k}))


def _starting_points(families, max_bins: int, shapes=CONTINUOUS_SHAPES,
                     jumps=(False,)) -> list[dict]:
    """The configurations every search tries first: plain equal-width binning and each
    smooth shape offered at a middling bandwidth (not fitted apart at jumps)."""
    starts = []
    if "binning" in families:
        starts.append({"family": "binning", "bins": min(PLAIN_BINS, max_bins),
                       "edges": "width", "stat": "empirical"})
    if "smooth" in families:
        middle = BANDWIDTHS[len(BANDWIDTHS) // 2]
        starts += [{"family": "smooth", "shape": shape, "bandwidth": middle,
                    **({"jumps": False} if True in jumps else {})} for shape in shapes]
    return starts


def table_for(params: dict, g, dg, g_range, s: OptunaSettings) -> ConditionalTable:
    """The table of one configuration of the search space, fitted on all of g, dg."""
    lo, hi = g_range
    if params["family"] == "smooth":
        return smooth_table(g, dg, lo, hi, params["bandwidth"], params["shape"], s.table_bins,
                            s.q, jumps=params.get("jumps", False))
    return fit_binning_polarity(g, dg, params["bins"], params["edges"], params["stat"],
                                (lo, hi), s.q)


def search_space(families, max_bins: int, shapes=CONTINUOUS_SHAPES, jumps=(False,)
                 ) -> list[dict]:
    """A finite grid over the search space: every smooth configuration (of the ``shapes``
    and ``jumps`` choices offered), and binning at the bin counts of a geometric grid (plus
    the plain 20) with every edge rule and statistic."""
    out = []
    if "binning" in families:
        counts = np.unique(np.concatenate([np.round(np.geomspace(1, max_bins, 16)),
                                           [min(PLAIN_BINS, max_bins)]]).astype(int))
        out += [{"family": "binning", "bins": int(k), "edges": e, "stat": st}
                for k in counts for e in EDGE_RULES for st in STATS]
    if "smooth" in families:
        out += [{"family": "smooth", "shape": shape, "bandwidth": h,
                 **({"jumps": j} if True in jumps else {})}
                for shape in shapes for j in jumps for h in BANDWIDTHS]
    return out


def fit_optuna(data: PulseData, settings: OptunaSettings | None = None, seed: int = 0,
               g_range=None) -> tuple[JumpTable, list[dict]]:
    """Optuna-optimized binning, one study per polarity. Returns (table, trial records)."""
    import optuna
    from tqdm.auto import tqdm

    s = settings or OptunaSettings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    lo, hi = data_range(data, g_range)
    tables, records, best = {}, [], {}
    for pi, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        n = len(pts)
        check_cv_points(n, s.folds, pol, "an Optuna fit")
        labels = fold_labels(n, s.folds, seed, pts.device, key=pi)
        max_bins = max_bins_for(n - n // s.folds, s.max_bins)

        scored: dict[tuple, float] = {}  # configurations already cross-validated
        shapes = shapes_for(pts.dg)  # the lattice shape only for quantised changes
        jumps = jump_options(pts.g, pts.dg, lo, hi)  # fits apart only where jumps show
        cuts = fold_cuts(pts.g, pts.dg, labels, (lo, hi)) if True in jumps else None

        def objective(trial, pts=pts, labels=labels, max_bins=max_bins, scored=scored,
                      shapes=shapes, jumps=jumps, cuts=cuts):
            family = trial.suggest_categorical("family", list(s.families))
            if family == "smooth":
                shape = trial.suggest_categorical("shape", list(shapes))
                apart = (trial.suggest_categorical("jumps", list(jumps)) if len(jumps) > 1
                         else False)
                h = trial.suggest_categorical("bandwidth", list(BANDWIDTHS))
                key = (shape, h, apart)
                if key not in scored:
                    scored[key] = cv_crps_smooth(pts.g, pts.dg, labels, h, shape, (lo, hi),
                                                 s.table_bins, cuts if apart else None)
                return scored[key]
            bins = trial.suggest_int("bins", 1, max_bins, log=True)
            edges = trial.suggest_categorical("edges", list(EDGE_RULES))
            stat = trial.suggest_categorical("stat", list(STATS))
            key = (bins, edges, stat)
            if key not in scored:
                scored[key] = cv_crps_binning(pts.g, pts.dg, labels, bins, edges, stat, (lo, hi))
            return scored[key]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            log = _open_study(s.storage,
                              f"{s.study_name}-{pol}-{_study_digest(pts, s, seed, lo, hi)}")
            with tqdm(total=s.trials, desc=f"optuna {pol}", disable=not s.progress or None,
                      leave=False) as bar:
                done = _search(log, objective,
                               _starting_points(s.families, max_bins, shapes, jumps),
                               s.trials, seed, pi, bar.update)
        chosen = min(done, key=lambda t: t.value)  # the first of equals, as Optuna's best
        params = chosen.params
        tables[pol] = table_for(params, pts.g, pts.dg, (lo, hi), s)
        best[pol] = {**params, "cv_crps": float(chosen.value),
                     **({"cuts": table_cuts(tables[pol], s.table_bins)}
                        if params.get("jumps") else {})}
        records += [{"polarity": pol, "trial": i, "cv_crps": t.value, **t.params}
                    for i, t in enumerate(done)]
    meta = fit_metadata(data, "optuna", {"trials": s.trials, "folds": s.folds,
                                      "max_bins": s.max_bins, "families": list(s.families),
                                      "best": best}, seed)
    return JumpTable(tables, lo, hi, data.unit, meta, name="optuna"), records


class OptunaBinning(FitMethod):
    name = "optuna"
    Settings = OptunaSettings
    runtime_fields = ("progress",)
    where_fields = ("storage", "study_name")
    path_fields = ("storage",)

    @classmethod
    def from_spec(cls, sec, base=None) -> OptunaBinning:
        d = OptunaSettings()
        storage = sec.take("storage", str, None)
        return cls(OptunaSettings(
            trials=sec.take("trials", int, d.trials, **at_least_1),
            folds=sec.take("folds", int, d.folds, **at_least_2),
            max_bins=sec.take("max_bins", int, d.max_bins, **at_least_1),
            storage=_storage_relative_to(storage, base),
            study_name=sec.take("study_name", str, d.study_name),
            q=sec.take("q", int, d.q, **at_least_2),
            families=tuple(sec.take("families", list, list(d.families),
                                    check=lambda v: bool(v) and set(v) <= set(FAMILIES),
                                    check_msg=f"must list some of {', '.join(FAMILIES)}")),
            table_bins=sec.take("table_bins", int, d.table_bins, **at_least_2)))

    def to_doc(self) -> dict:
        doc = super().to_doc()
        doc["families"] = list(doc["families"])
        return doc

    def key_params(self) -> dict:
        return {**super().key_params(), "search_version": SEARCH_VERSION}

    def prepare(self) -> None:
        prepare_storage(self.settings.storage)

    def min_points(self) -> int:
        return 4 * self.settings.folds

    def check_points(self, n, polarity, where=None) -> None:
        check_cv_points(n, self.settings.folds, polarity, "an Optuna fit")

    def describe_need(self) -> str:
        return f"{self.settings.folds}-fold cross-validation"

    def estimate(self, data, *, seed=0, g_range=None) -> FitOutput:
        return FitOutput(*fit_optuna(data, self.settings, seed, g_range))
