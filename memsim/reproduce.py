"""``make reproduce``: run experiments/ and regenerate results/ with its README.

``python -m memsim.reproduce --scale reduced|full``. What runs, and the reduced-scale
overrides, are listed in ``experiments/reproduce.yaml``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from .errors import MemsimError
from .io.paths import ROOT
from .io.schema import deep_merge, load_yaml
from .io.storage import save_figure, write_csv


def run_fits(specs: list[Path], log) -> list[Path]:
    from .fit import experiment as fitrun

    outs = []
    for path in specs:
        t0 = time.perf_counter()
        spec = fitrun.load_fit_spec(path)
        spec.methods["optuna"].settings.progress = False
        with warnings.catch_warnings():  # logged below, one line each
            warnings.simplefilter("ignore", fitrun.FitWarning)
            result = fitrun.run_fit(spec)
        out = Path(spec.out or ROOT / "results" / "fit" / spec.name)
        fitrun.write_fit_outputs(result, out)
        outs.append(out)
        log(f"fit {spec.name}: {time.perf_counter() - t0:.0f} s")
        for warning in result.warnings:
            log(f"fit {spec.name}: warning: {warning}")
    return outs


STAGES = ("fits", "fidelity", "trainings", "grids", "sweeps", "ablations", "inferences")


def check_plan(plan: dict, file) -> None:
    """The plan's shape, before any work: every stage a mapping, its specs a list of files."""
    from .io.schema import Section

    sec = Section(plan, file)
    for key in STAGES:
        stage = sec.sub(key, {})
        for name in ("specs", "kept"):
            if stage.has(name) and not all(isinstance(v, str) for v in stage.take(name, list)):
                raise stage.error(name, "must be a list of spec files")
    sec.taken.update(STAGES)
    sec.done()


def run_trainings(specs: list[Path], over: dict, log) -> pd.DataFrame | None:
    """``over``: overrides for every spec, plus per-file ones under the spec's file name."""
    from .train import spec as train_spec
    from .train import trainer

    if not specs:  # a plan without trainings
        return None
    common = {k: v for k, v in over.items() if not k.endswith((".yaml", ".yml"))}
    summaries, histories = [], []
    for path in specs:
        t0 = time.perf_counter()
        raw = deep_merge(deep_merge(load_yaml(path), common), over.get(path.name, {}))
        spec = train_spec.parse_train_spec(raw, path)
        result = trainer.train(spec, "auto", progress=False, file=path)
        out = Path(spec.out or ROOT / "results" / "train" / spec.name)
        trainer.write_train_outputs(result, out)
        summaries.append(result.summary())
        histories.append(result.history.assign(name=spec.name, network=spec.network.kind))
        log(f"train {spec.name}: {100 * result.summary()['final_test_acc'].iloc[0]:.2f} % "
            f"in {time.perf_counter() - t0:.0f} s")
    summary = pd.concat(summaries, ignore_index=True)
    write_csv(ROOT / "results" / "train" / "summary.csv", summary)
    save_figure(ROOT / "results" / "train" / "accuracy.png", _plot_trainings(histories))
    return summary


