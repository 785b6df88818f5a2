"""Benchmarks whose figures go into issue notes and results/ (never into timed tests).

Each benchmark returns a dict of figures. Absolute times depend on the machine and its load,
so every training figure is also given as a ratio measured in the same process.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch

from .devices.registry import population_for
from .io.paths import ROOT
from .models.resolve import load_model


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _pulse_rates(pop, pulses: int, device: str, max_count: int, warmup: int,
                 reps: int) -> tuple[float, float, float]:
    """Pulses per second of ``pop``: SET then RESET pulses on every device at once (and the
    seconds they took), and through apply() with signed counts up to ``max_count`` (the
    training path), after ``warmup`` pulses (buffers, caches)."""
    pop.pulse_all("set", warmup)
    _sync(device)
    t0 = time.perf_counter()
    pop.pulse_all("set", pulses // 2)
    pop.pulse_all("reset", pulses - pulses // 2)
    _sync(device)
    dt = time.perf_counter() - t0
    counts = torch.randint(-max_count, max_count + 1, (pop.numel,),
                           generator=torch.Generator().manual_seed(0)).to(device)
    t1 = time.perf_counter()
    applied = sum(pop.apply(counts) for _ in range(reps))
    _sync(device)
    return pop.numel * pulses / dt, dt, applied / (time.perf_counter() - t1)


def shipped(ref: str) -> str:
    """A data path as given if it exists here, else the one shipped with memsim: a benchmark
    runs from any folder."""
    return ref if Path(ref).exists() else str(ROOT / ref)


def bench_sampling(model_ref: str = "device_data/xbtorch_tiox/optuna_exp_1.5V",
                   devices: int = 1_000_000, pulses: int = 50, device: str = "cpu") -> dict:
    """Jump-table pulses per second: ``devices`` float32 devices, SET then RESET pulses."""
    model = load_model(shipped(model_ref))
    pop = population_for(model, devices, device=device, seed=0)
    pop.program((model.g_min + model.g_max) / 2)
    pop.apply(torch.ones(devices, dtype=torch.int64, device=device))  # apply's buffers too
    rate, dt, apply_rate = _pulse_rates(pop, pulses, device, 3, warmup=3, reps=5)
    return {"benchmark": "sampling", "model": model_ref, "device": device, "devices": devices,
            "pulses_per_s": rate, "seconds": dt, "apply_pulses_per_s": apply_rate}


def bench_jart(devices: int = 1_000_000, pulses: int = 4, preset: str = "noise_free",
               device: str = "cpu") -> dict:
    """JART device-pulses per second (each pulse 100 Euler steps): ``devices`` devices, SET
    then RESET pulses of all at once; and the same through apply() with mixed signed counts
    (the training path)."""
    from .devices.jart import JartKind

    pop = JartKind.from_preset(preset).population(devices, device=device, seed=0)
    rate, dt, apply_rate = _pulse_rates(pop, pulses, device, 2, warmup=1, reps=1)
    return {"benchmark": "jart", "preset": preset, "device": device, "devices": devices,
            "device_pulses_per_s": rate, "seconds": dt,
            "apply_device_pulses_per_s": apply_rate}


def bench_jart_sparse(devices: int = 235_146, per_round: int = 2000, rounds: int = 200,
                      device: str = "cpu") -> dict:
    """The pulse-train rule's pattern on the noise-free JART device: ``rounds`` pulses of a few
    devices each (a random ``per_round`` of the study's 235,146 weights, SET and RESET in
    turn), simulated, and looked up in the state table: first with the table empty (each
    round fills the blocks it visits), then the same rounds again from the same start (every
    state already in the table)."""
    from .devices.jart import JartKind, forget_state_tables

    gen = torch.Generator().manual_seed(0)
    picks = [torch.randperm(devices, generator=gen)[:per_round].to(device)
             for _ in range(rounds)]
    start = torch.rand(devices, generator=gen, dtype=torch.float64) * 2 - 1

    def run(tabulate: bool) -> tuple[float, torch.Tensor]:
        kind = JartKind.from_preset("noise_free")
        kind.tabulate = tabulate
        pop = kind.population(devices, device=device)
        pop.program(pop.g_min + (start.to(device) + 1) / 2 * (pop.g_max - pop.g_min))
        _sync(device)
        t0 = time.perf_counter()
        for r, idx in enumerate(picks):
            pop._pulse(idx, r % 2 == 0)
        _sync(device)
        return time.perf_counter() - t0, pop.n

    forget_state_tables()
    simulated, n_sim = run(False)
    cold, _ = run(True)
    warm, n_tab = run(True)
    ulps = (n_sim.view(torch.int32) - n_tab.view(torch.int32)).abs().max()
    pulses = rounds * per_round
    return {"benchmark": "jart_sparse", "device": device, "devices": devices,
            "per_round": per_round, "rounds": rounds,
            "simulated_device_pulses_per_s": pulses / simulated,
            "tabulated_cold_device_pulses_per_s": pulses / cold,
            "tabulated_warm_device_pulses_per_s": pulses / warm,
            "warm_over_simulated": simulated / warm, "cold_over_simulated": simulated / cold,
            "max_ulps_from_simulated": int(ulps)}


def bench_infer(weights: int = 1 << 20, draws: int = 4, fmt: str = "float32",
                device: str = "cpu") -> dict:
    """Coded-weight reads per second (weights × bits × draws): float_bits on the measured
    two-level LUT (Levy techC levels 0 and 31): write the cells, draw every read, decode."""
    from .infer.codings import FORMATS, FloatBits
    from .io.schema import Section
    from .states import parse_lut

    lut = parse_lut(Section({"source": "levy", "levels": [0, 31], "file": shipped(
        "device_data/levy_multilevel/techC_relaxdata.min.tsv.gz")}, None), None)
    coding = FloatBits(Section({"format": fmt}, None))
    w = torch.randn(weights, generator=torch.Generator().manual_seed(0)).to(device) * 0.1
    sampler = lut.sampler("empirical", device=device)
    gen = torch.Generator(device=device).manual_seed(0)

    def once():
        cells = coding.write(w, lut)
        g = torch.stack([sampler.draw(cells, 1.0, gen) for _ in range(draws)])
        coding.read(g, w, sampler, 1.0)
        _sync(device)

    once()
    reps = 3
    t0 = time.perf_counter()
    for _ in range(reps):
        once()
    dt = (time.perf_counter() - t0) / reps
    return {"benchmark": "infer", "format": fmt, "device": device, "weights": weights,
            "draws": draws, "coded_bit_reads_per_s": weights * draws * FORMATS[fmt][2] / dt,
            "coded_weights_per_s": weights * draws / dt, "seconds": dt}


def bench_optuna(points: int = 10_000, trials: int = 100, preset: str = "asymmetric") -> dict:
    """Wall time of an Optuna fit (both polarities, ``trials`` each) on ``points`` points."""
    from .fit.optuna_binning import OptunaSettings, fit_optuna
    from .models.sampling import sample_points
    from .models.synthetic import load_synthetic

    data = sample_points(load_synthetic(preset), points // 2, seed=0)
    t0 = time.perf_counter()
    table, _ = fit_optuna(data, OptunaSettings(trials=trials, progress=False), seed=0)
    dt = time.perf_counter() - t0
    best = table.metadata["params"]["best"]
    return {"benchmark": "optuna", "points": points, "trials_per_polarity": trials,
            "seconds": dt, "best": {p: {k: v for k, v in b.items() if k != "cv_crps"}
                                    for p, b in best.items()}}


def summary(results: list[dict]) -> str:
    lines = []
    for r in results:
        items = ", ".join(f"{k}={_fmt(v)}" for k, v in r.items())
        lines.append(items)
    return "\n".join(lines)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, np.floating):
        return f"{float(v):.4g}"
    return str(v)


ALGORITHMS = {"sgd": "sgd", "mixed_precision": "mixed_precision",
              "mixed_precision_verify": {"kind": "mixed_precision", "verify": True},
              "tiki_taka": {"kind": "tiki_taka", "n_reads": 64},
              "pulse_trains": "pulse_trains"}


def bench_training(table: str = "device_data/xbtorch_tiox/optuna_exp_1.5V", repeats: int = 2,
                   device: str = "cpu", subset: int | None = None,
                   algorithms: dict | None = None) -> dict:
    """One MNIST epoch of a 784-100-10 MLP, batch 64: differential pairs on a jump table with
    each update algorithm against the float network, timed alternately in the same process
    (best of ``repeats``): the ratio device epoch / float epoch per algorithm."""
    from .train.spec import parse_train_spec
    from .train.trainer import Trainer, prepare

    algorithms = algorithms or ALGORITHMS
    base = {"network": {"kind": "mlp", "hidden": [100]}, "subset": subset,
            "training": {"epochs": 1, "batch": 64, "lr": 0.1}}
    specs = {"float": parse_train_spec({**base, "device": "float", "name": "float"})}
    for name, algo in algorithms.items():
        specs[name] = parse_train_spec({**base, "device": {"kind": "table", "path": shipped(table)},
                                        "name": name, "mapping": {"kind": "pair"},
                                        "training": {**base["training"], "algorithm": algo}})
    data = prepare(specs["float"], device)
    trainers = {name: Trainer(spec, data, device) for name, spec in specs.items()}
    times = {name: [] for name in trainers}
    pulses, accs = {}, {}
    for _ in range(repeats):
        for name, tr in trainers.items():
            p0 = tr.net.syn.pulses
            _sync(device)
            t0 = time.perf_counter()
            history = tr.run(1, progress=False)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
            pulses[name] = (tr.net.syn.pulses - p0) / times[name][-1]
            accs[name] = float(history["test_acc"].iloc[-1])
    tf = min(times["float"])
    out = {"benchmark": "training", "device": device, "float_epoch_s": tf,
           "epochs_each": repeats}
    for name in algorithms:
        td = min(times[name])
        out.update({f"{name}_epoch_s": td, f"{name}_ratio": td / tf,
                    f"{name}_pulses_per_s": pulses[name], f"{name}_acc": accs[name]})
    return out


def bench_ensemble(table: str = "device_data/xbtorch_tiox/optuna_exp_1.5V", members: int = 8,
                   device: str = "cpu", subset: int | None = None) -> dict:
    """K networks (784-100-10 MLP on a jump table, one MNIST epoch) trained in one batched
    pass against the same K trained one after the other, in the same process."""
    from .train.spec import parse_train_spec
    from .train.trainer import Trainer, prepare

    base = {"network": {"kind": "mlp", "hidden": [100]}, "subset": subset,
            "device": {"kind": "table", "path": shipped(table)},
            "training": {"epochs": 1, "batch": 64, "lr": 0.1}}
    batched = parse_train_spec({**base, "seeds": list(range(members))})
    data = prepare(batched, device)
    _sync(device)
    t0 = time.perf_counter()
    hb = Trainer(batched, data, device).run(progress=False)
    _sync(device)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single_acc = []
    for seed in range(members):
        spec = parse_train_spec({**base, "seed": seed})
        single_acc.append(float(Trainer(spec, data, device).run(progress=False)
                                ["test_acc"].iloc[-1]))
    _sync(device)
    t_seq = time.perf_counter() - t0
    return {"benchmark": "ensemble", "device": device, "members": members,
            "batched_s": t_batched, "sequential_s": t_seq, "speedup": t_seq / t_batched,
            "batched_mean_acc": float(hb["test_acc"].mean()),
            "sequential_mean_acc": float(np.mean(single_acc))}


CLUSTER_SWEEP = {  # a reduced bias sweep: the study's synthetic target, every kind of task
    "name": "bench_cluster", "truths": ["xbtorch_target"], "n": [300, 3000],
    "methods": [{"name": "bin8", "method": "binning", "bins": 8, "edges": "width",
                 "stat": "empirical"},
                {"name": "optuna", "method": "optuna", "trials": 50},
                {"name": "smooth", "method": "smooth"},
                {"name": "truth", "method": "truth"}],
    "data_seeds": [0, 1, 2, 3], "train_seeds": [0, 1], "subset": 5000,
    "networks": [{"name": "mlp", "kind": "mlp", "hidden": [100]}],
    "mapping": {"kind": "pair", "policy": "split", "w_max": 1.0, "max_pulses": 8},
    "training": {"epochs": 1, "batch": 64, "lr": 0.1}, "reference_replicates": 4,
    "ensemble": 4}
FULL_SWEEPS = ("bias_synthetic.yaml", "bias_tiox.yaml", "bias_taox.yaml")  # experiments/


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of independent tasks on ``workers`` workers, longest first to the least
    loaded (the LPT schedule; within 4/3 of the best possible)."""
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)


