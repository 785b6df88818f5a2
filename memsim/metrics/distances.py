"""Device-level metrics: how faithful is a device model?

Against a reference *model* (a known truth or another table), per polarity. The one-pulse
distributions are compared as data drawn with Algorithm 2 can show them: conditioned on the
change keeping G inside the reference's range (a device near G_min cannot show a large RESET
step), so a table fitted to enough such data converges to distance zero.

* ``ks``: Kolmogorov-Smirnov distance between the conditional dG distributions at each G,
  averaged over a grid of G across the range, each G weighted by the probability that the
  reference's change stays in range (the density of Algorithm-2 data over G: where a device
  always leaves the range, no data can exist and the conditional distribution is undefined);
  ``ks_max`` is the largest over the G where that probability is at least 1 %;
* ``w1``: Wasserstein-1 distance between them, averaged the same way (``w1_rel``: divided by
  the reference's mean dG spread, so devices of different scales compare);
* ``rmse_mean`` / ``rmse_std``: RMSE of the mean and std profiles over G (``_rel`` likewise);
* ``train_mean`` / ``train_std``: simulate many devices through a train of SET then RESET
  pulses under both models; RMSE between the mean (and spread) trajectories, as a fraction of
  the conductance range.

Against held-out *data* the same names are estimated from the points: the data are split into
equal-count G bins and each bin's dG sample is compared with the model's mixture over the
bin's conductances (again conditioned on staying in range); ``crps`` (continuous ranked
probability score, lower is better) and ``pit_ks`` (KS distance of the probability integral
transform from uniform, randomised within atoms) score the points directly. When the data
hold measured ramps, the pulse-train metrics compare the model's trajectories, started where
each ramp starts, with the ramps, and ``read_noise_frac`` estimates how much of the ramps'
dG variance is read noise rather than write noise.
"""

from __future__ import annotations

import numpy as np

from ..io.data import PulseData
from ..models.base import POLARITIES, DeviceModel
from ..seeds import seed_for
from .pulse_trains import (
    pulse_train_distance,
    read_noise_fraction,
    simulate_from_traces,
    trace_statistics,
)
from .scoring import crps

# ------------------------------------------------------------- model vs model


def _g_grid(model: DeviceModel, ref: DeviceModel, n: int) -> np.ndarray:
    lo, hi = max(model.g_min, ref.g_min), min(model.g_max, ref.g_max)
    if hi <= lo:
        lo, hi = ref.g_min, ref.g_max
    return lo + (np.arange(n) + 0.5) / n * (hi - lo)


class _InRange:
    """A model's one-pulse distribution conditioned on landing inside [lo, hi]: what data drawn
    with Algorithm 2 (which rejects points leaving the range) can show of it."""

    def __init__(self, model: DeviceModel, pol: str, g: np.ndarray, lo: float, hi: float):
        self.model, self.pol, self.g = model, pol, g
        a, b = (lo - g)[:, None], (hi - g)[:, None]
        self.fa = model.cdf(pol, g, a - 1e-12 * (np.abs(a) + 1e-300))
        self.fb = model.cdf(pol, g, b)
        self.mass = np.maximum(self.fb - self.fa, 1e-12)

    def quantile(self, p: np.ndarray) -> np.ndarray:
        return self.model.quantile(self.pol, self.g, self.fa + p[None, :] * self.mass)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.clip((self.model.cdf(self.pol, self.g, x) - self.fa) / self.mass, 0, 1)


def distribution_distances(model: DeviceModel, ref: DeviceModel, polarity: str,
                           g: np.ndarray, n_p: int = 512, in_range: bool = True):
    """Per-G KS and W1 distances between two models' one-pulse distributions, and the
    differences of their means and stds.

    ``in_range``: compare the distributions of changes that keep G inside the reference's
    range (see :class:`_InRange`); a table fitted to Algorithm-2 data converges to these.
    Returns (ks, w1, mean difference, std difference), each of length len(g).
    """
    pm = (np.arange(n_p) + 0.5) / n_p
    if in_range:
        da = _InRange(model, polarity, g, ref.g_min, ref.g_max)
        db = _InRange(ref, polarity, g, ref.g_min, ref.g_max)
        qa, qb = da.quantile(pm), db.quantile(pm)
    else:
        qa, qb = model.quantile(polarity, g, pm), ref.quantile(polarity, g, pm)
    w1 = np.mean(np.abs(qa - qb), axis=1)
    # KS: both CDFs on the union of both sets of quantile points
    x = np.sort(np.concatenate([qa, qb], axis=1), axis=1)
    if in_range:
        fa, fb = da.cdf(x), db.cdf(x)
    else:
        fa, fb = model.cdf(polarity, g, x), ref.cdf(polarity, g, x)
    ks = np.max(np.abs(fa - fb), axis=1)
    dmean = qa.mean(axis=1) - qb.mean(axis=1)
    dstd = qa.std(axis=1) - qb.std(axis=1)
    return ks, w1, dmean, dstd


