"""Ablation specs: what ``memsim ablate SPEC.yaml`` reads.

An ablation trains one base network on variants of its device, each with some imperfections
switched off (the switches a device kind declares: ``DeviceKind.switches``), over several
seeds. Relative paths are relative to the spec file::

    name: ablate_hfox
    base: bnn_hfox_published.yaml     # a train spec (file, or an inline mapping)
    overrides: {subset: 20000}        # optional: written over the base spec
    seeds: [0, 1, 2]                  # training seeds: every variant trains each
    variants:                         # name + switches (on / off); `all` sets every switch
      - {name: no_d2d, d2d: off}
      - {name: no_rtn, rtn: off}
      - {name: only_d2d, all: off, d2d: on}
      - {name: r_disc_d2d, device: jart:d2d_rdisc_realistic}   # or a device of its own
    ensemble: 3                       # seeds trained in one vectorized pass
    jobs: 1                           # processes
    cluster: null                     # or local:N, tcp://host:8786: a Dask cluster trains them
    out: ../results/ablate_hfox

Two variants are always added: ``full`` (the base device, every imperfection) and ``none``
(every switch off); each variant is compared with both, seed by seed. A variant may name a
``device:`` of its own (anything a train spec's ``device:`` accepts, of the base's kind): the
way to ablate configurations that are settings rather than switches (the JART study's single
noise sources, each added alone to the noise-free device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MemsimError
from ..io.schema import Section, deep_merge, load_yaml
from ..sweep.spec import take_cluster
from ..train.spec import TrainSpec, parse_train_spec

FULL, NONE = "full", "none"


@dataclass
class Variant:
    name: str
    states: dict[str, bool]  # switch -> on/off, as written
    device: object = None  # a device of its own (DeviceKind) instead of the base's

    def off(self, switches) -> list[str]:
        """The switches (of ``switches``) this variant turns off."""
        default = self.states.get("all") is not False
        return [s for s in switches if self.states.get(s, default) is False]


@dataclass
class AblationSpec:
    name: str
    base: TrainSpec
    variants: list[Variant]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ensemble: int = 4
    jobs: int = 1
    cluster: str | None = None
    out: str | None = None
    file: str | None = None

    def device(self, variant: Variant):
        """The base device (or the variant's own) with the variant's switches applied."""
        device = variant.device if variant.device is not None else self.base.device
        return device.switched(variant.states) if variant.states else device

    def train_spec(self, variant: Variant, seeds: list[int]) -> TrainSpec:
        from dataclasses import replace

        return replace(self.base, name=f"{self.name}:{variant.name}",
                       device=self.device(variant), seeds=list(seeds), out=None)


def _blame_overrides(err: MemsimError, over: dict, file) -> MemsimError:
    """An error in the base spec at a key this ablation's ``overrides`` set, placed there."""
    key = err.key()[0] if err.key() else ""
    node, parts = over, key.split(".") if key else []
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return err
        node = node[part]
    return err.moved(f"overrides.{key}", file) if parts else err


def parse_ablation_spec(data: dict, file=None, overrides: dict | None = None) -> AblationSpec:
    """Everything is checked here, before any training: the base spec, each variant's name
    (unique, not a reserved one) and switches (known to the base device's kind, on or off)."""
    sec = Section(data, file)
    base_dir = Path(file).absolute().parent if file is not None else Path.cwd()
    name = sec.take("name", str, Path(file).stem if file else "ablation")
    base_value = sec.take("base", (str, dict))
    if isinstance(base_value, str):
        base_file = base_dir / base_value  # unchanged if base_value is absolute
        if not base_file.exists():
            raise MemsimError(f"base train spec {base_value!r} not found", file, "key 'base'")
        base_doc, base_where = load_yaml(base_file), base_file
    else:
        base_doc, base_where = base_value, None if file is None else Path(file).absolute()
    spec_overrides = sec.take("overrides", dict, {})
    base_doc = deep_merge(deep_merge(base_doc, spec_overrides), overrides or {})
    base_doc.pop("out", None)  # the ablation writes its own outputs
    try:
        base = parse_train_spec(base_doc, base_where)
    except MemsimError as err:
        raise _blame_overrides(err, spec_overrides, file) from None
    if base.device.is_float or not base.device.switches:
        raise MemsimError(f"the {base.device.kind} device has no imperfection switches to "
                          "ablate", file, "key 'base'")
    seeds = sec.seed_list("seeds", [0, 1, 2])
    raw = sec.take("variants", list)
    if not raw:
        raise sec.error("variants", "is empty: name at least one variant")
    variants = [Variant(FULL, {}), Variant(NONE, {"all": False})]
    for i, item in enumerate(raw):
        where = f"variants[{i}]"
        if not isinstance(item, dict):
            raise MemsimError(f"must be a mapping with a name and switches, not {item!r}",
                              file, f"key {where!r}")
        vs = Section(item, file, where)
        vname = vs.take("name", str)
        if vname in (FULL, NONE):
            raise vs.error("name", f"{vname!r} is reserved (the base device and every switch "
                                   "off are always run)")
        if vname in {v.name for v in variants}:
            raise vs.error("name", f"duplicate variant name {vname!r}")
        states = {}
        own = None
        if "device" in item:
            from ..devices.registry import parse_device

            own = parse_device(vs.take("device", (str, dict)), file, f"{where}.device",
                               base_dir)
            if own.kind != base.device.kind:
                raise vs.error("device", f"a {own.kind} device in an ablation of a "
                                         f"{base.device.kind} device")
        for key in item:
            if key in ("name", "device"):
                continue
            if key != "all" and key not in base.device.switches:
                raise vs.error(key, f"unknown switch for a {base.device.kind} device (its "
                                    f"switches: {', '.join([*base.device.switches, 'all'])})")
            states[key] = vs.take(key, bool)
        if own is None and not Variant(vname, states, None).off(base.device.switches):
            raise vs.error("name", f"variant {vname!r} switches nothing off (it is the full "
                                   "device again)")
        vs.done()
        variants.append(Variant(vname, states, own))
    spec = AblationSpec(name, base, variants, seeds,
                        ensemble=sec.take("ensemble", int, 4, check=lambda v: v >= 1,
                                          check_msg="must be >= 1"),
                        jobs=sec.take("jobs", int, 1, check=lambda v: v >= 1,
                                      check_msg="must be >= 1"),
                        cluster=take_cluster(sec),
                        file=str(file) if file is not None else None)
    spec.out = sec.out_dir(base_dir)
    sec.done()
    for v in variants:  # every variant's device must build
        spec.device(v)
    return spec


def load_ablation_spec(path, overrides: dict | None = None) -> AblationSpec:
    """An ablation spec from its YAML file (relative paths relative to it); ``overrides``
    merge into its base train spec."""
    return parse_ablation_spec(load_yaml(path), path, overrides)
