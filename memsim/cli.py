"""The ``memsim`` command line: a thin layer over the Python API.

Every user error becomes one line on stderr (``memsim: error: FILE: PLACE: PROBLEM``) and
exit code 2, before any output is written.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
import warnings
from pathlib import Path

import click

from .errors import MemsimError


def handle_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MemsimError as err:
            click.echo(f"memsim: error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("memsim: interrupted", err=True)
            sys.exit(130)

    return wrapper


class OneLineErrors(click.Group):
    """Usage errors (unknown option, bad value) as one line and exit code 2, like every other
    user error; ``memsim CMD --help`` shows the usage."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs.pop("standalone_mode", None)
        try:
            return super().main(args, prog_name, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exit_:
            sys.exit(exit_.exit_code)
        except click.ClickException as err:
            where = f"{err.ctx.command_path}: " if getattr(err, "ctx", None) else ""
            click.echo(f"memsim: error: {where}{err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("memsim: aborted", err=True)
            sys.exit(1)


@click.group(cls=OneLineErrors,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="memsim")
def main():
    """memsim: neural networks on simulated resistive-memory devices."""
    # figures are files: the CLI draws without a display (a notebook keeps its own backend)
    os.environ.setdefault("MPLBACKEND", "Agg")


COUNT = click.IntRange(min=1)  # a count of anything: refused below 1 by the option's name
SEED = click.IntRange(min=0)
MAX_PULSES = 10**7  # pulse: rows of one trajectory
MAX_DEVICES = 10**7  # pulse: a population that fits in memory (a few GB for the largest kind)


def _out_flag(out: str | None) -> str | None:
    """``--out`` as given, refused before any work where no folder can be made there."""
    from .io.schema import out_dir_problem

    problem = out and out_dir_problem(out)
    if problem:
        raise MemsimError(problem, None, "option --out")
    return out


def _check_points(n: int | None) -> None:
    """``--n`` within what one polarity's points can hold in memory."""
    from .models.sampling import MAX_POINTS

    if n is not None and n > MAX_POINTS:
        raise MemsimError(f"--n: at most {MAX_POINTS:,} points per polarity, not {n:,}")


def merge_flags(raw: dict, flags: dict, file=None, where: str = "") -> dict:
    """The spec with every flag that was given (not None) written over it; a flag is never
    written into a section that is not a mapping (the spec is refused as it stands)."""
    merged = dict(raw)
    for key, value in flags.items():
        if isinstance(value, dict):
            sub = {k: v for k, v in value.items() if v is not None}
            if sub:
                base = merged.get(key)
                if base is not None and not isinstance(base, dict):
                    raise MemsimError(f"must be a mapping, not {base!r}", file,
                                      f"key {where + key!r}")
                merged[key] = {**(base or {}), **sub}
        elif value is not None:
            merged[key] = value
    return merged


def _cwd_path(value: str | None) -> str | None:
    """A path given on the command line, absolute (a spec resolves its own paths against its
    folder; a flag means the working directory); presets and URLs unchanged."""
    from .devices.registry import is_kind_preset
    from .models.resolve import is_preset

    if value is None or is_preset(value) or is_kind_preset(value) or "://" in value:
        return value
    return str(Path(value).absolute())


def _shown(path: Path) -> str:
    """A written folder as a user would type it: relative to the working directory when
    inside it, without the ``spec/../`` detours of a spec-relative output path."""
    full = os.path.normpath(os.path.abspath(path))
    rel = os.path.relpath(full)
    return full if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _is_spec(sources: tuple[str, ...]) -> bool:
    if len(sources) != 1 or Path(sources[0]).suffix not in (".yaml", ".yml"):
        return False
    from .io.schema import load_yaml

    doc = load_yaml(sources[0])
    return not ("g_min" in doc and "set" in doc)  # a synthetic device is a source, not a spec


@main.command("fit")
@click.argument("sources", nargs=-1, required=True)
@click.option("--method", help="fit method: binning, optuna, smooth or any other name in the "
                                "fit-method registry")
@click.option("--bins", help="binning: number of bins K, or auto (chosen by cross-validation)")
@click.option("--edges", type=click.Choice(["width", "count"]), help="binning: edge rule")
@click.option("--stat", type=click.Choice(["empirical", "gaussian"]), help="binning: per bin")
@click.option("--trials", type=COUNT, help="optuna: number of trials per polarity")
@click.option("--folds", type=click.IntRange(min=2),
              help="cross-validation folds (optuna, smooth, bins auto)")
@click.option("--storage", help="optuna: SQLite file (or URL) to keep and resume studies")
@click.option("--n", "n_points", type=COUNT, help="points per polarity when SOURCE is a model")
@click.option("--truth", help="known true device (preset or table) for metrics")
@click.option("--unit", type=click.Choice(["S", "mS", "uS", "nS", "A", "norm"]))
@click.option("--read-voltage", type=float, help="read voltage (V) when values are currents")
@click.option("--format", "fmt", type=click.Choice(["auto", "tidy", "ramps", "updown"]))
@click.option("--polarity", type=click.Choice(["set", "reset"]), help="polarity of ramp files")
@click.option("--holdout", type=float, help="fraction of points held out for metrics")
@click.option("--seed", type=SEED)
@click.option("--out", type=click.Path(file_okay=False), help="output directory")
@click.option("--export", "exports", multiple=True, type=click.Choice(["xbtorch", "crosssim"]))
@click.option("--no-plots", is_flag=True, help="skip the PNG figures")
@handle_errors
def fit_cmd(sources, method, bins, edges, stat, trials, folds, storage, n_points, truth, unit,
            read_voltage, fmt, polarity, holdout, seed, out, exports, no_plots):
    """Fit a jump table to device data and report how faithful it is.

    SOURCES: a fit spec (YAML); or CSV data files (tidy polarity,g,dg / ramps / up-down
    traces); or one device model to draw data from (a table file, an XBTorch prefix, a
    CrossSim LUT folder, a synthetic-device YAML or a preset name).
    """
    _check_points(n_points)
    _out_flag(out)
    from .fit import experiment as fitrun
    from .io.schema import load_yaml

    if _is_spec(sources):
        file, raw = sources[0], load_yaml(sources[0])
    else:
        file, raw = None, {"source": list(sources)}
    # paths on the command line are relative to where the command runs, not to the spec
    truth, storage, out = (_cwd_path(p) for p in (truth, storage, out))
    flags = {"method": method, "n": n_points, "truth": truth, "unit": unit,
             "read_voltage": read_voltage, "format": fmt, "polarity": polarity,
             "holdout": holdout, "seed": seed, "out": out,
             "export": list(exports) or None, "plots": False if no_plots else None,
             "binning": {"bins": int(bins) if bins and bins.isdigit() else bins,
                         "edges": edges, "stat": stat, "folds": folds},
             "optuna": {"trials": trials, "folds": folds, "storage": storage},
             "smooth": {"folds": folds}}
    spec = fitrun.parse_fit_spec(merge_flags(raw, flags, file), file)
    out_dir = fitrun.default_out(spec)
    with warnings.catch_warnings():  # said below, after the metrics, as one line each
        warnings.simplefilter("ignore", fitrun.FitWarning)
        result = fitrun.run_fit(spec)
    written = fitrun.write_fit_outputs(result, out_dir)
    click.echo(result.metrics.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for warning in result.warnings:
        click.echo(f"memsim: warning: {warning}", err=True)
    click.echo(f"wrote {len(written)} files to {_shown(out_dir)}")


def _epoch_lines(epochs: int):
    """A line per epoch on stderr where no progress bar can show (a log file, a batch job)."""
    if sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def log(epoch, acc, loss):
        click.echo(f"epoch {epoch}/{epochs}: test accuracy "
                   f"{', '.join(f'{100 * a:.2f}' for a in acc)} % "
                   f"({time.perf_counter() - start:.0f} s)", err=True)
    return log


@main.command("train")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--compute", "--device", "compute", default="auto", show_default=True,
              help="where to compute: auto, cpu or cuda (--device: the old name). The memory "
                   "device is the spec's device:")
@click.option("--seed", type=SEED, help="training seed (overrides seed/seeds)")
@click.option("--epochs", type=COUNT)
@click.option("--subset", type=COUNT, help="use N training examples")
@click.option("--out", type=click.Path(file_okay=False), help="output directory")
@click.option("--no-progress", is_flag=True)
@handle_errors
def train_cmd(spec_file, compute, seed, epochs, subset, out, no_progress):
    """Train a network with its weights on simulated devices (SPEC_FILE: a train spec)."""
    _out_flag(out)
    from .io.schema import load_yaml
    from .train import spec as train_spec
    from .train import trainer

    raw = load_yaml(spec_file)
    flags = {"subset": subset, "out": out, "training": {"epochs": epochs}}
    if seed is not None:
        raw = {k: v for k, v in raw.items() if k not in ("seed", "seeds")}
        flags["seed"] = seed
    spec = train_spec.parse_train_spec(merge_flags(raw, flags, spec_file), spec_file)
    if out is not None:
        spec.out = out
    out_dir = spec.out or f"results/train/{spec.name}"
    result = trainer.train(spec, compute, progress=not no_progress, file=spec_file,
                           log=None if no_progress else _epoch_lines(spec.training.epochs))
    trainer.write_train_outputs(result, out_dir)
    summary = result.summary()
    cols = ["name", "device", "algorithm", "seed", "final_test_acc", "last_k_test_acc",
            "pulses_per_weight_mean", "seconds"]
    cols = [c for c in cols if c in summary.columns]  # a float network sends no pulses
    click.echo(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"wrote {_shown(out_dir)}")


def _int_list(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise MemsimError(f"{flag} must be a comma-separated list of integers, not {text!r}")\
            from None


@main.command("bias-sweep")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--epochs", type=COUNT)
@click.option("--subset", type=COUNT, help="use N training examples")
@click.option("--seeds", type=COUNT, help="number of training seeds (0..K-1)")
@click.option("--data-seeds", type=COUNT, help="number of data seeds (0..K-1)")
@click.option("--n", "sizes", help="dataset sizes, e.g. 100,1000,10000")
@click.option("--truth", "truths", multiple=True,
              help="truth device (table file, preset, device YAML); replaces the spec's")
@click.option("--jobs", type=COUNT, help="processes for fits and training batches")
@click.option("--ensemble", type=COUNT, help="networks per batched pass")
@click.option("--cluster", help="run the tasks on Dask: local:N worker processes, or a "
              "scheduler address such as tcp://host:8786 (the output folder must be on a "
              "filesystem every worker sees)")
@click.option("--compute", "--device", "compute", default="auto", show_default=True,
              help="where to compute: auto, cpu or cuda (--device: the old name)")
@click.option("--out", type=click.Path(file_okay=False))
@click.option("--no-progress", is_flag=True)
@handle_errors
def bias_sweep_cmd(spec_file, epochs, subset, seeds, data_seeds, sizes, truths, jobs, ensemble,
                   cluster, compute, out, no_progress):
    """Modeling bias of fitted device models over truths, N, methods and seeds.

    Resumable: rerunning the same command skips every finished fit and training batch.
    """
    _out_flag(out)
    from .io.schema import load_yaml
    from .sweep import run_sweep
    from .sweep.spec import parse_sweep_spec

    for flag, value in (("--seeds", seeds), ("--data-seeds", data_seeds)):
        if value is not None and value < 1:
            raise MemsimError(f"{flag} must be at least 1, not {value}")
    raw = load_yaml(spec_file)
    # truths on the command line are relative to where the command runs, not to the spec
    cli_truths = [_cwd_path(t) for t in truths]
    flags = {"subset": subset, "out": out, "jobs": jobs, "ensemble": ensemble,
             "cluster": cluster, "n": _int_list(sizes, "--n"), "training": {"epochs": epochs},
             "train_seeds": list(range(seeds)) if seeds else None,
             "data_seeds": list(range(data_seeds)) if data_seeds else None,
             "truths": cli_truths or None}
    spec = parse_sweep_spec(merge_flags(raw, flags, spec_file), spec_file)
    if out is not None:
        spec.out = out
    result = run_sweep(spec, compute, file=spec_file, progress=not no_progress,
                       log=lambda msg: click.echo(msg, err=True))
    click.echo((result / "bias.md").read_text())
    click.echo(f"wrote {_shown(result)}")


@main.command("ablate")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--epochs", type=COUNT, help="epochs of every network")
@click.option("--subset", type=COUNT, help="use N training examples")
@click.option("--seeds", type=COUNT, help="number of training seeds (0..K-1)")
@click.option("--jobs", type=COUNT, help="processes for training batches")
@click.option("--ensemble", type=COUNT, help="seeds per batched pass")
@click.option("--cluster", help="run the tasks on Dask: local:N worker processes, or a "
              "scheduler address such as tcp://host:8786 (the output folder must be on a "
              "filesystem every worker sees)")
@click.option("--compute", "--device", "compute", default="auto", show_default=True,
              help="where to compute: auto, cpu or cuda")
@click.option("--out", type=click.Path(file_okay=False))
@click.option("--no-progress", is_flag=True)
@handle_errors
def ablate_cmd(spec_file, epochs, subset, seeds, jobs, ensemble, cluster, compute, out,
               no_progress):
    """Which device imperfection costs the most accuracy: the base network trained on each
    variant of its device (imperfections switched off) over several seeds.

    Resumable: rerunning the same command skips every finished training batch.
    """
    _out_flag(out)
    from .ablate import parse_ablation_spec, run_ablation
    from .io.schema import load_yaml

    if seeds is not None and seeds < 1:
        raise MemsimError(f"--seeds must be at least 1, not {seeds}")
    raw = merge_flags(load_yaml(spec_file), {
        "seeds": list(range(seeds)) if seeds else None, "jobs": jobs, "ensemble": ensemble,
        "cluster": cluster})
    overrides = merge_flags({}, {"subset": subset, "training": {"epochs": epochs}})
    spec = parse_ablation_spec(raw, spec_file, overrides)
    if out is not None:
        spec.out = out
    result = run_ablation(spec, compute, progress=not no_progress,
                          log=lambda msg: click.echo(msg, err=True))
    click.echo((result / "ablation.md").read_text())
    click.echo((result / "ranking.md").read_text())
    click.echo(f"wrote {_shown(result)}")


@main.command("infer")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--seeds", type=COUNT, help="number of seeds (0..K-1): one draw of every cell each")
@click.option("--scales", help="variability scales, e.g. 0,1,4 (multipliers of the spread)")
@click.option("--test-subset", type=COUNT, help="evaluate on the first N test images")
@click.option("--compute", "--device", "compute", default="auto", show_default=True,
              help="where to compute: auto, cpu or cuda")
@click.option("--out", type=click.Path(file_okay=False))
@click.option("--no-plots", is_flag=True, help="skip the PNG figures")
@handle_errors
def infer_cmd(spec_file, seeds, scales, test_subset, compute, out, no_plots):
    """Write a float-trained network's weights into cells drawn from measured state
    look-up tables (bit-coded, multi-level or analog) and measure the bit error rate, the
    relative error of the coded layer's output and the test accuracy, against the
    variability scale and the read time.
    """
    _out_flag(out)
    from .infer import parse_infer_spec, run_inference
    from .io.schema import load_yaml

    if seeds is not None and seeds < 1:
        raise MemsimError(f"--seeds must be at least 1, not {seeds}")
    scale_list = None
    if scales is not None:
        try:
            scale_list = [float(v) for v in scales.split(",")]
        except ValueError:
            raise MemsimError(f"--scales must be numbers separated by commas, not {scales!r}") \
                from None
        if not all(0 <= v < float("inf") for v in scale_list):  # NaN fails too
            raise MemsimError(f"--scales must be finite and non-negative, not {scales!r}")
    raw = merge_flags(load_yaml(spec_file), {
        "seeds": list(range(seeds)) if seeds else None, "scales": scale_list,
        "test_subset": test_subset})
    spec = parse_infer_spec(raw, spec_file)
    if out is not None:
        spec.out = out
    result = run_inference(spec, compute, log=lambda m: click.echo(m, err=True),
                           plots=not no_plots)
    click.echo((result / "inference.md").read_text())
    click.echo(f"wrote {_shown(result)}")


@main.command("pulse")
@click.argument("device")
@click.option("--set", "n_set", type=COUNT, help="K SET pulses")
@click.option("--reset", "n_reset", type=COUNT, help="K RESET pulses (after the SET ones)")
@click.option("--sequence", help="signed pulse trains in order, e.g. +1000,-500")
@click.option("--from-weight", type=float, help="start weight (default 0: mid-range)")
@click.option("--from-g", type=float, help="start conductance in siemens")
@click.option("--devices", type=COUNT, default=1, show_default=True, help="devices pulsed")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--compute", "--device-compute", "compute", default="cpu", show_default=True,
              help="where to compute: auto, cpu or cuda")
@click.option("--out", type=click.Path(file_okay=False), help="output directory")
@handle_errors
def pulse_cmd(device, n_set, n_reset, sequence, from_weight, from_g, devices, seed, compute,
              out):
    """Apply pulse trains to DEVICE and write its trajectory (mean and SD over the devices,
    in conductance and weight, after every pulse).

    DEVICE: anything a train spec's device: accepts (a kind such as hfox, KIND:PRESET such as
    jart:noise_free, a device YAML, a table file or a synthetic preset).
    """
    _out_flag(out)
    from .devices.registry import parse_device
    from .devices.trajectory import parse_sequence, plot_trajectory, pulse_trajectory
    from .io.storage import save_figure, write_csv
    from .train.trainer import pick_device

    if sequence is not None and (n_set or n_reset):
        raise MemsimError("give --sequence or --set / --reset, not both")
    counts = parse_sequence(sequence) if sequence is not None else \
        [c for c in (n_set, -n_reset if n_reset else None) if c]
    if sum(map(abs, counts)) > MAX_PULSES:
        raise MemsimError(f"at most {MAX_PULSES:,} pulses in all (one trajectory row each), "
                          f"not {sum(map(abs, counts)):,}")
    if devices > MAX_DEVICES:
        raise MemsimError(f"at most {MAX_DEVICES:,} devices, not {devices:,}", None,
                          "option --devices")
    dev = parse_device(_cwd_path(device) if Path(device).exists() else device,
                       where="DEVICE", base=Path.cwd())
    table = pulse_trajectory(dev, counts, devices, from_weight=from_weight, from_g=from_g,
                             seed=seed, compute=pick_device(compute))
    safe = re.sub(r"[^\w.-]", "_", dev.describe())
    out_dir = Path(out or f"results/pulse/{safe}")
    write_csv(out_dir / "trajectory.csv", table)
    save_figure(out_dir / "trajectory.png", plot_trajectory(
        table, f"{device}: {devices} device{'s' if devices > 1 else ''}", counts))
    last = table.iloc[-1]
    click.echo(f"after {int(last['pulse'])} pulses: G = {last['g_mean']:.6g} S "
               f"(SD {last['g_std']:.3g}), w = {last['w_mean']:.6g} (SD {last['w_std']:.3g})")
    click.echo(f"wrote {_shown(out_dir)}")


@main.command("grid")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--network", "networks", multiple=True, help="only these networks of the grid")
@click.option("--subset", type=COUNT, help="use N training examples")
@click.option("--epochs", type=COUNT, help="epochs of every network")
@click.option("--compute", "--device", "compute", default="auto", show_default=True,
              help="where to compute: auto, cpu or cuda (--device: the old name)")
@click.option("--out", type=click.Path(file_okay=False), help="output directory")
@handle_errors
def grid_cmd(spec_file, networks, subset, epochs, compute, out):
    """Train a grid of devices x update algorithms x networks over seeds (SPEC_FILE: a grid
    spec such as experiments/attribution.yaml)."""
    _out_flag(out)
    from .io.schema import load_yaml
    from .train.grid import parse_grid, run_grid, write_grid_outputs
    from .train.trainer import pick_device

    raw = load_yaml(spec_file)
    nets = raw.get("networks")
    if nets is not None and (networks or epochs is not None):  # the flags index into them
        if not isinstance(nets, dict):
            raise MemsimError(f"must be a mapping of named networks, not {nets!r}", spec_file,
                              "key 'networks'")
        for name, net in nets.items():
            if not isinstance(net, dict):
                raise MemsimError(f"must be a mapping, not {net!r}", spec_file,
                                  f"key 'networks.{name}'")
    if networks:
        unknown = [n for n in networks if n not in (raw.get("networks") or {})]
        if unknown:
            raise MemsimError(f"no network {unknown[0]!r} in the grid", spec_file,
                              "option --network")
        raw = {**raw, "networks": {n: raw["networks"][n] for n in networks}}
    if subset is not None:
        raw = {**raw, "subset": subset}
    if epochs is not None:
        raw = {**raw, "networks": {
            k: merge_flags(v, {"training": {"epochs": epochs}}, spec_file, f"networks.{k}.")
            for k, v in (raw.get("networks") or {}).items()}}
    grid = parse_grid(raw, spec_file)
    out_dir = out or grid.out or f"results/{grid.name}"
    history = run_grid(grid, pick_device(compute), log=lambda m: click.echo(m, err=True))
    table = write_grid_outputs(grid, history, out_dir)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"wrote {_shown(out_dir)}")


@main.command("generate")
@click.argument("model")
@click.option("--n", "n_points", type=COUNT, default=3000, show_default=True,
              help="points per polarity")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--unit", type=click.Choice(["S", "mS", "uS", "nS"]), default="S",
              show_default=True, help="unit of the values written")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="CSV file")
