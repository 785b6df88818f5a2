"""Running a sweep: validate, plan, execute what the store lacks, report."""

from __future__ import annotations

from pathlib import Path

from ..io.storage import write_run_spec
from ..train.trainer import pick_device
from .execute import Executor, report_failures, unstored
from .executors import executor_for
from .plan import plan
from .report import REPORT_FILES, write_sweep_report
from .spec import SweepSpec, validate
from .store import SweepStore
from .tasks import run_batch, run_fit_cell


def run_sweep(spec: SweepSpec, compute: str = "auto", *, file=None, progress: bool = True,
              log=print, executor: Executor | None = None) -> Path:
    """Run (or resume) a sweep; returns the output directory with the final tables.
    ``compute``: cpu, cuda or auto (cuda when available, as on the command line); ``file``:
    the spec file that errors name."""
    from tqdm.auto import tqdm

    compute = pick_device(compute)
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
        write_run_spec(out / "sweep_spec.yaml", spec.resolved(Path(out)), REPORT_FILES)
        spec_doc = spec_document(spec)
        weights = [1.0] * len(todo_fits) + [float(len(b["members"])) for b in todo_batches]
        bar = tqdm(total=sum(weights), desc=spec.name, disable=not progress or None,
                   unit="task",
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}]")
        for m in spec.methods:  # what parallel fits share (an Optuna storage), set up once
            if m.fitter is not None and todo_fits:
                m.fitter.prepare()
        try:  # fits first: batches read the fitted tables
            labels = [fit_label(f) for f in todo_fits]
            failures = executor.map(run_fit_cell, [(f, store) for f in todo_fits],
                                    [1.0] * len(todo_fits), bar.update, labels)
            failures += unstored(labels, [f["key"] for f in todo_fits],
                                 lambda k: store.has("fits", k), failures)
            failed = {f["key"] for f in todo_fits if not store.has("fits", f["key"])}
            runnable = [b for b in todo_batches
                        if not failed & {m["fit_key"] for m in b["members"]}]
            skipped = len(todo_batches) - len(runnable)
            bar.update(sum(len(b["members"]) for b in todo_batches) -
                       sum(len(b["members"]) for b in runnable))
            labels = [batch_label(b) for b in runnable]
            batch_failures = executor.map(
                run_batch, [(b, spec_doc, store, compute) for b in runnable],
                [float(len(b["members"])) for b in runnable], bar.update, labels, gpu=gpu)
            failures += batch_failures + unstored(labels, [b["key"] for b in runnable],
                                                  lambda k: store.has("batches", k),
                                                  batch_failures)
        finally:
            bar.close()
    report_failures(failures, len(todo_fits) + len(todo_batches), skipped, log)
    write_sweep_report(spec, fits, batches, out, store)
    return out


def fit_label(cell: dict) -> str:
    return (f"fit {cell['truth']} × {cell['method']['name']} N={cell['n']} "
            f"data seed {cell['data_seed']}")


def batch_label(batch: dict) -> str:
    return (f"training batch {batch['key'][:8]} ({batch['network']} on {batch['kind']}, "
            f"{len(batch['members'])} networks)")


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
            "ensemble": spec.ensemble, "jobs": spec.jobs, "out": spec.out}
