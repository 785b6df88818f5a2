"""Figures for fits: data with the fitted mean +- sigma, the table as a heatmap, pulse trains.

Every function returns a matplotlib Figure; :func:`memsim.io.storage.save_figure` writes it
atomically; the backend is the caller's (the CLI picks Agg). Axes are labelled in a readable
unit (uS, nS, ...) picked from the data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import seeds, units
from ..io.data import PulseData
from ..metrics.pulse_trains import (
    default_pulses,
    simulate_from_traces,
    simulate_pulse_train,
    trace_statistics,
)
from ..models.base import POLARITIES, DeviceModel

COLORS = {"set": "tab:blue", "reset": "tab:red"}


def _scale(model: DeviceModel):
    return units.display_unit(model.unit, max(abs(model.g_max), abs(model.g_min)))


def _dscale(model: DeviceModel, values: np.ndarray):
    return units.display_unit(model.unit, float(np.nanmax(np.abs(values))) or 1.0)


def plot_fit(model: DeviceModel, train: PulseData | None, heldout: PulseData | None = None,
             truth: DeviceModel | None = None, title: str = "", max_points: int = 4000,
             seed: int = 0):
    """(G, dG) scatter per polarity with the model's mean, +-1 sigma and 5-95 % band."""
    gl, gs = _scale(model)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    rng = seeds.rng(seed, "display")
    g = np.linspace(model.g_min, model.g_max, 600)
    for ax, pol in zip(axes, POLARITIES, strict=True):
        q = model.quantile(pol, g, np.array([0.05, 0.95]))
        mu, sd = model.mean(pol, g), model.std(pol, g)
        span = np.concatenate([q.ravel(), mu + sd, mu - sd])
        dl, ds = _dscale(model, span)
        for data, label, alpha in ((train, "fit data", 0.25), (heldout, "held out", 0.25)):
            if data is None or data.n(pol) == 0:
                continue
            pts = data.points[pol]
            take = rng.permutation(len(pts))[:max_points]
            ax.scatter(pts.g[take] / gs, pts.dg[take] / ds, s=4, alpha=alpha,
                       color="grey" if label == "fit data" else "tab:green", label=label,
                       rasterized=True)
        c = COLORS[pol]
        ax.fill_between(g / gs, (mu - sd) / ds, (mu + sd) / ds, color=c, alpha=0.25,
                        label="model mean ± σ")
        ax.plot(g / gs, mu / ds, color=c, lw=2, label="model mean")
        ax.plot(g / gs, q[:, 0] / ds, color=c, lw=1, ls=":", label="model 5–95 %")
        ax.plot(g / gs, q[:, 1] / ds, color=c, lw=1, ls=":")
        if truth is not None:
            tm, ts = truth.mean(pol, g), truth.std(pol, g)
            ax.plot(g / gs, tm / ds, color="k", lw=1.2, ls="--", label="truth mean ± σ")
            ax.plot(g / gs, (tm + ts) / ds, color="k", lw=0.8, ls="--")
            ax.plot(g / gs, (tm - ts) / ds, color="k", lw=0.8, ls="--")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel(f"G before pulse [{gl}]")
        ax.set_ylabel(f"ΔG per pulse [{dl}]")
        ax.set_title(f"{pol.upper()} pulses")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_table(model: DeviceModel, title: str = "", n_g: int = 300, n_x: int = 300):
    """The conditional density p(dG | G) per polarity, each G column scaled to its maximum."""
    gl, gs = _scale(model)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    g = np.linspace(model.g_min, model.g_max, n_g)
    for ax, pol in zip(axes, POLARITIES, strict=True):
        lim = model.quantile(pol, g, np.array([0.002, 0.998]))
        x = np.linspace(lim.min(), lim.max(), n_x + 1)
        cdf = model.cdf(pol, g, x)
        dens = np.diff(cdf, axis=1)
        dens = dens / np.maximum(dens.max(axis=1, keepdims=True), 1e-300)
        dl, ds = _dscale(model, x)
        mesh = ax.pcolormesh(g / gs, (x[:-1] + x[1:]) / 2 / ds, dens.T, shading="auto",
                             cmap="viridis")
        ax.plot(g / gs, model.mean(pol, g) / ds, color="w", lw=1, label="mean")
        ax.axhline(0, color="w", lw=0.5, ls=":")
        edges = getattr(getattr(model, "tables", {}).get(pol, None), "edges", None)
        if edges is not None and len(edges) <= 80:
            for e in edges[1:-1]:
                ax.axvline(e / gs, color="w", lw=0.3, alpha=0.5)
        ax.set_xlabel(f"G [{gl}]")
        ax.set_ylabel(f"ΔG per pulse [{dl}]")
        ax.set_title(f"{pol.upper()}: p(ΔG | G), columns scaled to 1")
        fig.colorbar(mesh, ax=ax, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pulse_train(model: DeviceModel, data: PulseData | None = None,
                     truth: DeviceModel | None = None, title: str = "", devices: int = 1000,
                     pulses: int | None = None, seed: int = 0):
    """Trajectories under repeated pulses: model against measured ramps or the truth."""
    gl, gs = _scale(model)
    has_traces = data is not None and any(data.traces.get(p) for p in POLARITIES)
    fig, axes = plt.subplots(1, 2 if has_traces else 1, figsize=(12 if has_traces else 7, 4.6))
    axes = np.atleast_1d(axes)
    if has_traces:
        for ax, pol in zip(axes, POLARITIES, strict=True):
            traces = data.traces.get(pol, [])
            if not traces:
                ax.set_visible(False)
                continue
            for t in traces[:60]:
                ax.plot(np.arange(len(t)), t / gs, color="grey", lw=0.4, alpha=0.5)
            tm, ts = trace_statistics(traces)
            k = np.arange(len(tm))
            ax.plot(k, tm / gs, color="k", lw=2, label=f"measured mean ({len(traces)} ramps)")
            ax.plot(k, (tm + ts) / gs, color="k", lw=0.8, ls="--", label="measured ± σ")
            ax.plot(k, (tm - ts) / gs, color="k", lw=0.8, ls="--")
            sm, ss = simulate_from_traces(model, pol, traces, seed=seed)
            c = COLORS[pol]
            ax.plot(k, sm / gs, color=c, lw=2, label="model mean")
            ax.fill_between(k, (sm - ss) / gs, (sm + ss) / gs, color=c, alpha=0.25,
                            label="model ± σ")
            ax.set_xlabel(f"{pol.upper()} pulse number")
            ax.set_ylabel(f"G [{gl}]")
            ax.legend(fontsize=8)
    else:
        ref = truth or model
        n = pulses or default_pulses(ref)
        k = np.arange(2 * n + 1)
        ax = axes[0]
        for m, name, c in ((truth, "truth", "k"), (model, "model", "tab:purple")):
            if m is None:
                continue
            mean, std = simulate_pulse_train(m, n, n, devices, seed, g0=ref.g_min)
            ax.plot(k, mean / gs, color=c, lw=2, label=f"{name} mean")
            ax.fill_between(k, (mean - std) / gs, (mean + std) / gs, color=c, alpha=0.2,
                            label=f"{name} ± σ")
        ax.axvline(n, color="grey", lw=0.8, ls=":")
        ax.text(n / 2, ref.g_max / gs, "SET", ha="center", va="top")
        ax.text(1.5 * n, ref.g_max / gs, "RESET", ha="center", va="top")
        ax.set_xlabel("pulse number")
        ax.set_ylabel(f"G [{gl}]")
        ax.set_title(f"{devices} devices from G_min: {n} SET then {n} RESET pulses")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
