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
    n: [100, 300, 1000, 3000]        # points per polarity
    methods:
      - {name: bin8, method: binning, bins: 8}
      - {name: optuna, method: optuna, trials: 30}
      - {name: smooth, method: smooth}
      - {name: truth, method: truth}   # control: the truth itself in place of a fit
    data_seeds: [0, 1]
    train_seeds: [0, 1, 2]
    networks: [{name: mlp, kind: mlp, hidden: [100]}]
    mapping: {kind: pair, policy: split, w_max: 1.0}
    training: {epochs: 2, batch: 64, lr: 0.1}
    ensemble: 8                      # networks trained per batched pass
    jobs: 1                          # processes (fits and batches run in parallel)
    out: ../results/bias_synthetic

Every finished fit and every finished training batch is stored under ``OUT/cache`` keyed by a
hash of its resolved spec; a rerun skips it. Batches are composed from the plan alone, never
from what the cache holds, so an interrupted sweep resumes to exactly the tables an
uninterrupted one writes. The pulse size dw_min is fixed per truth (from the truth's nominal
step) and shared by every network of that truth: the same controller drives model and device.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .devices import Device
from .errors import MemsimError
from .fitting import EDGE_RULES, MIN_PER_BIN, STATS, OptunaSettings, SmoothSettings, fit
from .formats import load_model, table_document, table_from_document
from .models import JumpTable
from .networks import Mapping, NetworkSpec, nominal_dw, pulse_polarities
from .schema import Section, load_yaml
from .storage import atomic_write, sha256_file, sha256_json, write_json
from .synthetic import preset_names, sample_points
from .training import TrainSettings, TrainSpec, parse_mapping, parse_training

METHOD_KINDS = ("binning", "optuna", "smooth", "truth")
CONTROL = "truth"


@dataclass
class MethodSpec:
    name: str
    method: str
    params: dict = field(default_factory=dict)

    def min_points(self) -> int:
        if self.method == "binning":
            return MIN_PER_BIN * self.params["bins"]
        if self.method in ("optuna", "smooth"):
            return 4 * self.params["folds"]
        return 1


@dataclass
class TruthSpec:
    name: str
    ref: str
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
    training: TrainSettings = field(default_factory=TrainSettings)
    reference_replicates: int = 4
    ensemble: int = 8
    jobs: int = 1
    out: str | None = None

    def resolved(self) -> dict:
        return {"name": self.name, "dataset": self.dataset, "subset": self.subset,
                "truths": [asdict(t) for t in self.truths], "n": self.n,
                "methods": [asdict(m) for m in self.methods], "data_seeds": self.data_seeds,
                "train_seeds": self.train_seeds,
                "networks": [n.resolved() for n in self.networks],
                "mapping": asdict(self.mapping), "training": asdict(self.training),
                "reference_replicates": self.reference_replicates,
                "ensemble": self.ensemble, "jobs": self.jobs, "out": self.out}


# ------------------------------------------------------------------------ parsing


def _truth_ident(ref: str) -> str:
    """A content hash of a truth: its file(s), or the preset's spec."""
    path = Path(ref)
    if ref.startswith("preset:") or ref in preset_names():
        from .synthetic import PRESET_DIR

        return sha256_file(PRESET_DIR / f"{ref.removeprefix('preset:')}.yaml")
    if path.is_file():
        return sha256_file(path)
    files = sorted(path.glob("*")) if path.is_dir() else sorted(
        path.parent.glob(path.name + "_*"))
    return sha256_json([sha256_file(f) for f in files if f.is_file()])


def _method(sec: Section) -> MethodSpec:
    kind = sec.take("method", str, choices=METHOD_KINDS)
    name = sec.take("name", str, kind)
    params: dict = {}
    positive = {"check": lambda v: v >= 1, "check_msg": "must be >= 1"}
    if kind == "binning":
        params = {"bins": sec.take("bins", int, 32, **positive),
                  "edges": sec.take("edges", str, "width", choices=EDGE_RULES),
                  "stat": sec.take("stat", str, "empirical", choices=STATS),
                  "q": sec.take("q", int, 128, **positive)}
    elif kind == "optuna":
        params = {"trials": sec.take("trials", int, 50, **positive),
                  "folds": sec.take("folds", int, 5, check=lambda v: v >= 2,
                                    check_msg="must be >= 2"),
                  "max_bins": sec.take("max_bins", int, 256, **positive)}
    elif kind == "smooth":
        params = {"folds": sec.take("folds", int, 5, check=lambda v: v >= 2,
                                    check_msg="must be >= 2"),
                  "max_df": sec.take("max_df", int, 8, **positive),
                  "max_df_std": sec.take("max_df_std", int, 6, **positive),
                  "noise": sec.take("noise", str, "auto",
                                    choices=("auto", "gaussian", "empirical"))}
    sec.done()
    return MethodSpec(name, kind, params)


