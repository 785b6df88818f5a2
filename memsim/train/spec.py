"""Train specs: what ``memsim train SPEC.yaml`` reads.

A train spec (YAML), relative paths relative to the spec file::

    name: mlp_tiox
    dataset: mnist            # mnist | fashion
    subset: null              # N training examples (a fixed shuffle); the test set is whole
    network: {kind: mlp, hidden: [100], activation: relu}     # or kind: bnn, cnn, bcnn
                              # (conv nets: conv: [32, 32, pool, 64, 64, pool], kernel: 3)
    periphery: none           # or kit: the analog kit's converters and output noise on every
                              # mlp layer, forward and backward (memsim.train.periphery)
    device: {kind: table, path: ../device_data/xbtorch_tiox/optuna_exp_1.5V}
    mapping: {kind: pair, w_max: auto, range_std: 12, policy: split, max_pulses: 8}
    training: {epochs: 5, batch: 64, optimizer: sgd, lr: 0.1, init_scale: 1.0,
               algorithm: sgd,          # or {kind: mixed_precision, verify: true}, tiki_taka,
                                        # pulse_trains (see memsim.train.algorithms)
               schedule: constant,      # or {kind: step, every: 3, factor: 0.5}, cosine
               report_last: 3}          # the summary's mean over the last k epochs
    seed: 0                   # or seeds: [0, 1, 2] to train an ensemble in one pass
    out: ../results/train/mlp_tiox

``device:`` is the memory device (any registered kind, or a model reference such as
``preset:softbounds``); where to compute is the ``--compute`` flag. ``device: float`` trains
the same network in float in the same code path: every device result has its reference. The
same spec and seed give the same numbers on CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..devices.base import DeviceKind
from ..devices.floating import FloatKind
from ..devices.registry import parse_device
from ..errors import MemsimError
from ..io.datasets import DATASETS, Dataset, subset_check
from ..io.paths import portable
from ..io.schema import Section, load_yaml
from .algorithms.registry import ALGORITHMS, parse_algorithm
from .cells import MAPPINGS, POLICIES, Mapping, pulse_polarities
from .networks import ACTIVATIONS, POOL, NetworkSpec
from .networks import KINDS as NETWORK_KINDS
from .periphery import Periphery, parse_periphery


@dataclass
class TrainSettings:
    epochs: int = 5
    batch: int = 64
    optimizer: str = "sgd"
    lr: float = 0.1
    schedule: dict = field(default_factory=lambda: {"kind": "constant"})
    algorithm: dict = field(default_factory=lambda: {"kind": "sgd"})
    init_scale: float = 1.0
    report_last: int = 3  # the summary reports the mean test accuracy of the last k epochs


@dataclass
class TrainSpec:
    name: str = "train"
    dataset: str = "mnist"
    subset: int | None = None
    network: NetworkSpec = field(default_factory=NetworkSpec)
    periphery: Periphery | None = None  # None: exact products
    sizes: list[int] | None = None  # explicit layer sizes, checked against the data
    device: DeviceKind = field(default_factory=FloatKind)
    mapping: Mapping = field(default_factory=Mapping)
    training: TrainSettings = field(default_factory=TrainSettings)
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str | None = None

    def resolved(self, relto: Path | None = None) -> dict:
        """The spec as an output's spec.yaml records it (paths relative to ``relto``)."""
        doc = {"name": self.name, "dataset": self.dataset, "subset": self.subset,
               "network": self.network.to_doc()}
        if self.periphery is not None:  # absent when exact: stored results keep their keys
            doc["periphery"] = asdict(self.periphery)
        return doc | {"device": self.device.resolved(relto), "mapping": asdict(self.mapping),
                      "training": asdict(self.training), "seeds": list(self.seeds),
                      "out": portable(self.out, relto)}


