"""Benchmarks whose figures go into issue notes and results/ (never into timed tests).

Each benchmark returns a dict of figures. Absolute times depend on the machine and its load,
so every training figure is also given as a ratio measured in the same process.
"""

from __future__ import annotations

import platform
import time

import numpy as np
import torch

from .devices.registry import population_for
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


def bench_sampling(model_ref: str = "device_data/xbtorch_tiox/optuna_exp_1.5V",
                   devices: int = 1_000_000, pulses: int = 50, device: str = "cpu") -> dict:
    """Jump-table pulses per second: ``devices`` float32 devices, SET then RESET pulses."""
    model = load_model(model_ref)
    pop = population_for(model, devices, device=device, seed=0)
    pop.program((model.g_min + model.g_max) / 2)
    pop.pulse_all("set", 3)  # warm-up: buffers, caches
    _sync(device)
    t0 = time.perf_counter()
    pop.pulse_all("set", pulses // 2)
    pop.pulse_all("reset", pulses - pulses // 2)
    _sync(device)
    dt = time.perf_counter() - t0
    # the same through apply(): the training path (signed counts, multi-pulse)
    counts = torch.randint(-3, 4, (devices,), generator=torch.Generator().manual_seed(0))
    counts = counts.to(device)
    pop.apply(counts)
    _sync(device)
    t1 = time.perf_counter()
    reps = 5
    applied = sum(pop.apply(counts) for _ in range(reps))
    _sync(device)
    dt_apply = time.perf_counter() - t1
    return {"benchmark": "sampling", "model": model_ref, "device": device, "devices": devices,
            "pulses_per_s": devices * pulses / dt, "seconds": dt,
            "apply_pulses_per_s": applied / dt_apply}


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
            "seconds": dt, "best_bins": {p: v["bins"] for p, v in best.items()}}


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


def bench_training(table: str = "device_data/xbtorch_tiox/optuna_exp_1.5V", repeats: int = 2,
                   device: str = "cpu", subset: int | None = None) -> dict:
    """One MNIST epoch of a 784-100-10 MLP, batch 64, SGD: differential pairs on a jump table
    against the float network, timed alternately in the same process."""
    from .train.spec import parse_train_spec
    from .train.trainer import Trainer, prepare

    base = {"network": {"kind": "mlp", "hidden": [100]}, "subset": subset,
            "training": {"epochs": 1, "batch": 64, "lr": 0.1}}
    spec_f = parse_train_spec({**base, "device": "float", "name": "float"})
    spec_d = parse_train_spec({**base, "device": {"kind": "table", "path": table},
                               "name": "table", "mapping": {"kind": "pair"}})
    data = prepare(spec_f, device)
    prepare(spec_d, device)
    trainers = {"float": Trainer(spec_f, data, device), "table": Trainer(spec_d, data, device)}
    times = {"float": [], "table": []}
    pulses = []
    for _ in range(repeats):
        for name, tr in trainers.items():
            p0 = tr.net.syn.pulses
            _sync(device)
            t0 = time.perf_counter()
            history = tr.run(1, progress=False)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
            if name == "table":
                pulses.append((tr.net.syn.pulses - p0) / times[name][-1])
                acc = float(history["test_acc"].iloc[-1])
    tf, td = min(times["float"]), min(times["table"])
    return {"benchmark": "training", "device": device, "float_epoch_s": tf,
            "table_epoch_s": td, "ratio": td / tf, "pulses_per_s": float(np.median(pulses)),
            "table_acc_after_epochs": acc, "epochs_each": repeats}


def bench_ensemble(table: str = "device_data/xbtorch_tiox/optuna_exp_1.5V", members: int = 8,
                   device: str = "cpu", subset: int | None = None) -> dict:
    """K networks (784-100-10 MLP on a jump table, one MNIST epoch) trained in one batched
    pass against the same K trained one after the other, in the same process."""
    from .train.spec import parse_train_spec
    from .train.trainer import Trainer, prepare

    base = {"network": {"kind": "mlp", "hidden": [100]}, "subset": subset,
            "device": {"kind": "table", "path": table},
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