def parse_sweep_spec(data: dict, file=None) -> SweepSpec:
    from .datasets import DATASETS

    sec = Section(data, file)
    base = Path(file).parent if file is not None else None
    spec = SweepSpec()
    spec.name = sec.take("name", str, Path(file).stem if file else "bias")
    spec.dataset = sec.take("dataset", str, "mnist", choices=DATASETS)
    spec.subset = sec.take("subset", int, None, check=lambda v: v >= 1, check_msg="must be >= 1")
    truths = sec.take("truths", list)
    if not truths:
        raise sec.error("truths", "must name at least one truth device")
    for i, t in enumerate(truths):
        if isinstance(t, str):
            ref, name = t, None
        else:
            ts = Section(t, file, f"truths[{i}]")
            ref = ts.take("model", str)
            name = ts.take("name", str, None)
            ts.done()
        if base is not None and ref not in preset_names() and not ref.startswith("preset:") \
                and not Path(ref).is_absolute():
            ref = str(base / ref)
        spec.truths.append(TruthSpec(name or _default_truth_name(ref), ref))
    spec.n = sec.number_list("n", integer=True, positive=True)
    methods = sec.take("methods", list)
    if not methods:
        raise sec.error("methods", "must list at least one fitting method")
    spec.methods = [_method(Section(m, file, f"methods[{i}]")) for i, m in enumerate(methods)]
    names = [m.name for m in spec.methods]
    if len(set(names)) != len(names):
        raise sec.error("methods", f"method names must be unique, found {names}")
    spec.data_seeds = sec.number_list("data_seeds", [0], integer=True)
    spec.train_seeds = sec.number_list("train_seeds", [0, 1, 2], integer=True)
    nets = sec.take("networks", list, [{"name": "mlp", "kind": "mlp", "hidden": [100]}])
    if not nets:
        raise sec.error("networks", "must list at least one network")
    spec.mapping = parse_mapping(sec.sub("mapping", {}))
    spec.training = parse_training(sec.sub("training", {}), TrainSettings(epochs=2))
    for i, n in enumerate(nets):
        ns = Section(n, file, f"networks[{i}]")
        kind = ns.take("kind", str, "mlp", choices=("mlp", "bnn"))
        name = ns.take("name", str, kind)
        hidden = ns.number_list("hidden", [100] if kind == "mlp" else [500], integer=True,
                                positive=True, nonempty=False)
        act = ns.take("activation", str, "relu", choices=("relu", "sigmoid", "tanh"))
        training = parse_training(ns.sub("training", {}), spec.training)
        ns.done()
        spec.networks.append(NetEntry(name, NetworkSpec(kind, tuple(hidden), act), training))
    if len({n.name for n in spec.networks}) != len(spec.networks):
        raise sec.error("networks", "network names must be unique")
    spec.reference_replicates = sec.take("reference_replicates", int, 4,
                                         check=lambda v: v >= 1, check_msg="must be >= 1")
    spec.ensemble = sec.take("ensemble", int, 8, check=lambda v: v >= 1, check_msg=">= 1")
    spec.jobs = sec.take("jobs", int, 1, check=lambda v: v >= 1, check_msg="must be >= 1")
    out = sec.take("out", str, None)
    spec.out = None if out is None else (str(base / out) if base and not Path(out).is_absolute()
                                         else out)
    sec.done()
    return spec


def _default_truth_name(ref: str) -> str:
    from .fitrun import default_name

    return default_name([ref])


def load_sweep_spec(path) -> SweepSpec:
    return parse_sweep_spec(load_yaml(path), path)