def parse_train_spec(data: dict, file=None) -> TrainSpec:
    """A train spec from its document; ``file`` (the spec's path) anchors relative paths and
    names the file in errors."""
    sec = Section(data, file)
    base = Path(file).parent if file is not None else None
    spec = TrainSpec()
    spec.name = sec.take("name", str, Path(file).stem if file else "train")
    spec.dataset = sec.take("dataset", str, "mnist", choices=DATASETS)
    spec.subset = sec.take("subset", int, None, **subset_check(spec.dataset))
    net = sec.sub("network", {})
    kind = net.take("kind", str, "mlp", choices=NETWORK_KINDS)
    hidden = net.number_list("hidden", {"mlp": [100], "bnn": [500]}.get(kind, [128]),
                             integer=True, positive=True, nonempty=False)
    conv = parse_conv(net, kind)
    kernel = net.take("kernel", int, 3, check=lambda v: v >= 1 and v % 2 == 1,
                      check_msg="must be an odd number >= 1")
    if net.has("sizes"):
        spec.sizes = net.number_list("sizes", integer=True, positive=True)
        if len(spec.sizes) < 2:
            raise net.error("sizes", "needs at least an input and an output size")
        hidden = spec.sizes[1:-1]
    else:
        net.take("sizes", None, None)
    activation = net.take("activation", str, "relu", choices=tuple(ACTIVATIONS))
    net.done()
    spec.network = NetworkSpec(kind, tuple(hidden), activation, conv, kernel)
    spec.periphery = parse_periphery(sec.take("periphery", (str, dict), None), file)
    if spec.periphery is not None and (spec.network.binarized or spec.network.convolutional):
        raise sec.error("periphery", "is modelled for the linear layers of an mlp only")
    spec.device = parse_device(sec.take("device", (str, dict), "float"), file, "device", base)
    spec.mapping = parse_mapping(sec.sub("mapping", {}))
    sends = set(pulse_polarities(spec.mapping))
    if not sends <= set(spec.device.polarities):
        raise MemsimError(f"the {spec.device.kind} device takes only "
                          f"{' and '.join(spec.device.polarities)} pulses; this mapping sends "
                          f"{' and '.join(sorted(sends))} (use policy "
                          f"{spec.device.polarities[0]})", file, "key 'mapping.policy'")
    binarized = spec.network.binarized
    tr = sec.sub("training", {})
    spec.training = parse_training(tr, TrainSettings(
        optimizer="adam" if binarized else "sgd", lr=0.005 if binarized else 0.1))
    if spec.training.init_scale == 0 and spec.mapping.w_max is None:
        raise tr.error("init_scale", "0 (weights start at 0) needs a fixed mapping.w_max: the "
                                     "automatic range follows the initial weights")
    if spec.network.convolutional and ALGORITHMS[spec.training.algorithm["kind"]].needs_outer:
        raise tr.error("algorithm", f"{spec.training.algorithm['kind']} updates from "
                                    "per-example outer products: linear layers only")
    if sec.has("seeds"):
        spec.seeds = sec.seed_list()
        sec.take("seed", int, None)
    else:
        spec.seeds = [sec.seed()]
        sec.taken.add("seeds")  # named among the allowed keys of an error
    spec.out = sec.out_dir(base)
    sec.done()
    return spec


def parse_conv(net: Section, kind: str) -> tuple:
    """A conv net's layers: output channels of each conv layer, ``pool`` for 2x2 max pooling
    after the layer before (e.g. ``[32, 32, pool, 64, 64, pool]``)."""
    if kind not in ("cnn", "bcnn"):
        if net.has("conv"):
            raise net.error("conv", f"a {kind} network has no conv layers (use cnn or bcnn)")
        net.take("conv", None, None)
        return ()
    value = net.take("conv", list, [32, 32, POOL, 64, 64, POOL])
    for v in value:
        if v != POOL and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise net.error("conv", f"entries are channel counts or {POOL!r}, found {v!r}")
    if not any(v != POOL for v in value):
        raise net.error("conv", "needs at least one conv layer")
    return tuple(value)


def parse_mapping(mp: Section) -> Mapping:
    """The weight mapping and update-rule settings of a spec section."""
    positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
    w_max = mp.take("w_max", (float, str), None)
    if isinstance(w_max, str) and w_max != "auto":
        raise mp.error("w_max", f"must be a number or auto, not {w_max!r}")
    if isinstance(w_max, float) and not w_max > 0:
        raise mp.error("w_max", "must be positive")
    mapping = Mapping(
        kind=mp.take("kind", str, "pair", choices=MAPPINGS),
        w_max=None if w_max in (None, "auto") else w_max,
        range_std=mp.take("range_std", float, Mapping.range_std, **positive),
        policy=mp.take("policy", str, "split", choices=POLICIES),
        dw_min=mp.take("dw_min", float, None, **positive),
        nominal_step=mp.take("nominal_step", float, None, **positive),
        max_pulses=mp.take("max_pulses", int, 8, check=lambda v: 1 <= v <= 127,
                           check_msg="must be in 1..127"),
        refresh_every=mp.take("refresh_every", int, 0, check=lambda v: v >= 0,
                              check_msg="must be >= 0"),
        refresh_threshold=mp.take("refresh_threshold", float, 0.9,
                                  check=lambda v: 0 < v <= 1, check_msg="must be in (0, 1]"))
    mp.done()
    return mapping


