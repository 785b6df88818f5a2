"""Running an ablation with the engine of the bias sweeps: a plan of content-hashed training
batches (one variant, a chunk of seeds, trained in one vectorized pass), the sweep store (so a
rerun resumes without retraining), an executor, and a report read from the store alone.

Every variant trains a seed chunk on devices drawn from the same population root, and switched
off noise is still drawn: variants share every random number they have in common, so their
seed-by-seed differences measure the switch, not a new draw of devices (common random
numbers)."""

from __future__ import annotations

import json
from pathlib import Path

from .._version import __version__
from ..io.storage import sha256_json, write_run_spec
from ..seeds import SCHEME, seed_for
from ..sweep.execute import Executor, report_failures, unstored
from ..sweep.executors import executor_for
from ..sweep.store import SweepStore
from ..train.trainer import pick_device, prepare
from .report import REPORT_FILES, write_ablation_report
from .spec import AblationSpec


def _settings(spec: AblationSpec) -> dict:
    """What every batch shares: the base spec without its name, seeds, device and output."""
    doc = spec.base.resolved()
    return {k: v for k, v in doc.items() if k not in ("name", "seeds", "device", "out")}


def plan(spec: AblationSpec, compute: str = "cpu") -> list[dict]:
    """The training batches of an ablation, in a fixed order, each keyed by everything that
    determines its result (CPU and CUDA draw from different streams: the compute is part)."""
    settings = _settings(spec)
    batches = []
    for v in spec.variants:
        device = spec.device(v).ident()
        for i in range(0, len(spec.seeds), spec.ensemble):
            chunk = spec.seeds[i:i + spec.ensemble]
            key = sha256_json({"settings": settings, "device": device, "seeds": chunk,
                               "compute": compute.split(":")[0], "memsim": __version__,
                               "streams": SCHEME})[:20]
            batches.append({"key": key, "variant": v.name, "seeds": chunk,
                            "off": v.off(spec.base.device.switches),
                            "population_seed": seed_for(chunk[0], "variation", *chunk)})
    return batches


def run_batch(batch: dict, spec: AblationSpec, store: SweepStore, compute: str = "cpu"
              ) -> None:
    """Train one variant's seed chunk; its per-epoch history goes to the store."""
    import time

    from ..sweep.tasks import worker_dataset
    from ..train.trainer import Trainer

    variant = {v.name: v for v in spec.variants}[batch["variant"]]
    tspec = spec.train_spec(variant, batch["seeds"])
    data = worker_dataset(tspec.dataset, tspec.subset, compute)
    t0 = time.perf_counter()
    history = Trainer(tspec, data, compute, population_seed=batch["population_seed"]).run(
        progress=False)
    history["variant"] = batch["variant"]
    store.put("batches", batch["key"], {"key": batch["key"], "variant": batch["variant"],
                                        "off": batch["off"],
                                        "history": json.loads(history.to_json(
                                            orient="records")),
                                        "seconds": time.perf_counter() - t0})


def run_ablation(spec: AblationSpec, compute: str = "auto", *, progress: bool = True,
                 log=print, executor: Executor | None = None) -> Path:
    """Run (or resume) an ablation; returns the output directory with its tables.
    ``compute``: cpu, cuda or auto (cuda when available, as on the command line)."""
    from tqdm.auto import tqdm

    compute = pick_device(compute)
    gpu = compute.startswith("cuda")
    with executor or executor_for(spec.cluster, spec.jobs) as ex:
        ex.start(gpu)  # a cluster that cannot run the batches: refused before any write
        prepare(spec.base, compute, spec.file)  # the dataset and the base spec, checked
        out = Path(spec.out or f"results/{spec.name}")
        out.mkdir(parents=True, exist_ok=True)
        store = SweepStore(out)
        batches = plan(spec, compute)
        todo = [b for b in batches if not store.has("batches", b["key"])]
        log(f"{spec.name}: {len(spec.variants)} variants x {len(spec.seeds)} seeds, "
            f"{len(batches)} training batches ({len(batches) - len(todo)} cached)")
        write_run_spec(out / "ablation_spec.yaml", {
            "name": spec.name, "base": spec.base.resolved(out), "seeds": spec.seeds,
            "variants": [{"name": v.name, **v.states,
                          **({"device": v.device.resolved(out)} if v.device is not None
                             else {})} for v in spec.variants],
            "ensemble": spec.ensemble}, REPORT_FILES)
        weights = [float(len(b["seeds"])) for b in todo]
        bar = tqdm(total=sum(weights), desc=spec.name, disable=not progress or None,
                   unit="net")
        labels = [f"variant {b['variant']} seeds {b['seeds']}" for b in todo]
        try:
            failures = ex.map(run_batch, [(b, spec, store, compute) for b in todo], weights,
                              bar.update, labels, gpu=gpu)
            failures += unstored(labels, [b["key"] for b in todo],
                                 lambda k: store.has("batches", k), failures)
        finally:
            bar.close()
    report_failures(failures, len(todo), 0, log)
    write_ablation_report(spec, batches, store, out)
    return out