def bench_cluster(workers: int = 2, spec: dict | None = None,
                  scaling: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)) -> dict:
    """A reduced bias sweep run twice from an empty store, in the same process: by the local
    executor (this process, every core) and by a Dask LocalCluster of ``workers`` processes.
    Then the wall time expected on W workers from the measured task times (fits, then
    batches, each stage scheduled longest first), and the tasks the full-scale sweeps hold."""
    import tempfile

    from .sweep import load_sweep_spec, parse_sweep_spec, run_sweep
    from .sweep.executors import executor_for
    from .sweep.plan import plan
    from .sweep.spec import validate
    from .sweep.store import SweepStore

    doc = spec or CLUSTER_SWEEP
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cluster in (("local", None), ("dask", f"local:{workers}")):
            sweep = parse_sweep_spec({**doc, "out": str(Path(tmp) / name)})
            executor = executor_for(cluster)
            if cluster:
                executor.start()  # the cluster's start-up is timed apart
            t0 = time.perf_counter()
            run_sweep(sweep, "cpu", progress=False, log=lambda m: None, executor=executor)
            seconds[name] = time.perf_counter() - t0
        fits, batches = plan(sweep, validate(sweep))
        store = SweepStore(Path(tmp) / "dask")
        fit_s = [store.get("fits", f["key"])["seconds"] for f in fits]
        batch_s = [store.get("batches", b["key"])["seconds"] for b in batches]
    tasks = len(fits) + len(batches)
    out = {"benchmark": "cluster", "workers": workers, "fits": len(fits),
           "batches": len(batches), "networks": sum(len(b["members"]) for b in batches),
           "local_s": seconds["local"], "dask_s": seconds["dask"],
           "local_tasks_per_min": 60 * tasks / seconds["local"],
           "dask_tasks_per_min": 60 * tasks / seconds["dask"],
           "dask_speedup": seconds["local"] / seconds["dask"],
           "fit_task_s_sum": sum(fit_s), "fit_task_s_max": max(fit_s),
           "batch_task_s_sum": sum(batch_s), "batch_task_s_max": max(batch_s)}
    one = makespan(fit_s, 1) + makespan(batch_s, 1)
    for w in scaling:
        out[f"expected_speedup_{w}_workers"] = one / (makespan(fit_s, w) + makespan(batch_s, w))
    for name in FULL_SWEEPS:
        path = Path(__file__).resolve().parents[1] / "experiments" / name
        full = load_sweep_spec(path)
        f_full, b_full = plan(full, validate(full, path))
        out[f"{Path(path).stem}_full_tasks"] = f"{len(f_full)} fits, {len(b_full)} batches"
    return out