def parse_schedule(tr: Section, base: dict) -> dict:
    """A learning-rate schedule: ``constant``, ``{kind: step, every: E, factor: F}`` or
    ``{kind: cosine, min_lr: L}``; the old ``lr_decay_every``/``lr_decay`` keys mean a step
    schedule."""
    every = tr.take("lr_decay_every", int, 0, check=lambda v: v >= 0, check_msg="must be >= 0")
    factor = tr.take("lr_decay", float, 0.5, check=lambda v: 0 < v <= 1,
                     check_msg="must be in (0, 1]")
    value = tr.take("schedule", (str, dict), None)
    if value is None:
        return {"kind": "step", "every": every, "factor": factor} if every else dict(base)
    if every:
        raise tr.error("lr_decay_every", "give either schedule or lr_decay_every, not both")
    if isinstance(value, str):
        value = {"kind": value}
    sec = Section(value, tr.file, tr.path("schedule"))
    kind = sec.take("kind", str, choices=("constant", "step", "cosine"))
    out = {"kind": kind}
    if kind == "step":
        out["every"] = sec.take("every", int, check=lambda v: v >= 1, check_msg="must be >= 1")
        out["factor"] = sec.take("factor", float, 0.5, check=lambda v: 0 < v <= 1,
                                 check_msg="must be in (0, 1]")
    elif kind == "cosine":
        out["min_lr"] = sec.take("min_lr", float, 0.0, check=lambda v: v >= 0,
                                 check_msg="must be >= 0")
    sec.done()
    return out


def parse_training(tr: Section, base: TrainSettings) -> TrainSettings:
    """Training settings of a spec section; keys left out keep ``base``'s values."""
    positive = {"check": lambda v: v > 0, "check_msg": "must be positive"}
    settings = TrainSettings(
        epochs=tr.take("epochs", int, base.epochs, **positive),
        batch=tr.take("batch", int, base.batch, **positive),
        optimizer=tr.take("optimizer", str, base.optimizer, choices=("sgd", "adam")),
        lr=tr.take("lr", float, base.lr, **positive),
        schedule=parse_schedule(tr, base.schedule),
        algorithm=dict(base.algorithm),
        # 0: every weight starts at 0 (as the JART study's devices do)
        init_scale=tr.take("init_scale", float, base.init_scale, check=lambda v: v >= 0,
                           check_msg="must be >= 0"),
        report_last=tr.take("report_last", int, base.report_last, **positive))
    if tr.has("algorithm"):
        settings.algorithm = parse_algorithm(tr.take("algorithm", (str, dict)), tr.file,
                                             tr.path("algorithm"))
    else:
        tr.take("algorithm", None, None)
    if ALGORITHMS[settings.algorithm["kind"]].needs_outer and settings.optimizer != "sgd":
        raise tr.error("optimizer", f"the {settings.algorithm['kind']} algorithm is an SGD "
                                    "rule: use optimizer sgd")
    tr.done()
    return settings


def load_train_spec(path) -> TrainSpec:
    """A train spec from its YAML file (relative paths relative to it)."""
    return parse_train_spec(load_yaml(path), path)


def check_against_data(spec: TrainSpec, data: Dataset, file=None) -> None:
    """Refuse layer sizes that do not fit the data, before any training."""
    try:
        spec.network.layers(data.n_features, data.n_classes)
    except MemsimError as err:
        raise MemsimError(err.problem, file, "key 'network.conv'") from None
    if spec.sizes is not None:
        if spec.sizes[0] != data.n_features:
            raise MemsimError(f"network input size {spec.sizes[0]} does not fit {spec.dataset}"
                              f" ({data.n_features} pixels per image)", file,
                              "key 'network.sizes'")
        if spec.sizes[-1] != data.n_classes:
            raise MemsimError(f"network output size {spec.sizes[-1]} does not fit "
                              f"{spec.dataset} ({data.n_classes} classes)", file,
                              "key 'network.sizes'")

