"""Pulse trains: many simulated devices through trains of pulses under a model, compared with a
reference model or with measured ramps; and the read-noise diagnostic of measured ramps."""

from __future__ import annotations

import numpy as np
import torch

from ..devices.registry import population_for
from ..models.base import DeviceModel


def default_pulses(model: DeviceModel, lo: int = 20, hi: int = 1000) -> int:
    """Pulses for a SET train to cross most of the range at the model's mean rate."""
    step = model.nominal_step("set", n_grid=101)
    span = model.g_max - model.g_min
    n = 1.5 * span / step if step > 0 else hi
    return int(np.clip(np.ceil(n), lo, hi))


def simulate_pulse_train(model: DeviceModel, n_set: int, n_reset: int, devices: int = 2000,
                         seed: int = 0, g0=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of G over ``devices`` devices through n_set SET then n_reset RESET pulses.

    ``g0``: start conductance(s) (default G_min); a 1-D array gives one start per device.
    Returns two arrays of length n_set + n_reset + 1 (the start included).
    """
    pop = population_for(model, devices, seed=seed, dtype=torch.float64)
    pop.program(model.g_min if g0 is None else torch.as_tensor(g0, dtype=torch.float64))
    mean, std = [], []
    for k in range(n_set + n_reset + 1):
        g = pop.conductance()
        mean.append(float(g.mean()))
        std.append(float(g.std()))
        if k < n_set + n_reset:
            pop.pulse_all("set" if k < n_set else "reset")
    return np.array(mean), np.array(std)


_REFERENCE_TRAINS: dict = {}  # id(model) -> (model, {(pulses, devices, seed): trains})


def _reference_train(ref: DeviceModel, n: int, devices: int, seed: int):
    """The reference's pulse trains, simulated once per model object: every table fitted to
    one truth is compared with the same simulation (a physics truth such as JART takes
    seconds per train). The model is held with its entry, so its id cannot be reused."""
    held = _REFERENCE_TRAINS.get(id(ref))
    if held is None or held[0] is not ref:
        if len(_REFERENCE_TRAINS) >= 8:
            _REFERENCE_TRAINS.clear()
        held = _REFERENCE_TRAINS[id(ref)] = (ref, {})
    key = (n, devices, seed)
    if key not in held[1]:
        held[1][key] = simulate_pulse_train(ref, n, n, devices, seed, g0=ref.g_min)
    return held[1][key]


def pulse_train_distance(model: DeviceModel, ref: DeviceModel, pulses: int | None = None,
                         devices: int = 2000, seed: int = 0) -> dict[str, dict]:
    n = pulses or default_pulses(ref)
    # the same seed for both (common random numbers): a model equal to its reference scores 0
    ma, sa = simulate_pulse_train(model, n, n, devices, seed, g0=ref.g_min)
    mb, sb = _reference_train(ref, n, devices, seed)
    span = ref.g_max - ref.g_min
    out = {}
    for pol, sl in (("set", slice(0, n + 1)), ("reset", slice(n, 2 * n + 1))):
        out[pol] = {
            "train_mean": float(np.sqrt(np.mean((ma[sl] - mb[sl]) ** 2)) / span),
            "train_std": float(np.sqrt(np.mean((sa[sl] - sb[sl]) ** 2)) / span),
        }
    return out


def read_noise_fraction(model: DeviceModel, polarity: str, traces: list[np.ndarray]) -> float:
    """Share of the dG variance of measured ramps that behaves like read noise.

    Consecutive differences of readings with white read noise (variance r^2) are negatively
    correlated: cov(dG_k, dG_k+1) = -r^2 while var(dG) = w^2 + 2 r^2. This returns 2 r^2 /
    var(dG) from the residuals about the model's mean step; near 1 the ramps are mostly read
    noise, which a jump table would wrongly treat as write noise (its trajectories then spread
    far faster than the measured ramps).
    """
    cov = var = 0.0
    for t in traces:
        if len(t) < 3:
            continue
        r = np.diff(t) - model.mean(polarity, t[:-1])
        r = r - r.mean()
        cov += float(np.sum(r[:-1] * r[1:]))
        var += float(np.sum(r * r))
    return float(np.clip(-2 * cov / var, 0.0, 1.0)) if var > 0 else float("nan")


def trace_statistics(traces: list[np.ndarray], min_fraction: float = 0.5):
    """Mean and std of measured ramps by pulse index, while enough ramps are that long."""
    if not traces:
        return None
    length = int(np.quantile([len(t) for t in traces], 1 - min_fraction))
    mat = np.full((len(traces), length), np.nan)
    for i, t in enumerate(traces):
        mat[i, : min(len(t), length)] = t[:length]
    return np.nanmean(mat, axis=0), np.nanstd(mat, axis=0)


def simulate_from_traces(model: DeviceModel, polarity: str, traces: list[np.ndarray],
                         replicas: int = 50, seed: int = 0):
    """The model's mean/std trajectory started from each ramp's first reading."""
    stats = trace_statistics(traces)
    if stats is None:
        return None
    length = len(stats[0])
    starts = np.repeat([t[0] for t in traces], replicas)
    lasts = torch.as_tensor(np.repeat([len(t) for t in traces], replicas))
    pop = population_for(model, len(starts), seed=seed, dtype=torch.float64)
    pop.program(torch.as_tensor(starts))
    mean, std = [], []
    for k in range(length):
        g = pop.conductance()[lasts > k]  # like the measured statistics: ramps still running
        mean.append(float(g.mean()))
        std.append(float(g.std()))
        if k < length - 1:
            pop.pulse_all(polarity)
    return np.array(mean), np.array(std)