@handle_errors
def generate_cmd(model, n_points, seed, unit, out):
    """Draw a tidy (polarity,g,dg) dataset from a device model with Algorithm 2.

    MODEL: a preset name, a synthetic-device YAML or any table memsim reads.
    """
    from .io.data import write_tidy_csv
    from .models.resolve import load_model
    from .models.sampling import sample_points

    _check_points(n_points)
    _out_flag(str(Path(out).parent))
    data = sample_points(load_model(model), n_points, seed)
    write_tidy_csv(data, out, unit)
    click.echo(f"wrote {data.n()} points ({n_points} per polarity, unit {unit}) to {_shown(out)}")


@main.command("bench")
@click.argument("which", nargs=-1)
@click.option("--compute", "--device", "device", default="auto", show_default=True,
              help="where to compute: cpu, cuda or auto (--device: the old name)")
@click.option("--out", type=click.Path(),
              help="also write the figures as CSV (fidelity: the output folder, default "
                   "results/fidelity)")
@click.option("--seeds", type=COUNT, default=3, show_default=True,
              help="fidelity: data seeds per truth and N")
@click.option("--sizes", default="300,3000,30000", show_default=True,
              help="fidelity: points per polarity, comma-separated")
@handle_errors
def bench_cmd(which, device, out, seeds, sizes):
    """Run benchmarks: sampling, optuna, training, ensemble (default: these four), jart,
    jart_mixed (JART device-pulses per second, noise-free and realistic mixed), jart_sparse
    (pulses a few devices at a time, simulated and from the state table), infer (coded
    weight reads per second), cluster (a reduced bias sweep: the local executor against a
    Dask LocalCluster of 2 workers, and the expected scaling with workers), or fidelity
    (fit methods against measured LUTs, written to a folder)."""
    import pandas as pd

    from . import bench
    from .io.storage import write_csv
    from .train.trainer import pick_device

    if "fidelity" in which:
        if len(which) > 1:
            raise MemsimError("run fidelity on its own: it writes a folder, not figures")
        return _bench_fidelity(_out_flag(out) or "results/fidelity", seeds, sizes)
    if out:
        _out_flag(str(Path(out).parent))  # a CSV file
    device = pick_device(device)
    names = list(which) or ["sampling", "optuna", "training", "ensemble"]
    runs = {"sampling": lambda: bench.bench_sampling(device=device),
            "optuna": lambda: bench.bench_optuna(),
            "training": lambda: bench.bench_training(device=device),
            "ensemble": lambda: bench.bench_ensemble(device=device),
            "jart": lambda: bench.bench_jart(device=device),
            "jart_mixed": lambda: bench.bench_jart(preset="realistic_mixed", device=device),
            "jart_sparse": lambda: bench.bench_jart_sparse(device=device),
            "infer": lambda: bench.bench_infer(device=device),
            "cluster": lambda: bench.bench_cluster()}
    unknown = [n for n in names if n not in runs]
    if unknown:
        raise MemsimError(f"unknown benchmark {unknown[0]!r}; choose from "
                          f"{', '.join([*runs, 'fidelity'])}")
    click.echo(f"machine: {bench.machine()}")
    results = []
    for name in names:
        results.append(runs[name]())
        click.echo(bench.summary(results[-1:]))
    if out:
        write_csv(out, pd.DataFrame(results))


def _bench_fidelity(out: str, seeds: int, sizes: str) -> None:
    from .fit import fidelity

    try:
        ns = tuple(int(v) for v in sizes.split(","))
    except ValueError:
        raise MemsimError(f"--sizes must be integers separated by commas, not {sizes!r}") from None
    if min(ns) < 100:
        raise MemsimError(f"--sizes: every size must be >= 100, not {min(ns)}")
    from .io.paths import ROOT  # the shipped device_data/

    for path in fidelity.bench(fidelity.FidelitySpec(sizes=ns, seeds=seeds), ROOT,
                               _cwd_path(out), progress=lambda msg: click.echo(msg, err=True)):
        click.echo(f"wrote {_shown(path)}")
    click.echo(Path(_cwd_path(out), "summary.md").read_text())


@main.command("presets")
def presets_cmd():
    """List the synthetic-device presets."""
    from .models.synthetic import load_synthetic, preset_names

    for name in preset_names():
        dev = load_synthetic(name)
        click.echo(f"{name:16s} {dev.description}")


if __name__ == "__main__":
    main()
