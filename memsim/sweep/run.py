"""Running a sweep: validate, plan, execute what the store lacks, report."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import MemsimError
from ..io.storage import atomic_write
from .execute import Executor, TaskFailure
from .executors import executor_for
from .plan import plan
from .report import write_sweep_report
from .spec import SweepSpec, validate
from .store import SweepStore
from .tasks import run_batch, run_fit_cell


def run_sweep(spec: SweepSpec, file=None, compute: str = "cpu", progress: bool = True,
              log=print, executor: Executor | None = None) -> Path:
    """Run (or resume) a sweep; returns the output directory with the final tables."""
    from tqdm.auto import tqdm

    models = validate(spec, file)
    executor = executor or executor_for(spec.cluster, spec.jobs)
    gpu = compute.startswith("cuda")
    with executor:
        executor.start(gpu)  # a cluster that cannot run the tasks: refused before any write
        out = Path(spec.out or f"results/{spec.name}")
        out.mkdir(parents=True, exist_ok=True)
        store = SweepStore(out)
        fits, batches = plan(spec, models, compute)
        todo_fits = [f for f in fits if not store.has("fits", f["key"])]
        todo_batches = [b for b in batches if not store.has("batches", b["key"])]
        log(f"{spec.name}: {len(fits)} fits ({len(fits) - len(todo_fits)} cached), "
            f"{len(batches)} training batches ({len(batches) - len(todo_batches)} cached), "
            f"{sum(len(b['members']) for b in batches)} networks")
        with atomic_write(out / "sweep_spec.yaml") as fh:
            yaml.safe_dump(spec.resolved(Path(out)), fh, sort_keys=False)
        spec_doc = spec_document(spec)
        weights = [1.0] * len(todo_fits) + [float(len(b["members"])) for b in todo_batches]
        bar = tqdm(total=sum(weights), desc=spec.name, disable=not progress or None,
                   unit="task",
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}]")
        try:  # fits first: batches read the fitted tables
            failures = executor.map(run_fit_cell, [(f, store) for f in todo_fits],
                                    [1.0] * len(todo_fits), bar.update,
                                    [fit_label(f) for f in todo_fits])
            failed = {f["key"] for f in todo_fits if not store.has("fits", f["key"])}
            runnable = [b for b in todo_batches
                        if not failed & {m["fit_key"] for m in b["members"]}]
            bar.update(sum(len(b["members"]) for b in todo_batches if b not in runnable))
            failures += executor.map(run_batch, [(b, spec_doc, store, compute) for b in runnable],
                                     [float(len(b["members"])) for b in runnable], bar.update,
                                     [batch_label(b) for b in runnable], gpu=gpu)
        finally:
            bar.close()
    report_failures(failures, len(todo_fits) + len(todo_batches),
                    len(todo_batches) - len(runnable), log)
    write_sweep_report(spec, fits, batches, out, store)
    return out


def fit_label(cell: dict) -> str:
    return (f"fit {cell['truth']} × {cell['method']['name']} N={cell['n']} "
            f"data seed {cell['data_seed']}")


def batch_label(batch: dict) -> str:
    return (f"training batch {batch['key'][:8]} ({batch['network']} on {batch['kind']}, "
            f"{len(batch['members'])} networks)")


def report_failures(failures: list[TaskFailure], tasks: int, skipped: int, log) -> None:
    """Each failed task on a line of the log; then one error (the sweep is incomplete, its
    report is not written; a rerun runs only what the store lacks)."""
    if not failures:
        return
    for f in failures:
        log(f"failed: {f}")
    extra = f", {skipped} batches skipped (their fits failed)" if skipped else ""
    raise MemsimError(f"{len(failures)} of {tasks} tasks failed{extra} (first: {failures[0]}); "
                      "finished tasks are stored: fix the cause and rerun to complete the rest")


def spec_document(spec: SweepSpec) -> dict:
    """A spec document that parses back to ``spec`` (paths already resolved)."""
    d = spec.resolved()
    return {"name": spec.name, "dataset": spec.dataset, "subset": spec.subset,
            "truths": [{"name": t.name, "model": t.ref, "sampling": t.sampling}
                       for t in spec.truths], "n": spec.n,
            "methods": [m.to_doc() for m in spec.methods], "data_seeds": spec.data_seeds,
            "train_seeds": spec.train_seeds, "networks": d["networks"],
            "mapping": d["mapping"], "dw_min": spec.dw_min, "training": d["training"],
            "reference_replicates": spec.reference_replicates,
            "ensemble": spec.ensemble, "jobs": spec.jobs, "out": spec.out,
            "cluster": spec.cluster}
