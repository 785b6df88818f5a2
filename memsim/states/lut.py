"""State look-up tables: the measured conductance distribution of each programmed state.

A memory cell written once (inference) holds one of a few programmed states; what it reads
back varies from cycle to cycle, from device to device and with the time since programming.
A :class:`StateLUT` keeps the measured conductances per state (tidy: ``state, time, g``, and a
``device`` id where the source has one); a :class:`StateSampler` draws reads from it for many
cells at once, on CPU or CUDA.

The variability **scale** multiplies every read's deviation from its state's median:
``g = median_t(s) + scale * (sample - median_t(s))``. Scale 1 is the measured spread, 0 reads
every cell at exactly its state's median (ideal states); the drift of the median with read time
is not scaled, so a scale-0 read at a late time still shows the drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..errors import MemsimError

MODELS = ("empirical", "lognormal", "normal")
# quantiles that stand for a parametric state model when thresholds are calibrated
_CALIBRATION_POINTS = 4001


@dataclass
class StateLUT:
    """Measured conductances per programmed state, states ordered by ascending median.

    ``data``: columns ``state`` (index into ``states``), ``time`` (s since programming),
    ``g`` (S) and ``device`` (-1 where unknown). ``times[0]`` is the reference read time: the
    one a reader is calibrated at.
    """

    name: str
    states: list[str]
    data: pd.DataFrame
    source: str = ""
    times: list[float] = field(default_factory=list)

    def __post_init__(self):
        if not self.times:
            self.times = sorted(self.data["time"].unique().tolist())
        if "device" not in self.data:
            self.data = self.data.assign(device=-1)
        counts = self.data.groupby(["time", "state"]).size()
        for t in self.times:
            for s, label in enumerate(self.states):
                if counts.get((t, s), 0) < 2:
                    raise MemsimError(f"state {label!r} has fewer than 2 values at read time "
                                      f"{t:g} s", self.source or self.name)

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def has_devices(self) -> bool:
        return bool((self.data["device"] >= 0).all())

    def samples(self, state: int, time: float) -> np.ndarray:
        d = self.data
        return d.loc[(d["state"] == state) & (d["time"] == time), "g"].to_numpy(np.float64)

    def medians(self, time: float | None = None) -> np.ndarray:
        t = self.times[0] if time is None else time
        return np.array([np.median(self.samples(s, t)) for s in range(self.n_states)])

    def summary(self) -> pd.DataFrame:
        """Per state and read time: count, median, SD and 1st/99th percentiles (S)."""
        g = self.data.groupby(["time", "state"])["g"]
        out = g.agg(count="size", median="median", sd="std",
                    p01=lambda x: x.quantile(0.01), p99=lambda x: x.quantile(0.99)).reset_index()
        out.insert(2, "label", [self.states[s] for s in out["state"]])
        return out

    def sampler(self, model: str = "empirical", time: float | None = None, d2d: bool = False,
                device="cpu") -> StateSampler:
        return StateSampler(self, model, self.times[0] if time is None else time, d2d, device)


class StateSampler:
    """Draws reads of cells in given states at one read time, all cells in one tensor op.

    ``empirical`` resamples the measured values (per device when ``d2d``: every cell is one
    measured device, chosen at random, and reads that device's own values); ``lognormal`` and
    ``normal`` draw from the distribution fitted to each state (moments of log g, or of g).
    """

    def __init__(self, lut: StateLUT, model: str, time: float, d2d: bool, device):
        if model not in MODELS:
            raise MemsimError(f"unknown state model {model!r}; use one of {', '.join(MODELS)}")
        if time not in lut.times:
            raise MemsimError(f"read time {time:g} s is not in the LUT (times: "
                              f"{', '.join(f'{t:g}' for t in lut.times)})", lut.source or lut.name)
        if d2d and model != "empirical":
            raise MemsimError("device-to-device reads (d2d) need model: empirical")
        if d2d and not lut.has_devices:
            raise MemsimError("d2d needs a LUT with a device column", lut.source or lut.name)
        self.lut, self.model, self.time, self.d2d = lut, model, time, d2d
        self.device = torch.device(device)
        f64 = dict(dtype=torch.float64, device=self.device)
        per_state = [lut.samples(s, time) for s in range(lut.n_states)]
        self.median = torch.tensor([np.median(x) for x in per_state], **f64)
        self.reference_median = torch.tensor(lut.medians(), **f64)
        if model == "lognormal":
            if any((x <= 0).any() for x in per_state):
                raise MemsimError("model lognormal needs positive conductances",
                                  lut.source or lut.name)
            logs = [np.log(x) for x in per_state]
            self.loc = torch.tensor([x.mean() for x in logs], **f64)
            self.spread = torch.tensor([x.std(ddof=1) for x in logs], **f64)
        elif model == "normal":
            self.loc = torch.tensor([x.mean() for x in per_state], **f64)
            self.spread = torch.tensor([x.std(ddof=1) for x in per_state], **f64)
        elif d2d:
            self._device_pools(time)
        else:
            width = max(len(x) for x in per_state)
            pools = np.zeros((lut.n_states, width))
            for s, x in enumerate(per_state):
                pools[s, :len(x)] = x
            self.pools = torch.tensor(pools, **f64)
            self.counts = torch.tensor([len(x) for x in per_state], device=self.device)

    def _device_pools(self, time: float) -> None:
        """Pools [device, state, value] of the devices measured in every state."""
        d = self.lut.data[self.lut.data["time"] == time]
        per = d.groupby(["device", "state"])["g"].apply(lambda x: x.to_numpy(np.float64))
        full = [dev for dev, grp in per.groupby(level=0) if len(grp) == self.lut.n_states]
        if not full:
            raise MemsimError("no device is measured in every state at read time "
                              f"{time:g} s", self.lut.source or self.lut.name)
        width = max(len(per[(dev, s)]) for dev in full for s in range(self.lut.n_states))
        pools = np.zeros((len(full), self.lut.n_states, width))
        counts = np.zeros((len(full), self.lut.n_states), dtype=np.int64)
        for i, dev in enumerate(full):
            for s in range(self.lut.n_states):
                x = per[(dev, s)]
                pools[i, s, :len(x)], counts[i, s] = x, len(x)
        self.pools = torch.tensor(pools, dtype=torch.float64, device=self.device)
        self.counts = torch.tensor(counts, device=self.device)

    def draw(self, states: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        """Conductance reads (S, float64) of cells in ``states`` (long tensor, any shape)."""
        states = states.to(self.device)
        if self.model == "empirical":
            u = torch.rand(states.shape, generator=generator, dtype=torch.float64,
                           device=self.device)
            width = self.pools.shape[-1]
            if self.d2d:
                cell_dev = torch.randint(len(self.pools), states.shape, generator=generator,
                                         device=self.device)
                slot = cell_dev * self.lut.n_states + states
            else:
                slot = states
            count = self.counts.view(-1)[slot]
            # one flat gather: row (device, state) of the pools, a uniform pick within its count
            pick = (u.mul_(count)).long().clamp_max_(width - 1)
            sample = self.pools.view(-1)[slot * width + torch.minimum(pick, count - 1)]
        else:
            z = torch.randn(states.shape, generator=generator, dtype=torch.float64,
                            device=self.device)
            raw = self.loc[states] + self.spread[states] * z
            sample = raw.exp() if self.model == "lognormal" else raw.clamp_min(0.0)
        median = self.median[states]
        # a conductance is never negative, however far a large scale stretches the spread
        return sample.sub_(median).mul_(scale).add_(median).clamp_min_(0.0)

    def calibration_sets(self, scale: float) -> list[np.ndarray]:
        """Per state, values standing for its read distribution at ``scale``: the measured
        values themselves (empirical) or evenly spaced quantiles of the fitted model."""
        out = []
        for s in range(self.lut.n_states):
            med = float(self.median[s])
            if self.model == "empirical":
                x = self.lut.samples(s, self.time)
            else:
                from scipy.stats import norm

                q = norm.ppf((np.arange(_CALIBRATION_POINTS) + 0.5) / _CALIBRATION_POINTS)
                raw = float(self.loc[s]) + float(self.spread[s]) * q
                x = np.exp(raw) if self.model == "lognormal" else np.maximum(raw, 0.0)
            out.append(np.maximum(med + scale * (x - med), 0.0))
        return out


def best_threshold(low: np.ndarray, high: np.ndarray) -> float:
    """The read threshold that minimises the bit error rate between two states, equal priors:
    BER(t) = (P(low > t) + P(high <= t)) / 2. Among equally good thresholds, the middle of the
    widest optimal gap (a scale-0 pair of point masses gives their midpoint)."""
    low, high = np.sort(np.asarray(low, float)), np.sort(np.asarray(high, float))
    values = np.unique(np.concatenate([low, high]))
    if len(values) == 1:
        return float(values[0])
    cands = (values[:-1] + values[1:]) / 2  # one threshold per gap between observed values
    ber = (1 - np.searchsorted(low, cands, side="right") / len(low)
           + np.searchsorted(high, cands, side="right") / len(high)) / 2
    best = np.flatnonzero(np.isclose(ber, ber.min(), rtol=0, atol=1e-12))
    widths = values[best + 1] - values[best]
    return float(cands[best[np.argmax(widths)]])


def empirical_ber(low: np.ndarray, high: np.ndarray, threshold: float) -> float:
    """Equal-prior bit error rate of reading ``low`` / ``high`` against ``threshold``."""
    return float(((np.asarray(low) > threshold).mean() + (np.asarray(high) <= threshold).mean())
                 / 2)