def validate(spec: SweepSpec, file=None) -> dict[str, object]:
    """Everything that can be refused before work starts; returns the loaded truths."""
    if not spec.n:
        raise MemsimError("the list of dataset sizes n is empty", file, "key 'n'")
    models = {}
    for t in spec.truths:
        try:
            models[t.name] = load_model(t.ref)
        except MemsimError as err:
            raise MemsimError(f"truth {t.name!r}: {err}", file, "key 'truths'") from None
        t.ident = _truth_ident(t.ref)
    for m in spec.methods:
        need = m.min_points()
        small = [n for n in spec.n if n < need]
        if small:
            what = f"{m.params['bins']} bins" if m.method == "binning" else \
                f"{m.params['folds']}-fold cross-validation"
            raise MemsimError(f"n = {small[0]} is too small for method {m.name!r}: {what} "
                              f"need at least {need} points per polarity", file, "key 'n'")
    if len({t.name for t in spec.truths}) != len(spec.truths):
        raise MemsimError("truth names must be unique", file, "key 'truths'")
    return models


# --------------------------------------------------------------------------- plan


def _fit_key(truth: TruthSpec, n: int, method: MethodSpec, data_seed: int) -> str:
    return sha256_json({"truth": truth.ident, "n": n, "method": method.method,
                        "params": method.params, "data_seed": data_seed,
                        "memsim": __version__})[:20]


@dataclass
class Member:
    truth: str
    network: str
    role: str  # "fit" (a fitted table or the truth control) or "reference" (the truth)
    method: str
    n: int
    data_seed: int
    train_seed: int
    fit_key: str  # "" for the reference
    control: bool = False  # the "fitted" model is the truth itself
    replicate: int = 0  # reference runs: independent device noise, same seed

    def key(self) -> str:
        return sha256_json(asdict(self))[:20]


def plan(spec: SweepSpec, models: dict, compute: str = "cpu") -> tuple[list[dict], list[dict]]:
    """The fit cells and the training batches of a sweep, in a fixed order. Batch keys include
    the compute device: CPU and CUDA draw from different random streams."""
    fits = []
    for t in spec.truths:
        for n in spec.n:
            for m in spec.methods:
                for d in spec.data_seeds:
                    fits.append({"key": _fit_key(t, n, m, d), "truth": t.name, "ref": t.ref,
                                 "n": n, "method": asdict(m), "data_seed": d})
    fit_keys = {(f["truth"], f["n"], f["method"]["name"], f["data_seed"]): f["key"]
                for f in fits}
    batches = []
    for t in spec.truths:
        truth_kind = "table" if isinstance(models[t.name], JumpTable) else "synthetic"
        for net_name in [n.name for n in spec.networks]:
            groups: dict[str, list[Member]] = {"table": [], "synthetic": []}
            for s in spec.train_seeds:
                for r in range(spec.reference_replicates):
                    groups[truth_kind].append(Member(t.name, net_name, "reference", "", 0, 0, s,
                                                     "", replicate=r))
            for m in spec.methods:
                control = m.method == CONTROL
                kind = truth_kind if control else "table"
                for n in spec.n:
                    for d in spec.data_seeds:
                        key = fit_keys[(t.name, n, m.name, d)]
                        for s in spec.train_seeds:
                            groups[kind].append(Member(t.name, net_name, "fit", m.name, n, d,
                                                       s, key, control))
            for kind, members in groups.items():
                for i in range(0, len(members), spec.ensemble):
                    chunk = members[i:i + spec.ensemble]
                    batches.append({"truth": t.name, "ref": t.ref, "network": net_name,
                                    "kind": kind, "members": [asdict(mb) for mb in chunk]})
    for b in batches:
        b["key"] = sha256_json({"members": [Member(**m).key() for m in b["members"]],
                                "ident": [t.ident for t in spec.truths if t.name == b["truth"]],
                                "settings": _train_settings(spec, b["network"]),
                                "compute": compute.split(":")[0], "memsim": __version__})[:20]
    return fits, batches


def _train_settings(spec: SweepSpec, network: str) -> dict:
    net = {n.name: n for n in spec.networks}[network]
    return {"dataset": spec.dataset, "subset": spec.subset, "network": net.resolved(),
            "mapping": asdict(spec.mapping)}