def _plot_trainings(histories):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, kind in zip(axes, ("mlp", "bnn"), strict=True):
        for h in histories:
            if h["network"].iloc[0] == kind:
                ax.plot(h["epoch"], 100 * h["test_acc"], marker="o", label=h["name"].iloc[0])
        ax.set_title(f"{kind.upper()} on MNIST: test accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy [%]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_sweeps(specs: list[Path], over: dict, log) -> list[Path]:
    from .sweep import run_sweep
    from .sweep.spec import parse_sweep_spec

    outs = []
    for path in specs:
        t0 = time.perf_counter()
        spec = parse_sweep_spec(deep_merge(load_yaml(path), over.get(path.name, {})), path)
        out = run_sweep(spec, "auto", file=path, progress=False, log=log)
        outs.append(out)
        log(f"sweep {spec.name}: {time.perf_counter() - t0:.0f} s")
    return outs


def kept_sweeps(specs: list[Path], over: dict, log) -> tuple[list[Path], list[Path]]:
    """Sweeps too long for the reduced scale (a physics truth): each runs only when its output
    folder holds no finished report of the same resolved spec, and is otherwise kept as that
    run wrote it (delete the folder, or change the spec, to rerun it). Returns (all outputs,
    the kept ones)."""
    import yaml

    from .sweep.spec import parse_sweep_spec, validate

    outs, kept = [], []
    for path in specs:
        spec = parse_sweep_spec(deep_merge(load_yaml(path), over.get(path.name, {})), path)
        validate(spec, path)  # the truths' content hashes: a changed truth file is a new spec
        out = Path(spec.out or ROOT / "results" / spec.name)
        written = out / "sweep_spec.yaml"
        now = yaml.safe_load(yaml.safe_dump(spec.resolved(out), sort_keys=False))
        if (out / "bias.csv").exists() and written.exists() and load_yaml(written) == now:
            log(f"sweep {spec.name}: kept (its report is of the same spec)")
            outs.append(out)
            kept.append(out)
        else:
            outs += run_sweeps([path], over, log)
    return outs, kept


def run_ablations(specs: list[Path], over: dict, log) -> list[Path]:
    """``over``: per spec file, keys written over the ablation spec (its ``overrides`` of the
    base train spec merge key by key)."""
    from .ablate import parse_ablation_spec, run_ablation

    outs = []
    for path in specs:
        t0 = time.perf_counter()
        spec = parse_ablation_spec(deep_merge(load_yaml(path), over.get(path.name, {})), path)
        outs.append(run_ablation(spec, "auto", progress=False, log=log))
        log(f"ablation {spec.name}: {time.perf_counter() - t0:.0f} s")
    return outs


def run_inferences(specs: list[Path], over: dict, log) -> list[Path]:
    """``memsim infer`` on each spec (``over``: per spec file, keys written over it)."""
    from .infer import parse_infer_spec, run_inference

    outs = []
    for path in specs:
        t0 = time.perf_counter()
        raw = deep_merge(load_yaml(path), over.get(path.name, {}))
        spec = parse_infer_spec(raw, path)
        outs.append(run_inference(spec, "auto", log=log))
        log(f"inference {spec.name}: {time.perf_counter() - t0:.0f} s")
    return outs


def run_fidelity(plan: dict | None, log) -> None:
    """The fit-fidelity benchmark on the shipped measured LUTs, into results/fidelity."""
    if not plan:
        return
    from .fit import fidelity

    spec = fidelity.FidelitySpec(sizes=tuple(plan.get("sizes", fidelity.SIZES)),
                                 seeds=int(plan.get("seeds", 3)))
    fidelity.bench(spec, ROOT, ROOT / "results" / "fidelity",
                   progress=lambda msg: log(f"fidelity: {msg}"))
    log("wrote results/fidelity")


def run_grids(specs: list[Path], over: dict, log) -> list[Path]:
    from .train.grid import parse_grid, run_grid, write_grid_outputs

    outs = []
    for path in specs:
        t0 = time.perf_counter()
        grid = parse_grid(deep_merge(load_yaml(path), over.get(path.name, {})), path)
        history = run_grid(grid, "cuda" if _cuda() else "cpu", log=log)
        out = Path(grid.out or ROOT / "results" / grid.name)
        write_grid_outputs(grid, history, out)
        outs.append(out)
        log(f"grid {grid.name}: {time.perf_counter() - t0:.0f} s")
    return outs


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=("reduced", "full"), default="reduced")
    parser.add_argument("--plan", default=str(ROOT / "experiments" / "reproduce.yaml"))
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures are files
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    try:
        plan = load_yaml(args.plan)
        base = Path(args.plan).parent
        check_plan(plan, args.plan)
        stage = lambda key: [base / s for s in plan.get(key, {}).get("specs", [])]  # noqa: E731
        reduced = args.scale == "reduced"
        run_fits(stage("fits"), log)
        if not reduced:  # 30 minutes on 2 cores: the reduced scale keeps results/fidelity
            run_fidelity(plan.get("fidelity"), log)  # as `memsim bench fidelity` wrote it
        over = plan.get("trainings", {}).get("reduced", {}) if reduced else {}
        run_trainings(stage("trainings"), over, log)
        over = plan.get("grids", {}).get("reduced", {}) if reduced else {}
        run_grids(stage("grids"), over, log)
        over = plan.get("sweeps", {}).get("reduced", {}) if reduced else {}
        sweeps = run_sweeps(stage("sweeps"), over, log)
        long = [base / k for k in plan.get("sweeps", {}).get("kept", [])]
        physics, kept = kept_sweeps(long, over, log) if reduced else (
            run_sweeps(long, over, log), [])
        over = plan.get("ablations", {}).get("reduced", {}) if reduced else {}
        ablations = run_ablations(stage("ablations"), over, log)
        over = plan.get("inferences", {}).get("reduced", {}) if reduced else {}
        inferences = run_inferences(stage("inferences"), over, log)
        from .results_readme import write_results_readme

        write_results_readme(ROOT / "results", sweeps, args.scale,
                             time.perf_counter() - t_start, ablations, inferences,
                             physics=physics, kept=kept)
        log("wrote results/README.md")
    except MemsimError as err:
        print(f"memsim: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
