"""Device-in-the-loop training: ``memsim train SPEC.yaml``.

A train spec (YAML), relative paths relative to the spec file::

    name: mlp_tiox
    dataset: mnist            # mnist | fashion
    subset: null              # N training examples (a fixed shuffle); the test set is whole
    network: {kind: mlp, hidden: [100], activation: relu}     # or kind: bnn
    device: {kind: table, path: ../device_data/xbtorch_tiox/optuna_exp_1.5V}
    mapping: {kind: pair, w_max: 1.0, policy: set, max_pulses: 8, refresh_every: 0}
    training: {epochs: 5, batch: 64, optimizer: sgd, lr: 0.1, lr_decay_every: 0,
               lr_decay: 0.5, init_scale: 1.0}
    seed: 0                   # or seeds: [0, 1, 2] to train an ensemble in one pass
    out: ../results/train/mlp_tiox

``device: float`` trains the same network in float in the same code path: every device result
has its reference. The same spec and seed give the same numbers on CPU.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from .datasets import DATASETS, Dataset, load_dataset
from .devices import Device, parse_device
from .errors import MemsimError
from .networks import (
    ACTIVATIONS,
    MAPPINGS,
    POLICIES,
    DeviceSynapses,
    FloatSynapses,
    Mapping,
    Network,
    NetworkSpec,
    Optimizer,
)
from .schema import Section, load_yaml
from .storage import save_figure, write_csv, write_text


@dataclass
class TrainSettings:
    epochs: int = 5
    batch: int = 64
    optimizer: str = "sgd"
    lr: float = 0.1
    lr_decay_every: int = 0  # epochs; 0 = constant learning rate
    lr_decay: float = 0.5
    init_scale: float = 1.0


@dataclass
class TrainSpec:
    name: str = "train"
    dataset: str = "mnist"
    subset: int | None = None
    network: NetworkSpec = field(default_factory=NetworkSpec)
    sizes: list[int] | None = None  # explicit layer sizes, checked against the data
    device: Device = field(default_factory=Device)
    mapping: Mapping = field(default_factory=Mapping)
    training: TrainSettings = field(default_factory=TrainSettings)
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str | None = None

    def resolved(self) -> dict:
        dev = {k: v for k, v in asdict(self.device).items() if k != "models"}
        return {"name": self.name, "dataset": self.dataset, "subset": self.subset,
                "network": {**asdict(self.network), "hidden": list(self.network.hidden)},
                "device": dev, "mapping": asdict(self.mapping),
                "training": asdict(self.training), "seeds": list(self.seeds), "out": self.out}


def parse_train_spec(data: dict, file=None) -> TrainSpec:
    sec = Section(data, file)
    base = Path(file).parent if file is not None else None
    spec = TrainSpec()
    spec.name = sec.take("name", str, Path(file).stem if file else "train")
    spec.dataset = sec.take("dataset", str, "mnist", choices=DATASETS)
    spec.subset = sec.take("subset", int, None, check=lambda v: v >= 1, check_msg="must be >= 1")
    net = sec.sub("network", {})
    kind = net.take("kind", str, "mlp", choices=("mlp", "bnn"))
    hidden = net.number_list("hidden", [100] if kind == "mlp" else [500], integer=True,
                             positive=True, nonempty=False)
    if net.has("sizes"):
        spec.sizes = net.number_list("sizes", integer=True, positive=True)
        if len(spec.sizes) < 2:
            raise net.error("sizes", "needs at least an input and an output size")
        hidden = spec.sizes[1:-1]
    else:
        net.take("sizes", None, None)
    activation = net.take("activation", str, "relu", choices=tuple(ACTIVATIONS))
    net.done()
    spec.network = NetworkSpec(kind, tuple(hidden), activation)
    spec.device = parse_device(sec.take("device", (str, dict), "float"), file, "device", base)
    spec.mapping = parse_mapping(sec.sub("mapping", {}))
    spec.training = parse_training(sec.sub("training", {}), TrainSettings(
        optimizer="sgd" if kind == "mlp" else "adam", lr=0.1 if kind == "mlp" else 0.005))
    if sec.has("seeds"):
        spec.seeds = sec.number_list("seeds", integer=True)
        sec.take("seed", int, None)
    else:
        spec.seeds = [sec.take("seed", int, 0)]
    out = sec.take("out", str, None)
    spec.out = None if out is None else (str(base / out) if base and not Path(out).is_absolute()
                                         else out)
    sec.done()
    return spec


def parse_mapping(mp: Section) -> Mapping:
    """The weight mapping and update-rule settings of a spec section."""
    positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
    mapping = Mapping(
        kind=mp.take("kind", str, "pair", choices=MAPPINGS),
        w_max=mp.take("w_max", float, 1.0, **positive),
        policy=mp.take("policy", str, "split", choices=POLICIES),
        dw_min=mp.take("dw_min", float, None, **positive),
        max_pulses=mp.take("max_pulses", int, 8, check=lambda v: 1 <= v <= 127,
                           check_msg="must be in 1..127"),
        refresh_every=mp.take("refresh_every", int, 0, check=lambda v: v >= 0,
                              check_msg="must be >= 0"),
        refresh_threshold=mp.take("refresh_threshold", float, 0.9,
                                  check=lambda v: 0 < v <= 1, check_msg="must be in (0, 1]"))
    mp.done()
    return mapping


def parse_training(tr: Section, base: TrainSettings) -> TrainSettings:
    """Training settings of a spec section; keys left out keep ``base``'s values."""
    positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
    nonneg = {"check": lambda v: v >= 0, "check_msg": "must be >= 0"}
    settings = TrainSettings(
        epochs=tr.take("epochs", int, base.epochs, **positive),
        batch=tr.take("batch", int, base.batch, **positive),
        optimizer=tr.take("optimizer", str, base.optimizer, choices=("sgd", "adam")),
        lr=tr.take("lr", float, base.lr, **positive),
        lr_decay_every=tr.take("lr_decay_every", int, base.lr_decay_every, **nonneg),
        lr_decay=tr.take("lr_decay", float, base.lr_decay, **positive),
        init_scale=tr.take("init_scale", float, base.init_scale, **positive))
    tr.done()
    return settings