# ---------------------------------------------------------------------- executing


def _cache(out: Path, kind: str, key: str) -> Path:
    return out / "cache" / kind / f"{key}.json"


def run_fit_cell(cell: dict, out: str) -> dict:
    """Fit one cell and measure it against its truth; stored in the cache."""
    t0 = time.perf_counter()
    truth = load_model(cell["ref"])
    method = cell["method"]
    if method["method"] == CONTROL:
        table, table_doc = truth, None
    else:
        data = sample_points(truth, cell["n"], cell["data_seed"])
        p = method["params"]
        table, _ = fit(data, method["method"], seed=cell["data_seed"],
                       g_range=(truth.g_min, truth.g_max),
                       binning={k: p[k] for k in ("bins", "edges", "stat", "q")}
                       if method["method"] == "binning" else None,
                       optuna_settings=OptunaSettings(trials=p.get("trials", 50),
                                                      folds=p.get("folds", 5),
                                                      max_bins=p.get("max_bins", 256),
                                                      progress=False),
                       smooth_settings=SmoothSettings(folds=p.get("folds", 5),
                                                      max_df=p.get("max_df", 8),
                                                      max_df_std=p.get("max_df_std", 6),
                                                      noise=p.get("noise", "auto")))
        table_doc = table_document(table)
    from .metrics import compare_models

    rows = compare_models(table, truth, devices=1000, seed=cell["data_seed"])
    result = {"key": cell["key"], "table": table_doc, "metrics": rows,
              "seconds": time.perf_counter() - t0}
    write_json(_cache(Path(out), "fits", cell["key"]), result)
    return result


def _load_cached_table(out: Path, key: str) -> JumpTable:
    doc = json.loads(_cache(out, "fits", key).read_text())["table"]
    return table_from_document(doc, key)


_DATA_CACHE: dict = {}


def run_batch(batch: dict, spec_doc: dict, out: str, compute: str = "cpu") -> list[dict]:
    """Train one batch of networks in one vectorized pass; stored in the cache."""
    from .datasets import load_dataset
    from .training import Trainer

    spec = parse_sweep_spec(spec_doc)
    outp = Path(out)
    members = [Member(**m) for m in batch["members"]]
    truth = load_model(batch["ref"])
    net = {n.name: n for n in spec.networks}[batch["network"]]
    mapping = Mapping(**asdict(spec.mapping))
    if mapping.dw_min is None:
        mapping.dw_min = truth_dw_min(truth, mapping)
    if batch["kind"] == "synthetic":
        device = Device(kind="synthetic", models=[truth], preset=batch["ref"])
        choice = None
    else:
        models, index, choice = [], {}, []
        for mb in members:
            ref = "truth" if mb.role == "reference" or mb.control else mb.fit_key
            if ref not in index:
                index[ref] = len(models)
                models.append(truth if ref == "truth" else _load_cached_table(outp, ref))
            choice.append(index[ref])
        device = Device(kind="table", models=models, paths=[batch["ref"]])
    tspec = TrainSpec(name=f"{spec.name}:{batch['key'][:8]}", dataset=spec.dataset,
                      subset=spec.subset, network=net.spec, device=device, mapping=mapping,
                      training=net.training, seeds=[mb.train_seed for mb in members])
    dkey = (spec.dataset, spec.subset, compute)
    if dkey not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[dkey] = load_dataset(spec.dataset, spec.subset, compute)
    trainer = Trainer(tspec, _DATA_CACHE[dkey], compute, device=device, choice=choice,
                      population_seed=int(batch["key"][:8], 16))
    t0 = time.perf_counter()
    history = trainer.run(progress=False)
    seconds = time.perf_counter() - t0
    last = history[history["epoch"] == history["epoch"].max()].sort_values("member")
    results = [{"member": mb.key(), **asdict(mb), "acc": float(acc), "loss": float(loss)}
               for mb, acc, loss in zip(members, last["test_acc"], last["train_loss"],
                                        strict=True)]
    write_json(_cache(outp, "batches", batch["key"]),
               {"key": batch["key"], "results": results, "seconds": seconds,
                "pulses": int(history["pulses"].iloc[-1])})
    return results


