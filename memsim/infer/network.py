"""The float network whose weights inference codes: a LeNet-5-style CNN trained in-project.

Trained once per (dataset, epochs, batch, lr, seed, training subset) and cached under
``$MEMSIM_CACHE/networks`` (default ``~/.cache/memsim``), so every inference run of a spec
codes the same weights. Layers are named ``conv1, conv2, fc1, fc2, fc3``; their weights are
what a coding writes into cells (biases stay digital).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .. import seeds
from .._version import code_identity
from ..errors import MemsimError
from ..io.datasets import DATASETS, Dataset, cache_dir, load_dataset, subset_check
from ..io.schema import Section
from ..io.storage import atomic_write, sha256_json

LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")
ARCHS = ("lenet",)


@dataclass
class NetworkConfig:
    arch: str = "lenet"
    dataset: str = "mnist"
    epochs: int = 3
    batch: int = 128
    lr: float = 1e-3
    seed: int = 0
    subset: int | None = None

    @classmethod
    def parse(cls, sec: Section) -> NetworkConfig:
        arch = sec.take("arch", str, "lenet", choices=ARCHS)
        dataset = sec.take("dataset", str, "mnist", choices=DATASETS)
        cfg = cls(arch=arch, dataset=dataset,
                  epochs=sec.take("epochs", int, 3, check=lambda v: v >= 1,
                                  check_msg="must be at least 1"),
                  batch=sec.take("batch", int, 128, check=lambda v: v >= 1,
                                 check_msg="must be at least 1"),
                  lr=sec.take("lr", float, 1e-3, check=lambda v: v > 0,
                              check_msg="must be positive"),
                  seed=sec.seed(),
                  subset=sec.take("subset", int, None, **subset_check(dataset)))
        sec.done()
        return cfg


def init_lenet(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """He-uniform weights, zero biases: 1×28×28 → 6 conv5 → pool → 16 conv5 → pool → 120 → 84
    → 10."""
    shapes = {"conv1": (6, 1, 5, 5), "conv2": (16, 6, 5, 5), "fc1": (120, 400),
              "fc2": (84, 120), "fc3": (10, 84)}
    params = {}
    for name, shape in shapes.items():
        fan_in = int(torch.tensor(shape[1:]).prod())
        bound = (6 / fan_in) ** 0.5
        params[f"{name}.weight"] = (torch.rand(shape, generator=gen) * 2 - 1) * bound
        params[f"{name}.bias"] = torch.zeros(shape[0])
    return params


def forward(params: dict[str, torch.Tensor], x: torch.Tensor,
            capture: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of flattened images ``x`` [B, 784]; also the pre-activation output of layer
    ``capture`` (None if not asked)."""
    seen = None
    h = x.view(-1, 1, 28, 28)
    h = F.conv2d(h, params["conv1.weight"], params["conv1.bias"], padding=2)
    seen = h if capture == "conv1" else seen
    h = F.max_pool2d(F.relu(h), 2)
    h = F.conv2d(h, params["conv2.weight"], params["conv2.bias"])
    seen = h if capture == "conv2" else seen
    h = F.max_pool2d(F.relu(h), 2).flatten(1)
    for name in ("fc1", "fc2", "fc3"):
        h = F.linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
        seen = h if capture == name else seen
        if name != "fc3":
            h = F.relu(h)
    return h, seen


def train_network(cfg: NetworkConfig, data: Dataset, log=print) -> dict[str, torch.Tensor]:
    """Adam on cross-entropy; the test set is never looked at."""
    torch.manual_seed(seeds.seed_for(cfg.seed, "init"))
    params = {k: v.requires_grad_() for k, v in init_lenet(
        torch.Generator().manual_seed(seeds.seed_for(cfg.seed, "init"))).items()}
    opt = torch.optim.Adam(params.values(), lr=cfg.lr)
    n = len(data.x_train)
    for epoch in range(cfg.epochs):
        order = torch.from_numpy(seeds.rng(cfg.seed, "order", epoch).permutation(n))
        total = 0.0
        for i in range(0, n, cfg.batch):
            idx = order[i:i + cfg.batch]
            logits, _ = forward(params, data.x_train[idx])
            loss = F.cross_entropy(logits, data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log(f"network {cfg.arch}/{cfg.dataset}: epoch {epoch + 1}/{cfg.epochs}, "
            f"training loss {total / n:.4f}")
    return {k: v.detach() for k, v in params.items()}


def load_network(cfg: NetworkConfig, log=print) -> tuple[dict[str, torch.Tensor], Dataset]:
    """The trained weights (from the cache when this configuration was trained before) and the
    dataset (float32 on CPU)."""
    data = load_dataset(cfg.dataset, cfg.subset, seed=cfg.seed)
    key = sha256_json({**asdict(cfg), "torch": torch.__version__.split("+")[0],
                       "memsim": code_identity()})[:16]
    path = cache_dir() / "networks" / f"{cfg.arch}_{cfg.dataset}_{key}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True), data
        except (RuntimeError, OSError, EOFError):
            log(f"cached network {path.name} unreadable: training again")
    params = train_network(cfg, data, log)
    buf = io.BytesIO()
    torch.save(params, buf)
    try:
        with atomic_write(path, "wb") as fh:
            fh.write(buf.getvalue())
    except OSError:
        pass  # no writable cache: the network is retrained next time
    return params, data


def accuracy(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             batch: int = 2500) -> float:
    with torch.no_grad():
        hits = sum(int((forward(params, x[i:i + batch])[0].argmax(1) == y[i:i + batch]).sum())
                   for i in range(0, len(x), batch))
    return hits / len(x)


def check_layers(layers: list[str], where: str) -> None:
    bad = [la for la in layers if la not in LAYERS]
    if bad:
        raise MemsimError(f"unknown layer {bad[0]!r}; the LeNet has {', '.join(LAYERS)} "
                          "(or say all)", None, where)
