"""Device-level metrics: how faithful is a device model?

Against a reference *model* (a known truth or another table), per polarity. The one-pulse
distributions are compared as data drawn with Algorithm 2 can show them: conditioned on the
change keeping G inside the reference's range (a device near G_min cannot show a large RESET
step), so a table fitted to enough such data converges to distance zero.

* ``ks``: Kolmogorov-Smirnov distance between the conditional dG distributions at each G,
  averaged over a grid of G across the range;
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
transform from uniform) score the points directly. When the data hold measured ramps, the
pulse-train metrics compare the model's trajectories, started where each ramp starts, with the
ramps, and ``read_noise_frac`` estimates how much of the ramps' dG variance is read noise
rather than write noise.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import special

from .data import PulseData
from .models import POLARITIES, DeviceModel, JumpTable

SQRT_PI = np.sqrt(np.pi)


# ---------------------------------------------------------------------------- CRPS


def crps_gaussian(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of Normal(mu, sigma^2) at observations y."""
    sigma = np.maximum(sigma, 1e-300)
    z = (y - mu) / sigma
    return sigma * (z * (2 * special.ndtr(z) - 1) + 2 * np.exp(-0.5 * z * z) /
                    np.sqrt(2 * np.pi) - 1 / SQRT_PI)


def _quantile_integrals(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For piecewise-linear quantile rows (K, Q+1) on a uniform grid: the running integral
    C[k, m] = int_0^{p_m} Q_k(p) dp, and A[k] = 2 int_0^1 p Q_k(p) dp."""
    q = rows.shape[1] - 1
    p = np.linspace(0, 1, q + 1)
    a, b = rows[:, :-1], rows[:, 1:]
    seg = (a + b) / (2 * q)
    c = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(seg, axis=1)], axis=1)
    pm = (p[:-1] + p[1:]) / 2
    big_a = 2 * np.sum((p[:-1] * a + 4 * pm * (a + b) / 2 + p[1:] * b) / (6 * q), axis=1)
    return c, big_a


def crps_quantile_rows(rows: np.ndarray, y: np.ndarray,
                       row_of: np.ndarray | None = None) -> np.ndarray:
    """Exact CRPS of piecewise-linear quantile functions on a uniform grid, at y (n,).

    ``rows`` is (n, Q+1), one row per observation, or (K, Q+1) with ``row_of`` (n,) naming
    each observation's row. Uses CRPS(y) = 2 (I(1) - I(p*)) - 2 y (1 - p*) - A + y, where
    p* = F(y), I(p) = int_0^p Q and A = 2 int_0^1 p Q(p) dp: no per-segment sums per point.
    """
    y = np.asarray(y, dtype=float)
    q = rows.shape[1] - 1
    c, big_a = _quantile_integrals(rows)
    if row_of is None:
        row_of = np.arange(len(y))
    knots = rows[row_of]
    j = torch.searchsorted(torch.from_numpy(np.ascontiguousarray(knots)),
                           torch.from_numpy(y[:, None].copy()), right=True).numpy()[:, 0]
    m = np.clip(j - 1, 0, q - 1)
    r = np.arange(len(y))
    q0, q1 = knots[r, m], knots[r, m + 1]
    width = q1 - q0
    frac = np.where(width > 0, (y - q0) / np.where(width > 0, width, 1.0), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    pstar = (m + frac) / q
    integral = c[row_of, m] + (frac / q) * (q0 + np.clip(y, q0, q1)) / 2
    below, above = j == 0, j > q
    pstar = np.where(below, 0.0, np.where(above, 1.0, pstar))
    integral = np.where(below, 0.0, np.where(above, c[row_of, -1], integral))
    total = c[row_of, -1]
    return 2 * (total - integral) - 2 * y * (1 - pstar) - big_a[row_of] + y


def table_crps(table, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of a :class:`~memsim.models.ConditionalTable` at observed (g, dg)."""
    k = table.bin_of(g)
    if table.kind == "gaussian":
        return crps_gaussian(y, table.means[k], table.stds[k])
    return crps_quantile_rows(table.quantiles, y, k)


def crps(model: DeviceModel, polarity: str, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of ``model``'s one-pulse distribution at each observed (g, dg)."""
    g = np.asarray(g, dtype=float)
    y = np.asarray(y, dtype=float)
    if isinstance(model, JumpTable):
        return table_crps(model.tables[polarity], g, y)
    if hasattr(model, "stds"):  # synthetic Gaussian device
        return crps_gaussian(y, model.mean(polarity, g), model.std(polarity, g))
    p = np.linspace(0, 1, 257)
    return crps_quantile_rows(model.quantile(polarity, g, np.clip(p, 1e-4, 1 - 1e-4)), y)


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
    train = pulse_train_distance(model, ref, pulses=pulses, devices=devices, seed=seed)
    for pol in POLARITIES:
        ks, w1, dm, ds = distribution_distances(model, ref, pol, g, n_p, in_range)
        spread = float(np.mean(ref.std(pol, g))) or 1.0
        rows.append({
            "polarity": pol,
            "ks": float(ks.mean()), "ks_max": float(ks.max()),
            "w1": float(w1.mean()), "w1_rel": float(w1.mean() / spread),
            "rmse_mean": float(np.sqrt(np.mean(dm**2))),
            "rmse_mean_rel": float(np.sqrt(np.mean(dm**2)) / spread),
            "rmse_std": float(np.sqrt(np.mean(ds**2))),
            "rmse_std_rel": float(np.sqrt(np.mean(ds**2)) / spread),
            **train[pol],
        })
    return rows


# ------------------------------------------------------------------ pulse trains


def default_pulses(model: DeviceModel, lo: int = 20, hi: int = 1000) -> int:
    """Pulses for a SET train to cross most of the range at the model's mean rate."""
    g = np.linspace(model.g_min, model.g_max, 101)
    step = float(np.mean(np.abs(model.mean("set", g))))
    span = model.g_max - model.g_min
    n = 1.5 * span / step if step > 0 else hi
    return int(np.clip(np.ceil(n), lo, hi))


def simulate_pulse_train(model: DeviceModel, n_set: int, n_reset: int, devices: int = 2000,
                         seed: int = 0, g0=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of G over ``devices`` devices through n_set SET then n_reset RESET pulses.

    ``g0``: start conductance(s) (default G_min); a 1-D array gives one start per device.
    Returns two arrays of length n_set + n_reset + 1 (the start included).
    """
    pop = model.population(devices, seed=seed, dtype=torch.float64)
    pop.program(model.g_min if g0 is None else torch.as_tensor(g0, dtype=torch.float64))
    mean, std = [], []
    for k in range(n_set + n_reset + 1):
        g = pop.conductance()
        mean.append(float(g.mean()))
        std.append(float(g.std()))
        if k < n_set + n_reset:
            pop.pulse_all("set" if k < n_set else "reset")
    return np.array(mean), np.array(std)


def pulse_train_distance(model: DeviceModel, ref: DeviceModel, pulses: int | None = None,
                         devices: int = 2000, seed: int = 0) -> dict[str, dict]:
    n = pulses or default_pulses(ref)
    # the same seed for both (common random numbers): a model equal to its reference scores 0
    ma, sa = simulate_pulse_train(model, n, n, devices, seed, g0=ref.g_min)
    mb, sb = simulate_pulse_train(ref, n, n, devices, seed, g0=ref.g_min)
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
    pop = model.population(len(starts), seed=seed, dtype=torch.float64)
    pop.program(torch.as_tensor(starts))
    mean, std = [], []
    for k in range(length):
        g = pop.conductance()[lasts > k]  # like the measured statistics: ramps still running
        mean.append(float(g.mean()))
        std.append(float(g.std()))
        if k < length - 1:
            pop.pulse_all(polarity)
    return np.array(mean), np.array(std)


# ------------------------------------------------------------- model vs data


def _bin_by_count(g: np.ndarray, per_bin: int = 50, max_bins: int = 20) -> np.ndarray:
    nb = int(np.clip(len(g) // per_bin, 1, max_bins))
    order = np.argsort(g, kind="stable")
    labels = np.empty(len(g), dtype=int)
    labels[order] = np.arange(len(g)) * nb // len(g)
    return labels


def _sample_vs_mixture(model, pol, g, y, lo, hi, n_x: int = 512, n_p: int = 64):
    """KS and W1 between an empirical dG sample and the model's mixture over its g values
    (each component conditioned on keeping G inside [lo, hi], as measured changes do)."""
    dist = _InRange(model, pol, g, lo, hi)
    ys = np.sort(y)
    qs = dist.quantile((np.arange(n_p) + 0.5) / n_p)
    x = np.linspace(min(ys[0], qs.min()), max(ys[-1], qs.max()), n_x)
    x_all = np.unique(np.concatenate([x, ys]))
    fmix = dist.cdf(np.broadcast_to(x_all, (len(g), len(x_all)))).mean(axis=0)
    femp_right = np.searchsorted(ys, x_all, side="right") / len(ys)
    femp_left = np.searchsorted(ys, x_all, side="left") / len(ys)
    ks = max(np.max(np.abs(femp_right - fmix)), np.max(np.abs(femp_left - fmix)))
    # the empirical CDF is constant on [x_i, x_i+1): a left Riemann sum integrates it exactly
    w1 = float(np.sum(np.abs(femp_right - fmix)[:-1] * np.diff(x_all)))
    return ks, w1, float(qs.mean()), float(qs.std())


def compare_to_data(model: DeviceModel, data: PulseData, *, seed: int = 0) -> list[dict]:
    """Device-level metrics of ``model`` against measured or held-out points."""
    rows = []
    for pol in POLARITIES:
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
        pit = np.sort(_InRange(model, pol, pts.g, model.g_min, model.g_max)
                      .cdf(pts.dg[:, None])[:, 0])
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
        sim = simulate_from_traces(model, pol, traces, seed=seed) if traces else None
        if traces:
            row["read_noise_frac"] = read_noise_fraction(model, pol, traces)
        if sim is not None:
            tm, ts = trace_statistics(traces)
            span = float(np.ptp(np.concatenate(traces))) or 1.0
            row["train_mean"] = float(np.sqrt(np.mean((sim[0] - tm) ** 2)) / span)
            row["train_std"] = float(np.sqrt(np.mean((sim[1] - ts) ** 2)) / span)
        rows.append(row)
    return rows