def truth_dw_min(truth, mapping: Mapping) -> float:
    """The weight change of one nominal pulse of the truth (shared by model and device)."""
    step = float(np.mean([truth.nominal_step(p) for p in pulse_polarities(mapping)]))
    return nominal_dw(step, truth.g_max - truth.g_min, mapping)


def run_sweep(spec: SweepSpec, file=None, compute: str = "cpu", progress: bool = True,
              log=print) -> Path:
    """Run (or resume) a sweep; returns the output directory with the final tables."""
    from tqdm.auto import tqdm

    from . import report

    models = validate(spec, file)
    out = Path(spec.out or f"results/{spec.name}")
    out.mkdir(parents=True, exist_ok=True)
    fits, batches = plan(spec, models, compute)
    todo_fits = [f for f in fits if not _cache(out, "fits", f["key"]).exists()]
    todo_batches = [b for b in batches if not _cache(out, "batches", b["key"]).exists()]
    log(f"{spec.name}: {len(fits)} fits ({len(fits) - len(todo_fits)} cached), "
        f"{len(batches)} training batches ({len(batches) - len(todo_batches)} cached), "
        f"{sum(len(b['members']) for b in batches)} networks")
    spec_doc = _spec_doc(spec)
    with atomic_write(out / "sweep_spec.yaml") as fh:
        import yaml

        yaml.safe_dump(spec.resolved(), fh, sort_keys=False)
    weights = [1.0] * len(todo_fits) + [float(len(b["members"])) for b in todo_batches]
    bar = tqdm(total=sum(weights), desc=spec.name, disable=not progress or None, unit="task",
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}]")
    try:
        _execute(todo_fits, todo_batches, spec, spec_doc, out, compute, bar)
    finally:
        bar.close()
    report.write_sweep_report(spec, fits, batches, out)
    return out


def _spec_doc(spec: SweepSpec) -> dict:
    """A spec document that parses back to ``spec`` (paths already resolved)."""
    d = spec.resolved()
    methods = [{"name": m.name, "method": m.method, **m.params} for m in spec.methods]
    return {"name": spec.name, "dataset": spec.dataset, "subset": spec.subset,
            "truths": [{"name": t.name, "model": t.ref} for t in spec.truths], "n": spec.n,
            "methods": methods, "data_seeds": spec.data_seeds, "train_seeds": spec.train_seeds,
            "networks": d["networks"], "mapping": d["mapping"], "training": d["training"],
            "reference_replicates": spec.reference_replicates,
            "ensemble": spec.ensemble, "jobs": spec.jobs, "out": spec.out}


def _execute(fits, batches, spec, spec_doc, out, compute, bar) -> None:
    if spec.jobs == 1:
        for f in fits:
            run_fit_cell(f, str(out))
            bar.update(1)
        for b in batches:
            run_batch(b, spec_doc, str(out), compute)
            bar.update(len(b["members"]))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // spec.jobs)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(spec.jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(run_fit_cell, f, str(out)): 1.0 for f in fits}
        for fut in as_completed(futures):
            fut.result()
            bar.update(futures[fut])
        futures = {pool.submit(run_batch, b, spec_doc, str(out), compute):
                   float(len(b["members"])) for b in batches}
        for fut in as_completed(futures):
            fut.result()
            bar.update(futures[fut])


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def member_rows(out: Path, batches: list[dict]) -> pd.DataFrame:
    rows = []
    for b in batches:
        doc = json.loads(_cache(out, "batches", b["key"]).read_text())
        rows += doc["results"]
    return pd.DataFrame(rows)


def fit_rows(out: Path, fits: list[dict]) -> pd.DataFrame:
    rows = []
    for f in fits:
        doc = json.loads(_cache(out, "fits", f["key"]).read_text())
        per_pol = {}
        for r in doc["metrics"]:
            for k, v in r.items():
                if k != "polarity":
                    per_pol[f"{k}_{r['polarity']}"] = v
        metrics = {k: float(np.mean([r[k] for r in doc["metrics"]]))
                   for k in doc["metrics"][0] if k != "polarity"}
        rows.append({"fit_key": f["key"], "truth": f["truth"], "method": f["method"]["name"],
                     "n": f["n"], "data_seed": f["data_seed"], "fit_seconds": doc["seconds"],
                     **metrics, **per_pol})
    return pd.DataFrame(rows)