def compare_models(model: DeviceModel, ref: DeviceModel, *, n_g: int = 64, n_p: int = 512,
                   pulses: int | None = None, devices: int = 2000, seed: int = 0,
                   in_range: bool = True) -> list[dict]:
    """Device-level metrics of ``model`` against a reference model, one row per polarity."""
    g = _g_grid(model, ref, n_g)
    rows = []
    train = pulse_train_distance(model, ref, pulses=pulses, devices=devices,
                                 seed=seed_for(seed, "metrics"))
    for pol in POLARITIES:
        ks, w1, dm, ds = distribution_distances(model, ref, pol, g, n_p, in_range)
        weight = g_weights(ref, pol, g, in_range)
        seen = weight >= 0.01 * weight.max()

        def avg(v, weight=weight):
            return float(np.sum(weight * v))

        spread = avg(ref.std(pol, g)) or 1.0
        rows.append({
            "polarity": pol,
            "ks": avg(ks), "ks_max": float(ks[seen].max()),
            "w1": avg(w1), "w1_rel": avg(w1) / spread,
            "rmse_mean": float(np.sqrt(avg(dm**2))),
            "rmse_mean_rel": float(np.sqrt(avg(dm**2)) / spread),
            "rmse_std": float(np.sqrt(avg(ds**2))),
            "rmse_std_rel": float(np.sqrt(avg(ds**2)) / spread),
            **train[pol],
        })
    return rows


def in_range_mass(model: DeviceModel, polarity: str, g: np.ndarray) -> np.ndarray:
    """The probability that one pulse at each G keeps the device inside its range."""
    return _InRange(model, polarity, g, model.g_min, model.g_max).mass[:, 0]


def g_weights(ref: DeviceModel, polarity: str, g: np.ndarray, in_range: bool = True
              ) -> np.ndarray:
    """Weights (summing to 1) of the G grid in averaged distances: the reference's in-range
    probability, i.e. the density of Algorithm-2 data over G (uniform without ``in_range``)."""
    weight = in_range_mass(ref, polarity, g) if in_range else np.ones_like(g)
    if not weight.sum() > 0:
        weight = np.ones_like(g)
    return weight / weight.sum()


def w1_to_truth(model: DeviceModel, ref: DeviceModel, *, n_g: int = 64, n_p: int = 512
                ) -> dict[str, float]:
    """Per polarity, the truncation-aware Wasserstein-1 distance of ``model``'s one-pulse
    distributions to the reference's, averaged over G as :func:`compare_models` does, divided
    by the reference's spread (``w1_rel`` without the pulse-train simulation)."""
    g = _g_grid(model, ref, n_g)
    out = {}
    for pol in POLARITIES:
        _, w1, _, _ = distribution_distances(model, ref, pol, g, n_p, True)
        weight = g_weights(ref, pol, g)
        out[pol] = float(np.sum(weight * w1) / (np.sum(weight * ref.std(pol, g)) or 1.0))
    return out


# ------------------------------------------------------------- model vs data


