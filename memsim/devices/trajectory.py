"""Pulse responses: what ``memsim pulse DEVICE`` shows a device engineer before training.

Any device a train spec accepts (a kind with its defaults, ``KIND:PRESET``, a device YAML, a
table, a synthetic preset) receives pulse trains, e.g. ``+1000,-500`` (1000 SET pulses, then
500 RESET), on M devices started at one weight or conductance; the trajectory is the mean and
spread over the devices after every pulse, in conductance and in weight. The weight is the
linear one-device mapping of the kind's conductance range onto +-``w_max`` (the device's own
weight bound: 0.6 for JART, else 1), as a ``reference`` cell reads it.
"""

from __future__ import annotations

import re

import pandas as pd
import torch

from ..errors import MemsimError
from .base import DeviceKind

COLUMNS = ("pulse", "g_mean", "g_std", "w_mean", "w_std")


def parse_sequence(text: str) -> list[int]:
    """``+1000,-500`` -> [1000, -500]: signed pulse counts (+ SET, - RESET), in order."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not re.fullmatch(r"[+-]\d+", p) for p in parts):
        raise MemsimError(f"pulse sequence {text!r}: write signed counts separated by commas, "
                          "e.g. +1000,-500 (+ SET, - RESET)")
    counts = [int(p) for p in parts]
    if any(c == 0 for c in counts):
        raise MemsimError(f"pulse sequence {text!r}: a count of 0 pulses")
    return counts


def weight_bound(device: DeviceKind) -> float:
    return float(getattr(device, "w_bound", 1.0))


def pulse_trajectory(device: DeviceKind, sequence: list[int], devices: int = 1, *,
                     from_weight: float | None = None, from_g: float | None = None,
                     seed: int = 0, compute: str = "cpu") -> pd.DataFrame:
    """The response of ``devices`` devices to the pulse trains ``sequence``, one row per pulse
    (row 0: the start). Starts at weight 0 unless ``from_weight`` or ``from_g`` says."""
    if device.is_float:
        raise MemsimError("a float device has no pulses: name a memory device")
    if devices < 1:
        raise MemsimError(f"--devices must be at least 1, not {devices}")
    if not sequence:
        raise MemsimError("no pulses: give --set K, --reset K or a sequence such as +1000,-500")
    for count in sequence:
        polarity = "set" if count > 0 else "reset"
        if polarity not in device.polarities:
            raise MemsimError(f"the {device.kind} device takes only "
                              f"{' and '.join(device.polarities)} pulses, not {polarity}")
    lo, hi = device.g_range()
    wm = weight_bound(device)
    if from_weight is not None and from_g is not None:
        raise MemsimError("give --from-weight or --from-g, not both")
    if from_g is not None:
        if not lo <= from_g <= hi:
            raise MemsimError(f"--from-g {from_g:g} is outside the device's range "
                              f"[{lo:.6g}, {hi:.6g}] S")
        g0 = from_g
    else:
        w0 = 0.0 if from_weight is None else from_weight
        if not -wm <= w0 <= wm:
            raise MemsimError(f"--from-weight {w0:g} is outside the weight range "
                              f"[{-wm:g}, {wm:g}]")
        g0 = lo + (w0 + wm) / (2 * wm) * (hi - lo)
    pop = device.load().population(devices, device=compute, seed=seed, dtype=torch.float64)
    pop.program(torch.full((devices,), g0, dtype=torch.float64))
    total = sum(abs(c) for c in sequence)
    g_mean = torch.empty(total + 1, dtype=torch.float64)
    g_std = torch.empty(total + 1, dtype=torch.float64)
    w_mean = torch.empty(total + 1, dtype=torch.float64)
    w_std = torch.empty(total + 1, dtype=torch.float64)

    def record(k: int) -> None:
        g = pop.g.double()
        w = (2 * (g - lo) / (hi - lo) - 1) * wm
        g_mean[k], w_mean[k] = g.mean(), w.mean()
        g_std[k] = g.std() if devices > 1 else 0.0
        w_std[k] = w.std() if devices > 1 else 0.0

    record(0)
    k = 0
    for count in sequence:
        polarity = "set" if count > 0 else "reset"
        for _ in range(abs(count)):
            pop.pulse_all(polarity, 1)
            k += 1
            record(k)
    return pd.DataFrame({"pulse": range(total + 1), "g_mean": g_mean.numpy(),
                         "g_std": g_std.numpy(), "w_mean": w_mean.numpy(),
                         "w_std": w_std.numpy()})


def plot_trajectory(table: pd.DataFrame, title: str, sequence: list[int]):
    """Conductance (uS) and weight against pulse number, mean +- one SD over the devices;
    dotted lines where the polarity changes."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(6.5, 5.2), sharex=True)
    x = table["pulse"].to_numpy()
    for ax, col, scale, label in ((axes[0], "g", 1e6, "conductance [uS]"),
                                  (axes[1], "w", 1.0, "weight")):
        mean = table[f"{col}_mean"].to_numpy() * scale
        std = table[f"{col}_std"].to_numpy() * scale
        ax.plot(x, mean, lw=1.2)
        ax.fill_between(x, mean - std, mean + std, alpha=0.25, lw=0)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        edge = 0
        for count in sequence[:-1]:
            edge += abs(count)
            ax.axvline(edge, ls=":", color="0.4", lw=0.8)
    axes[1].set_xlabel("pulse")
    axes[0].set_title(title)
    fig.tight_layout()
    return fig
