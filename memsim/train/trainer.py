"""Training networks with devices in the loop: the vectorized trainer and ``memsim train``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from ..devices.base import DeviceKind
from ..errors import MemsimError
from ..io.datasets import Dataset, load_dataset
from ..io.storage import save_figure, write_csv, write_text
from ..seeds import seed_for
from .algorithms.registry import make_algorithm
from .cells import layer_ranges
from .networks import Network
from .optim import Optimizer, schedule_lr
from .spec import TrainSpec, check_against_data
from .synapses import DeviceSynapses, FloatSynapses


def pick_device(device: str) -> str:
    """Where to compute, checked before any run writes: ``auto`` (the CLI's default) is cuda
    when a CUDA device is available, else cpu; cuda without one, or another name, is refused
    in one line. Every runner (train, sweep, ablation, inference) resolves ``compute`` here."""
    if not isinstance(device, str) or (device not in ("auto", "cpu")
                                       and not device.startswith("cuda")):
        raise MemsimError(f"compute (--compute) must be cpu, cuda or auto, not {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MemsimError(f"compute {device!r} asked for (--compute), but no CUDA device is "
                          "available")
    return device


def exact_cuda(compute: str) -> None:
    """On a GPU, full-fp32 and deterministic cuDNN convolutions. cuDNN's default TF32 keeps 10
    mantissa bits, which would hide read errors in a coded weight's low bits and set GPU
    results apart from CPU ones; its atomic backward kernels would give one spec and seed
    different histories. Process-wide flags, so every process that computes sets them."""
    if str(compute).startswith("cuda"):
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cudnn.deterministic = True


class Trainer:
    """Trains len(seeds) networks (members) in one vectorized pass.

    Member m starts from weights drawn with seeds[m] and sees the data in the order drawn with
    seeds[m]: the same seed gives the same start and order alone or in an ensemble, so runs
    on different devices are paired. The devices of all members are one population seeded by
    seeds[0] (or ``population_seed``): a member's device draws depend on the whole ensemble, so
    only runs of the same seed list are paired device draw for device draw. ``device`` may be
    overridden (sweeps), and ``choice`` assigns a device model per device (ensembles of
    different tables).
    """

    def __init__(self, spec: TrainSpec, data: Dataset, compute: str = "cpu",
                 device: DeviceKind | None = None, choice: torch.Tensor | None = None,
                 population_seed: int | None = None):
        self.spec, self.data, self.compute = spec, data, compute
        exact_cuda(compute)
        self.device = (device or spec.device).load()
        self.seeds = list(spec.seeds)
        members = len(self.seeds)
        pop_seed = self.seeds[0] if population_seed is None else population_seed
        layers = spec.network.layers(data.n_features, data.n_classes)
        ranges = layer_ranges(spec.mapping, [la.fan_in for la in layers],
                              spec.training.init_scale)
        if self.device.is_float:
            bnn = spec.network.binarized  # a BNN's latent weights live within the range

            def factory(shapes):
                return FloatSynapses(shapes, members, compute, ranges, clip=bnn)
        else:
            def factory(shapes):
                return DeviceSynapses(shapes, members, compute, self.device, spec.mapping,
                                      pop_seed, member_choice=choice, ranges=ranges,
                                      algorithm=make_algorithm(spec.training.algorithm))
        self.net = Network(spec.network, data.n_features, data.n_classes, factory, members,
                           compute, self.seeds, spec.training.init_scale, spec.periphery)
        self.opt = Optimizer(self.net, spec.training.optimizer, spec.training.lr)
        algo = getattr(self.net.syn, "algorithm", None)
        self.outer = algo is not None and algo.needs_outer

    def _orders(self, epoch: int) -> torch.Tensor:
        n = len(self.data.x_train)
        perms = [torch.randperm(n, generator=torch.Generator().manual_seed(
                     seed_for(s, "order", epoch)))
                 for s in self.seeds]
        return torch.stack(perms).to(self.compute)

    def run(self, epochs: int | None = None, progress: bool = True, log=None) -> pd.DataFrame:
        from tqdm.auto import tqdm

        tr = self.spec.training
        epochs = epochs or tr.epochs
        n = len(self.data.x_train)
        steps = (n + tr.batch - 1) // tr.batch
        rows = []
        t0 = time.perf_counter()
        bar = tqdm(total=epochs * steps, desc=self.spec.name, disable=not progress or None,
                   leave=False, unit="step")
        for epoch in range(1, epochs + 1):
            self.opt.lr = schedule_lr(tr.schedule, tr.lr, epoch, epochs)
            order = self._orders(epoch)
            loss_sum = torch.zeros(len(self.seeds), device=self.compute)
            for s in range(steps):
                idx = order[:, s * tr.batch:(s + 1) * tr.batch]
                flat = idx.reshape(-1)
                x = self.data.x_train.index_select(0, flat).view(*idx.shape, -1)
                y = self.data.y_train.index_select(0, flat).view(idx.shape)
                if self.outer:
                    losses, xs, deltas, digital_grads = self.net.layer_terms(x, y)
                    self.opt.step_outer(xs, deltas, digital_grads)
                else:
                    losses, weight_grad, digital_grads = self.net.gradients(x, y)
                    self.opt.step(weight_grad, digital_grads)
                loss_sum += losses
                bar.update(1)
            acc = self.net.accuracy(self.data.x_test, self.data.y_test).cpu().numpy()
            loss = (loss_sum / steps).cpu().numpy()
            elapsed = time.perf_counter() - t0
            pulses = self.net.syn.member_pulses.tolist()
            refreshes = self.net.syn.member_refreshes.tolist()
            stats = self.net.syn.pulse_stats()
            for m, seed in enumerate(self.seeds):
                rows.append({"epoch": epoch, "member": m, "seed": seed,
                             "train_loss": float(loss[m]), "test_acc": float(acc[m]),
                             "lr": self.opt.lr, "pulses": int(pulses[m]),
                             "refreshes": int(refreshes[m]),
                             **{k: v[m] for k, v in stats.items()}, "seconds": elapsed})
            bar.set_postfix(acc=f"{np.mean(acc):.4f}")
            if log is not None:
                log(epoch, acc, loss)
        bar.close()
        return pd.DataFrame(rows)


@dataclass
class TrainResult:
    spec: TrainSpec
    history: pd.DataFrame
    compute: str
    seconds: float

    def summary(self) -> pd.DataFrame:
        """One row per member: the final test accuracy and the mean over the last
        ``report_last`` epochs (never the best epoch: choosing it would fit the test set),
        pulses and their spread over weights and devices."""
        h = self.history
        k = min(self.spec.training.report_last, int(h["epoch"].max()))
        last = h[h["epoch"] == h["epoch"].max()].sort_values("member")
        tail = h[h["epoch"] > h["epoch"].max() - k].groupby("member")["test_acc"].mean()
        keep = ["member", "seed", "test_acc", "train_loss", "pulses", "refreshes",
                *[c for c in h.columns if c.startswith("pulses_per_")]]
        out = last[keep].copy().rename(columns={"test_acc": "final_test_acc"})
        out.insert(3, "last_k_test_acc", tail.reindex(out["member"]).to_numpy())
        out.insert(4, "k", k)
        out.insert(0, "name", self.spec.name)
        out.insert(1, "device", self.spec.device.describe())
        out.insert(2, "network", self.spec.network.kind)
        algorithm = "-" if self.spec.device.is_float else self.spec.training.algorithm["kind"]
        out.insert(3, "algorithm", algorithm)  # a float network sends no pulses
        out["epochs"] = int(h["epoch"].max())
        out["subset"] = self.spec.subset or len_train(self.spec)
        out["compute"] = self.compute
        out["seconds"] = self.seconds
        return out.reset_index(drop=True)


def len_train(spec: TrainSpec) -> int:
    return 60000 if spec.dataset in ("mnist", "fashion") else 0


def prepare(spec: TrainSpec, compute: str = "cpu", file=None) -> Dataset:
    """Everything that can fail on a bad spec, before training starts."""
    spec.device.load()
    data = load_dataset(spec.dataset, spec.subset, compute)
    check_against_data(spec, data, file)
    return data


def train(spec: TrainSpec, compute: str = "auto", *, progress: bool = True,
          file=None, log=None) -> TrainResult:
    """Train ``spec``; ``log(epoch, acc, loss)`` after each epoch (per-member arrays).
    ``compute``: cpu, cuda or auto (cuda when available, as on the command line)."""
    compute = pick_device(compute)
    data = prepare(spec, compute, file)
    t0 = time.perf_counter()
    history = Trainer(spec, data, compute).run(progress=progress, log=log)
    return TrainResult(spec, history, compute, time.perf_counter() - t0)


def plot_history(result: TrainResult):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    h = result.history
    for _m, grp in h.groupby("member"):
        ax.plot(grp["epoch"], 100 * grp["test_acc"], marker="o",
                label=f"seed {grp['seed'].iloc[0]}" if h["member"].nunique() > 1 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title(f"{result.spec.name}: {result.spec.network.kind} on "
                 f"{result.spec.device.describe()}")
    ax.grid(alpha=0.3)
    if h["member"].nunique() > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_train_outputs(result: TrainResult, out: str | Path) -> list[Path]:
    """Write a training's history, summary, spec (paths relative to ``out``) and accuracy
    plot into ``out``, as ``memsim train`` does."""
    out = Path(out)
    files = [out / "history.csv", out / "summary.csv", out / "spec.yaml", out / "accuracy.png"]
    write_csv(files[0], result.history)
    write_csv(files[1], result.summary())
    write_text(files[2], yaml.safe_dump(result.spec.resolved(out), sort_keys=False))
    save_figure(files[3], plot_history(result))
    return files