def _bin_by_count(g: np.ndarray, per_bin: int = 50, max_bins: int = 20) -> np.ndarray:
    nb = int(np.clip(len(g) // per_bin, 1, max_bins))
    order = np.argsort(g, kind="stable")
    labels = np.empty(len(g), dtype=int)
    labels[order] = np.arange(len(g)) * nb // len(g)
    return labels


def randomized_pit(model: DeviceModel, pol: str, g: np.ndarray, y: np.ndarray, lo: float,
                   hi: float, rng: np.random.Generator) -> np.ndarray:
    """PIT values F(y-) + V (F(y) - F(y-)), V uniform, of each change under the model
    conditioned on staying in [lo, hi]: uniform for draws of the model even where it has atoms
    (the plain F(y) piles up at the top of each atom)."""
    dist = _InRange(model, pol, g, lo, hi)
    y = y[:, None]
    right = dist.cdf(y)[:, 0]
    left = dist.cdf(np.nextafter(y, -np.inf))[:, 0]  # F(y-): one float step below y
    return left + rng.random(len(y)) * (right - left)


def _sample_vs_mixture(model, pol, g, y, lo, hi, n_x: int = 512, n_p: int = 64):
    """KS and W1 between an empirical dG sample and the model's mixture over its g values
    (each component conditioned on keeping G inside [lo, hi], as measured changes do)."""
    dist = _InRange(model, pol, g, lo, hi)
    ys = np.sort(y)
    qs = dist.quantile((np.arange(n_p) + 0.5) / n_p)
    x = np.linspace(min(ys[0], qs.min()), max(ys[-1], qs.max()), n_x)
    x_all = np.unique(np.concatenate([x, ys]))
    fmix = dist.cdf(np.broadcast_to(x_all, (len(g), len(x_all)))).mean(axis=0)
    x_below = np.nextafter(x_all, -np.inf)  # F(x-): one float step below x
    fmix_left = dist.cdf(np.broadcast_to(x_below, (len(g), len(x_all)))).mean(axis=0)
    femp_right = np.searchsorted(ys, x_all, side="right") / len(ys)
    femp_left = np.searchsorted(ys, x_all, side="left") / len(ys)
    # both CDFs jump at atoms: left limits are compared with left limits (a model with
    # atoms would otherwise be charged its atoms' mass even against its own draws)
    ks = max(np.max(np.abs(femp_right - fmix)), np.max(np.abs(femp_left - fmix_left)))
    # the empirical CDF is constant on [x_i, x_i+1): a left Riemann sum integrates it exactly
    w1 = float(np.sum(np.abs(femp_right - fmix)[:-1] * np.diff(x_all)))
    return ks, w1, float(qs.mean()), float(qs.std())


def compare_to_data(model: DeviceModel, data: PulseData, *, seed: int = 0) -> list[dict]:
    """Device-level metrics of ``model`` against measured or held-out points."""
    rows = []
    for i, pol in enumerate(POLARITIES):
        pts = data.points[pol]
        if len(pts) == 0:
            continue
        labels = _bin_by_count(pts.g)
        ks_b, w1_b, dm, ds, weights, spreads = [], [], [], [], [], []
        for b in range(labels.max() + 1):
            m = labels == b
            ks, w1, mu, sd = _sample_vs_mixture(model, pol, pts.g[m], pts.dg[m], model.g_min,
                                                model.g_max)
            ks_b.append(ks)
            w1_b.append(w1)
            dm.append(mu - pts.dg[m].mean())
            ds.append(sd - pts.dg[m].std(ddof=1) if m.sum() > 1 else 0.0)
            weights.append(m.sum())
            spreads.append(pts.dg[m].std())
        w = np.array(weights, dtype=float) / np.sum(weights)
        spread = float(np.sum(w * np.array(spreads))) or 1.0
        draws = np.random.default_rng(seed_for(seed, "metrics", i))  # keyed: not the trains'
        pit = np.sort(randomized_pit(model, pol, pts.g, pts.dg, model.g_min, model.g_max,
                                     draws))
        n = len(pit)
        pit_ks = float(max(np.max(np.arange(1, n + 1) / n - pit), np.max(pit - np.arange(n) / n)))
        row = {
            "polarity": pol, "n": len(pts),
            "ks": float(np.sum(w * np.array(ks_b))), "ks_max": float(np.max(ks_b)),
            "w1": float(np.sum(w * np.array(w1_b))),
            "w1_rel": float(np.sum(w * np.array(w1_b)) / spread),
            "rmse_mean": float(np.sqrt(np.sum(w * np.array(dm) ** 2))),
            "rmse_mean_rel": float(np.sqrt(np.sum(w * np.array(dm) ** 2)) / spread),
            "rmse_std": float(np.sqrt(np.sum(w * np.array(ds) ** 2))),
            "rmse_std_rel": float(np.sqrt(np.sum(w * np.array(ds) ** 2)) / spread),
            "crps": float(np.mean(crps(model, pol, pts.g, pts.dg))),
            "pit_ks": pit_ks,
        }
        traces = data.traces.get(pol, [])
        sim = (simulate_from_traces(model, pol, traces, seed=seed_for(seed, "metrics"))
               if traces else None)
        if traces:
            row["read_noise_frac"] = read_noise_fraction(model, pol, traces)
        if sim is not None:
            tm, ts = trace_statistics(traces)
            span = float(np.ptp(np.concatenate(traces))) or 1.0
            row["train_mean"] = float(np.sqrt(np.mean((sim[0] - tm) ** 2)) / span)
            row["train_std"] = float(np.sqrt(np.mean((sim[1] - ts) ** 2)) / span)
        rows.append(row)
    return rows
