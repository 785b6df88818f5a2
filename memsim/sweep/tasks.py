"""The two tasks of a sweep, each a pure function of its plan entry that leaves its result in
the store: fit one cell (draw data from the truth, fit, measure against the truth), and train
one batch of networks in one vectorized pass. Executors call these and nothing else."""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from ..devices.registry import device_for_model, load_truth, truth_ident
from ..devices.table import TableKind
from ..fit.registry import METHODS
from ..io.datasets import load_dataset
from ..io.paths import portable
from ..io.schema import Section
from ..metrics.distances import compare_models
from ..models.base import POLARITIES
from ..models.formats import table_document
from ..models.sampling import sample_points
from ..models.table import ConditionalTable, JumpTable, probability_grid
from ..train.cells import Mapping, pulse_polarities
from ..train.spec import TrainSpec
from ..train.trainer import Trainer
from .plan import Member
from .spec import CONTROL, TABLE_CONTROL, parse_sweep_spec
from .store import SweepStore

TABULATION = 500  # G bins and quantile steps of the table-path control


def fitter_of(method_doc: dict):
    """The configured fit method of a plan entry's method document."""
    settings = {k: v for k, v in method_doc.items() if k not in ("name", "method")}
    sec = Section(settings, None, f"methods.{method_doc['name']}")
    fitter = METHODS[method_doc["method"]].from_spec(sec)
    sec.done()
    if hasattr(fitter.settings, "progress"):
        fitter.settings.progress = False
    return fitter


def tabulate(model, bins: int = TABULATION, q: int = TABULATION) -> JumpTable:
    """The model as a fine jump table (``bins`` equal-width G bins, ``q`` quantile steps; a
    Gaussian's tails cut at 1e-4): the table-path control, an essentially perfect fit."""
    if isinstance(model, JumpTable) and all(
            t.n_bins >= bins for t in model.tables.values()):
        return model
    edges = np.linspace(model.g_min, model.g_max, bins + 1)
    centres = (edges[1:] + edges[:-1]) / 2
    p = np.clip(probability_grid(q), 1e-4, 1 - 1e-4)
    tables = {pol: ConditionalTable(edges, "quantile", quantiles=model.quantile(pol, centres, p))
              for pol in POLARITIES}
    return JumpTable(tables, model.g_min, model.g_max, model.unit,
                     {"method": TABLE_CONTROL, "bins": bins, "q": q}, name="tabulated truth")


def run_fit_cell(cell: dict, store: SweepStore) -> dict:
    """Fit one cell and measure it against its truth; stored under its key."""
    t0 = time.perf_counter()
    truth = worker_truth(cell["ref"])
    method = cell["method"]
    if method["method"] == CONTROL:
        table, table_doc = truth, None
    elif method["method"] == TABLE_CONTROL:
        table = tabulate(truth)
        table_doc = table_document(table)
    else:
        data = sample_points(truth, cell["n"], cell["data_seed"],
                             mode=cell.get("sampling", "reject"))
        table = fitter_of(method).fit(data, seed=cell["data_seed"],
                                      g_range=(truth.g_min, truth.g_max)).table
        table_doc = table_document(table)
    if table_doc is not None:  # the store records no machine paths (it may be shared)
        meta = table_doc["metadata"] = dict(table_doc["metadata"])
        if isinstance(meta.get("source"), str):  # an imported table file's path
            meta["source"] = portable(meta["source"], store.root)
    rows = compare_models(table, truth, devices=1000, seed=cell["data_seed"])
    result = {"key": cell["key"], "table": table_doc, "metrics": rows,
              "seconds": time.perf_counter() - t0}
    store.put("fits", cell["key"], result)
    return result


_DATA_CACHE: dict = {}
_TRUTHS: dict = {}


def worker_truth(ref: str):
    """A truth loaded once per worker process and content (keyed by its identity hash): the
    cells of one truth share the object, and with it the memoized simulation of its pulse
    trains, the same for every table fitted to it."""
    key = (ref, truth_ident(ref))
    if key not in _TRUTHS:
        if len(_TRUTHS) >= 4:
            _TRUTHS.clear()
        _TRUTHS[key] = load_truth(ref)
    return _TRUTHS[key]



def worker_dataset(name: str, subset, compute: str):
    """The dataset of a worker process, loaded once per (dataset, subset, compute)."""
    key = (name, subset, compute)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_dataset(name, subset, compute)
    return _DATA_CACHE[key]


def truth_step(truth, mapping: Mapping) -> float:
    """The truth's nominal pulse size (``dw_min: truth``: the controller of every fitted
    table is calibrated on the true device, which a designer cannot do)."""
    return device_for_model(truth).nominal_step(pulse_polarities(mapping))


def run_batch(batch: dict, spec_doc: dict, store: SweepStore, compute: str = "cpu"
              ) -> list[dict]:
    """Train one batch of networks in one vectorized pass; stored under its key."""
    spec = parse_sweep_spec(spec_doc)
    members = [Member(**m) for m in batch["members"]]
    truth = worker_truth(batch["ref"])
    net = {n.name: n for n in spec.networks}[batch["network"]]
    mapping = Mapping(**asdict(spec.mapping))
    if mapping.dw_min is None and mapping.nominal_step is None and spec.dw_min == "truth":
        mapping.nominal_step = truth_step(truth, mapping)
    # dw_min: table (the default): each network's controller assumes the pulse size of its
    # own device model, the fitted table (the truth's own runs: the truth's)
    if batch["kind"] != "table":  # the truth's own kind: its reference runs and the control
        device = device_for_model(truth, batch["ref"])
        choice = None
    else:
        models, index, choice = [], {}, []
        for mb in members:
            direct = mb.role == "reference" or (mb.control and mb.group != TABLE_CONTROL)
            ref = "truth" if direct else mb.fit_key
            if ref not in index:
                index[ref] = len(models)
                models.append(truth if ref == "truth" else store.table(ref))
            choice.append(index[ref])
        device = TableKind(paths=[batch["ref"]], models=models)
    device.bounds = batch.get("sampling", "clip")  # simulated as the data were drawn
    tspec = TrainSpec(name=f"{spec.name}:{batch['key'][:8]}", dataset=spec.dataset,
                      subset=spec.subset, network=net.spec, device=device, mapping=mapping,
                      training=net.training, seeds=[mb.train_seed for mb in members])
    trainer = Trainer(tspec, worker_dataset(spec.dataset, spec.subset, compute), compute,
                      device=device, choice=choice, population_seed=int(batch["key"][:8], 16))
    t0 = time.perf_counter()
    history = trainer.run(progress=False)
    seconds = time.perf_counter() - t0
    last = history[history["epoch"] == history["epoch"].max()].sort_values("member")
    results = [{"member": mb.key(), **asdict(mb), "acc": float(acc), "loss": float(loss)}
               for mb, acc, loss in zip(members, last["test_acc"], last["train_loss"],
                                        strict=True)]
    store.put("batches", batch["key"], {"key": batch["key"], "results": results,
                                        "seconds": seconds,
                                        "pulses": int(history["pulses"].iloc[-1])})
    return results
