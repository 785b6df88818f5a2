"""``memsim bias-sweep``: the modeling bias of fitted device models, batched and resumable.

For each truth x N x fitting method x data seed: draw N points per polarity from the truth with
Algorithm 2, fit a table, compare it with the truth (device-level metrics); train the network
with the fitted table and with the truth itself under the same training seeds (same initial
weights and data order; the truth runs are repeated with independent device noise,
``reference_replicates`` per seed). Modeling bias = accuracy(fitted) - accuracy(truth), in
percentage points: positive means the fitted model over-promises.

A sweep spec (YAML), relative paths relative to the spec file::

    name: bias_synthetic
    dataset: mnist
    subset: 10000
    truths: [xbtorch_target]         # presets, device YAMLs, or table files used as truths
                                     # ({model: REF, name: N, sampling: clip | reject})
    sampling: clip                   # default for the truths: out-of-range changes of
                                     # Algorithm 2 kept clipped at the bound (clip), or
                                     # redrawn (reject); simulation follows the same rule
    n: [100, 300, 1000, 3000]        # points per polarity
    methods:
      - {name: bin8, method: binning, bins: 8}
      - {name: optuna, method: optuna, trials: 30}
      - {name: smooth, method: smooth}
      - {name: truth, method: truth}   # control: the truth itself in place of a fit
      - {name: tabulated, method: truth-table}  # control through the table path: the truth
                                     # tabulated finely, trained as a table, against its own
                                     # independent reference runs
    data_seeds: [0, 1]
    train_seeds: [0, 1, 2]
    networks: [{name: mlp, kind: mlp, hidden: [100]}]
    mapping: {kind: pair, policy: split, w_max: 1.0}
    dw_min: table                    # pulse size each network's controller assumes: from its
                                     # own table (a designer's view) or from the truth
    training: {epochs: 2, batch: 64, lr: 0.1}
    ensemble: 8                      # networks trained per batched pass
    jobs: 1                          # processes (fits and batches run in parallel)
    cluster: null                    # or local:N, tcp://host:8786: a Dask cluster runs them
    out: ../results/bias_synthetic

The sweep runs in stages, one module each: this spec, the plan (:mod:`.plan`: fit cells and
training batches, content-hashed), the tasks (:mod:`.tasks`), an executor (:mod:`.execute`)
that runs them, the store (:mod:`.store`: every finished fit and batch under ``OUT/cache``,
so a rerun skips it) and the report (:mod:`.report`), which reads only the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..devices.registry import is_kind_preset, load_truth, truth_ident
from ..errors import MemsimError
from ..fit.base import FitMethod
from ..fit.registry import METHODS
from ..io.datasets import DATASETS, subset_check
from ..io.paths import portable
from ..io.schema import Section, load_yaml
from ..models.resolve import ref_name, resolve_ref
from ..models.sampling import SAMPLING
from ..train.cells import Mapping
from ..train.networks import ACTIVATIONS, NetworkSpec
from ..train.spec import TrainSettings, parse_mapping, parse_training

CONTROL = "truth"  # the truth itself in place of a fitted table: a control
TABLE_CONTROL = "truth-table"  # the truth tabulated finely, through the fitted tables' path
CONTROLS = (CONTROL, TABLE_CONTROL)
DW_MIN_SOURCES = ("table", "truth")
METHOD_KINDS = (*METHODS, *CONTROLS)


@dataclass
class MethodSpec:
    name: str
    method: str
    fitter: FitMethod | None = None  # None for the controls

    @property
    def params(self) -> dict:
        """The settings that identify a fitted table (they key the store)."""
        return {} if self.fitter is None else self.fitter.key_params()

    def min_points(self) -> int:
        return 1 if self.fitter is None else self.fitter.min_points()

    def resolved(self, relto=None) -> dict:
        return {"name": self.name, "method": self.method,
                "params": {} if self.fitter is None else self.fitter.portable_doc(relto)}

    def to_doc(self) -> dict:
        return {"name": self.name, "method": self.method,
                **({} if self.fitter is None else self.fitter.to_doc())}


@dataclass
class TruthSpec:
    name: str
    ref: str
    sampling: str = "clip"  # Algorithm 2's out-of-range changes: clip (kept, saturated) or
    # reject (redrawn); the truth and every table of it are simulated the same way
    ident: str = ""  # content hash: a changed file invalidates its cache entries


@dataclass
class NetEntry:
    """A network of the sweep with its own training settings (a BNN wants Adam)."""

    name: str
    spec: NetworkSpec
    training: TrainSettings

    def resolved(self) -> dict:
        return {"name": self.name, "kind": self.spec.kind, "hidden": list(self.spec.hidden),
                "activation": self.spec.activation, "training": asdict(self.training)}


@dataclass
class SweepSpec:
    name: str = "bias"
    dataset: str = "mnist"
    subset: int | None = None
    truths: list[TruthSpec] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    methods: list[MethodSpec] = field(default_factory=list)
    data_seeds: list[int] = field(default_factory=lambda: [0])
    train_seeds: list[int] = field(default_factory=lambda: [0])
    networks: list[NetEntry] = field(default_factory=list)
    mapping: Mapping = field(default_factory=Mapping)
    dw_min: str = "table"  # the nominal pulse of each controller: its own table's, or the truth's
    training: TrainSettings = field(default_factory=TrainSettings)
    reference_replicates: int = 4
    ensemble: int = 8
    jobs: int = 1
    cluster: str | None = None
    out: str | None = None

    def resolved(self, relto=None) -> dict:
        """The spec with every default filled in; with ``relto``, paths relative to it."""
        truths = [{**asdict(t), "ref": portable(t.ref, relto) if relto else t.ref}
                  for t in self.truths]
        return {"name": self.name, "dataset": self.dataset, "subset": self.subset,
                "truths": truths, "n": self.n,
                "methods": [m.resolved(relto) for m in self.methods],
                "data_seeds": self.data_seeds, "train_seeds": self.train_seeds,
                "networks": [n.resolved() for n in self.networks],
                "mapping": asdict(self.mapping), "dw_min": self.dw_min,
                "training": asdict(self.training),
                "reference_replicates": self.reference_replicates,
                "ensemble": self.ensemble, "jobs": self.jobs,
                "out": "." if relto else self.out}  # not the cluster: it changes no result


# ------------------------------------------------------------------------ parsing


def _method(sec: Section, base) -> MethodSpec:
    kind = sec.take("method", str, choices=METHOD_KINDS)
    name = sec.take("name", str, kind)
    fitter = None if kind in CONTROLS else METHODS[kind].from_spec(sec, base)
    sec.done()
    return MethodSpec(name, kind, fitter)


def parse_sweep_spec(data: dict, file=None) -> SweepSpec:
    sec = Section(data, file)
    # absolute: tasks may run on workers started elsewhere (a cluster on a shared filesystem)
    base = Path(file).absolute().parent if file is not None else Path.cwd()
    spec = SweepSpec()
    spec.name = sec.take("name", str, Path(file).stem if file else "bias")
    spec.dataset = sec.take("dataset", str, "mnist", choices=DATASETS)
    spec.subset = sec.take("subset", int, None, **subset_check(spec.dataset))
    truths = sec.take("truths", list)
    if not truths:
        raise sec.error("truths", "must name at least one truth device")
    default_sampling = sec.take("sampling", str, "clip", choices=SAMPLING)
    for i, t in enumerate(truths):
        sampling = default_sampling
        if isinstance(t, str):
            ref, name = t, None
        else:
            ts = Section(t, file, f"truths[{i}]")
            ref = ts.take("model", str)
            name = ts.take("name", str, None)
            sampling = ts.take("sampling", str, default_sampling, choices=SAMPLING)
            ts.done()
        ref = ref if is_kind_preset(ref) else resolve_ref(ref, base)
        spec.truths.append(TruthSpec(name or ref_name([ref]), ref, sampling))
    spec.n = sec.number_list("n", integer=True, positive=True, unique=True)
    methods = sec.take("methods", list)
    if not methods:
        raise sec.error("methods", "must list at least one fitting method")
    spec.methods = [_method(Section(m, file, f"methods[{i}]"), base)
                    for i, m in enumerate(methods)]
    names = [m.name for m in spec.methods]
    if len(set(names)) != len(names):
        raise sec.error("methods", f"method names must be unique, found {names}")
    spec.data_seeds = sec.seed_list("data_seeds", [0])
    spec.train_seeds = sec.seed_list("train_seeds", [0, 1, 2])
    nets = sec.take("networks", list, [{"name": "mlp", "kind": "mlp", "hidden": [100]}])
    if not nets:
        raise sec.error("networks", "must list at least one network")
    spec.mapping = parse_mapping(sec.sub("mapping", {}))
    spec.dw_min = sec.take("dw_min", str, "table", choices=DW_MIN_SOURCES)
    spec.training = parse_training(sec.sub("training", {}), TrainSettings(epochs=2))
    for i, n in enumerate(nets):
        ns = Section(n, file, f"networks[{i}]")
        kind = ns.take("kind", str, "mlp", choices=("mlp", "bnn"))
        name = ns.take("name", str, kind)
        hidden = ns.number_list("hidden", [100] if kind == "mlp" else [500], integer=True,
                                positive=True, nonempty=False)
        act = ns.take("activation", str, "relu", choices=tuple(ACTIVATIONS))
        training = parse_training(ns.sub("training", {}), spec.training)
        ns.done()
        spec.networks.append(NetEntry(name, NetworkSpec(kind, tuple(hidden), act), training))
    if len({n.name for n in spec.networks}) != len(spec.networks):
        raise sec.error("networks", "network names must be unique")
    spec.reference_replicates = sec.take("reference_replicates", int, 4,
                                         check=lambda v: v >= 1, check_msg="must be >= 1")
    spec.ensemble = sec.take("ensemble", int, 8, check=lambda v: v >= 1, check_msg=">= 1")
    spec.jobs = sec.take("jobs", int, 1, check=lambda v: v >= 1, check_msg="must be >= 1")
    spec.cluster = take_cluster(sec)
    spec.out = sec.out_dir(base)
    sec.done()
    return spec


def load_sweep_spec(path) -> SweepSpec:
    """A sweep spec from its YAML file (relative paths relative to it)."""
    return parse_sweep_spec(load_yaml(path), path)


def validate(spec: SweepSpec, file=None) -> dict[str, object]:
    """Everything that can be refused before work starts; returns the loaded truths."""
    if not spec.n:
        raise MemsimError("the list of dataset sizes n is empty", file, "key 'n'")
    models = {}
    for t in spec.truths:
        try:
            models[t.name] = load_truth(t.ref)
        except MemsimError as err:
            raise MemsimError(f"truth {t.name!r}: {err}", file, "key 'truths'") from None
        t.ident = truth_ident(t.ref)
    for m in spec.methods:
        need = m.min_points()
        small = [n for n in spec.n if n < need]
        if small:
            what = m.fitter.describe_need()
            raise MemsimError(f"n = {small[0]} is too small for method {m.name!r}: {what} "
                              f"need at least {need} points per polarity", file, "key 'n'")
    if len({t.name for t in spec.truths}) != len(spec.truths):
        raise MemsimError("truth names must be unique", file, "key 'truths'")
    return models


def take_cluster(sec: Section) -> str | None:
    from .executors import parse_cluster

    value = sec.take("cluster", str, None)
    try:
        return parse_cluster(value)
    except MemsimError as exc:
        raise sec.error("cluster", exc.problem) from None