def load_train_spec(path) -> TrainSpec:
    return parse_train_spec(load_yaml(path), path)


def check_against_data(spec: TrainSpec, data: Dataset, file=None) -> None:
    """Refuse layer sizes that do not fit the data, before any training."""
    if spec.sizes is not None:
        if spec.sizes[0] != data.n_features:
            raise MemsimError(f"network input size {spec.sizes[0]} does not fit {spec.dataset}"
                              f" ({data.n_features} pixels per image)", file,
                              "key 'network.sizes'")
        if spec.sizes[-1] != data.n_classes:
            raise MemsimError(f"network output size {spec.sizes[-1]} does not fit "
                              f"{spec.dataset} ({data.n_classes} classes)", file,
                              "key 'network.sizes'")


# ---------------------------------------------------------------------------- training


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MemsimError("--device cuda asked for, but no CUDA device is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise MemsimError(f"device must be cpu, cuda or auto, not {device!r}")
    return device


class Trainer:
    """Trains len(seeds) networks (members) in one vectorized pass.

    Member m starts from weights drawn with seeds[m] and sees the data in the order drawn with
    seeds[m]: the same seed gives the same start and order alone or in an ensemble, so runs
    on different devices are paired. ``device`` may be overridden (sweeps), and ``choice``
    assigns a device model per device (ensembles of different tables).
    """

    def __init__(self, spec: TrainSpec, data: Dataset, compute: str = "cpu",
                 device: Device | None = None, choice: torch.Tensor | None = None,
                 population_seed: int | None = None):
        self.spec, self.data, self.compute = spec, data, compute
        self.device = (device or spec.device).load()
        self.seeds = list(spec.seeds)
        members = len(self.seeds)
        pop_seed = self.seeds[0] * 7919 + 13 if population_seed is None else population_seed
        if self.device.is_float:
            clip = spec.mapping.w_max if spec.network.kind == "bnn" else None
            factory = lambda shapes: FloatSynapses(shapes, members, compute, clip)  # noqa: E731
        else:
            def factory(shapes):
                return DeviceSynapses(shapes, members, compute, self.device, spec.mapping,
                                      pop_seed, member_choice=choice)
        self.net = Network(spec.network, data.n_features, data.n_classes, factory, members,
                           compute, self.seeds, spec.training.init_scale)
        self.opt = Optimizer(self.net, spec.training.optimizer, spec.training.lr)

    def _orders(self, epoch: int) -> torch.Tensor:
        n = len(self.data.x_train)
        perms = [torch.randperm(n, generator=torch.Generator().manual_seed(s * 100_003 + epoch))
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
            if tr.lr_decay_every and epoch > 1 and (epoch - 1) % tr.lr_decay_every == 0:
                self.opt.lr *= tr.lr_decay
            order = self._orders(epoch)
            loss_sum = torch.zeros(len(self.seeds), device=self.compute)
            for s in range(steps):
                idx = order[:, s * tr.batch:(s + 1) * tr.batch]
                flat = idx.reshape(-1)
                x = self.data.x_train.index_select(0, flat).view(*idx.shape, -1)
                y = self.data.y_train.index_select(0, flat).view(idx.shape)
                losses, weight_grad, digital_grads = self.net.gradients(x, y)
                self.opt.step(weight_grad, digital_grads)
                loss_sum += losses
                bar.update(1)
            acc = self.net.accuracy(self.data.x_test, self.data.y_test).cpu().numpy()
            loss = (loss_sum / steps).cpu().numpy()
            elapsed = time.perf_counter() - t0
            pulses = self.net.syn.member_pulses.tolist()
            refreshes = self.net.syn.member_refreshes.tolist()
            for m, seed in enumerate(self.seeds):
                rows.append({"epoch": epoch, "member": m, "seed": seed,
                             "train_loss": float(loss[m]), "test_acc": float(acc[m]),
                             "pulses": int(pulses[m]), "refreshes": int(refreshes[m]),
                             "seconds": elapsed})
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
        last = self.history[self.history["epoch"] == self.history["epoch"].max()]
        best = self.history.groupby("member")["test_acc"].max()
        out = last[["member", "seed", "test_acc", "train_loss", "pulses", "refreshes"]].copy()
        out = out.rename(columns={"test_acc": "final_test_acc"})
        out["best_test_acc"] = best.reindex(out["member"]).to_numpy()
        out.insert(0, "name", self.spec.name)
        out.insert(1, "device", self.spec.device.describe())
        out.insert(2, "network", self.spec.network.kind)
        out["epochs"] = int(self.history["epoch"].max())
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


def train(spec: TrainSpec, compute: str = "auto", progress: bool = True,
          file=None) -> TrainResult:
    compute = pick_device(compute)
    data = prepare(spec, compute, file)
    t0 = time.perf_counter()
    history = Trainer(spec, data, compute).run(progress=progress)
    return TrainResult(spec, history, compute, time.perf_counter() - t0)


def plot_history(result: TrainResult):
    import matplotlib

    matplotlib.use("Agg")
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
    out = Path(out)
    files = [out / "history.csv", out / "summary.csv", out / "spec.yaml", out / "accuracy.png"]
    write_csv(files[0], result.history)
    write_csv(files[1], result.summary())
    write_text(files[2], yaml.safe_dump(result.spec.resolved(), sort_keys=False))
    save_figure(files[3], plot_history(result))
    return files
