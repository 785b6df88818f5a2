"""Inference specs: what ``memsim infer SPEC.yaml`` reads.

::

    name: infer_lenet_levy
    network: {arch: lenet, dataset: mnist, epochs: 3}   # trained once in float, cached
    layers: [conv1]                 # the layers whose weights are coded, or `all`
    luts:                           # state look-up tables (memsim.states.SOURCES)
      - {name: levy_2, source: levy, levels: [0, 31], times: [0, 1, 100000]}
      - {name: levy_8, source: levy, levels: [0, 4, 9, 13, 18, 22, 27, 31], model: empirical}
    codings:                        # memsim.infer.codings.CODINGS, with their options
      - {coding: float_bits, format: float32}
      - {coding: multilevel, format: float32, luts: [levy_8]}   # only on the LUTs named
      - {coding: analog}
    scales: [0, 1, 4, 16]           # multipliers of the measured spread; 0 = ideal states
    seeds: [0, 1, 2]                # one draw of every coded layer per seed
    test_subset: null               # evaluate on the first N test images (default: all)
    out: ../results/infer/infer_lenet_levy

Per LUT, ``model`` (empirical, lognormal, normal: how reads are drawn from the measured values)
and ``d2d`` (each cell one measured device, needs a device column) say how the LUT is used;
``times`` the read times (the first is the reference a reader is calibrated at). Relative paths
are relative to the spec file; a ``levy`` LUT without ``file:`` reads the table shipped with
memsim, wherever the spec lies. Everything (the LUT files included) is checked before anything
runs or is written.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import MemsimError
from ..io.datasets import subset_check
from ..io.paths import portable
from ..io.schema import Section, load_yaml
from ..states import MODELS, StateLUT, parse_lut
from .codings import Coding, parse_coding
from .network import LAYERS, NetworkConfig, check_layers


@dataclass
class LUTUse:
    lut: StateLUT
    model: str = "empirical"
    d2d: bool = False


@dataclass
class InferSpec:
    name: str
    network: NetworkConfig
    layers: list[str]
    luts: list[LUTUse]
    codings: list[tuple[Coding, list[str] | None]]  # coding, the LUT names it applies to
    scales: list[float]
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    test_subset: int | None = None
    out: str | None = None
    file: str | None = None
    doc: dict = field(default_factory=dict)  # the document parsed: its LUT and coding entries
    parsed: dict = field(default_factory=dict)  # the recordable fields as the document gave them

    def cells(self) -> list[tuple[LUTUse, Coding]]:
        """Every (LUT, coding) pair that is run."""
        return [(use, coding) for use in self.luts for coding, only in self.codings
                if only is None or use.lut.name in only]

    def recordable(self) -> dict:
        """The fields a notebook may change after parsing, as a document would give them."""
        return {"name": self.name, "network": asdict(self.network), "layers": list(self.layers),
                "scales": list(self.scales), "seeds": list(self.seeds),
                "test_subset": self.test_subset}

    def record(self, out: str | Path) -> dict:
        """The spec as run, as a document written into ``out`` that reruns from there: the
        document parsed, with any field changed since in its new value, LUT files relative to
        ``out`` (no absolute machine path), results back into ``out``."""
        base = Path(self.file).parent if self.file else Path.cwd()
        doc = dict(self.doc)
        doc.update({k: v for k, v in self.recordable().items() if v != self.parsed.get(k)})
        if isinstance(doc.get("luts"), list):
            doc["luts"] = [{**lut, "file": portable(str(base / lut["file"]), out)}
                           if isinstance(lut, dict) and isinstance(lut.get("file"), str) else lut
                           for lut in doc["luts"]]
        return {**doc, "out": "."}


def parse_infer_spec(data: dict, file=None) -> InferSpec:
    """An inference spec from its document; ``file`` (the spec's path) anchors relative paths
    and names the file in errors."""
    sec = Section(data, file)
    base_dir = Path(file).parent if file is not None else None
    name = sec.take("name", str, Path(file).stem if file else "inference")
    network = NetworkConfig.parse(sec.sub("network", {}))
    layers = sec.take("layers", (list, str), ["conv1"])
    if layers == "all":
        layers = list(LAYERS)
    elif isinstance(layers, str):
        raise sec.error("layers", "must be a list of layer names or `all`")
    check_layers(layers, f"{file}: key 'layers'" if file else "key 'layers'")
    if not layers:
        raise sec.error("layers", "must not be empty")
    layers = [la for la in LAYERS if la in layers]  # network order: the first is the one whose
    # output error is reported
    entries = sec.take("luts", list)
    if not entries:
        raise sec.error("luts", "must list at least one LUT")
    luts = []
    for i, entry in enumerate(entries):
        sub = Section(entry, file, f"luts[{i}]")
        model = sub.take("model", str, "empirical", choices=MODELS)
        d2d = sub.take("d2d", bool, False)
        try:
            lut = parse_lut(sub, base_dir)
        except MemsimError as exc:
            if exc.where is None and exc.file is None:
                raise MemsimError(exc.problem, file, f"luts[{i}]") from None
            raise
        sub.done()
        if d2d and model != "empirical":
            raise sub.error("d2d", "device-to-device reads need model: empirical")
        if d2d and not lut.has_devices:
            raise sub.error("d2d", f"LUT {lut.name!r} has no device column")
        luts.append(LUTUse(lut, model, d2d))
    names = [u.lut.name for u in luts]
    if len(set(names)) != len(names):
        raise sec.error("luts", "LUT names must be unique (give each a name:)")
    codings = []
    entries = sec.take("codings", list)
    if not entries:
        raise sec.error("codings", "must list at least one coding")
    for i, entry in enumerate(entries):
        sub = Section(entry, file, f"codings[{i}]")
        only = sub.take("luts", list, None)
        if only is not None and any(n not in names for n in only):
            raise sub.error("luts", f"names a LUT not in luts ({', '.join(names)})")
        coding = parse_coding(sub)
        for use in luts:
            if only is None or use.lut.name in only:
                coding.check(use.lut, f"{file}: codings[{i}]" if file else f"codings[{i}]")
        codings.append((coding, only))
    labels = [c.label for c, _ in codings]
    if len(set(labels)) != len(labels):
        raise sec.error("codings", "two codings with the same options")
    scales = sec.number_list("scales", [0.0, 1.0], unique=True)
    if not all(math.isfinite(s) and s >= 0 for s in scales):
        raise sec.error("scales", "must be finite and non-negative")
    count = sec.data.get("seeds")
    if isinstance(count, int) and not isinstance(count, bool):  # K: seeds 0..K-1
        seeds = list(range(sec.take("seeds", int, check=lambda v: v >= 1,
                                    check_msg="must be a count >= 1 or a list of seeds")))
    else:
        seeds = sec.seed_list("seeds", [0, 1])
    test_subset = sec.take("test_subset", int, None, **subset_check(network.dataset, 1))
    out = sec.out_dir(base_dir)
    sec.done()
    spec = InferSpec(name, network, layers, luts, codings, [float(s) for s in sorted(scales)],
                     seeds, test_subset, out, None if file is None else str(file),
                     copy.deepcopy(data))
    spec.parsed = spec.recordable()
    return spec


def load_infer_spec(path) -> InferSpec:
    """An inference spec from its YAML file (relative paths relative to it)."""
    return parse_infer_spec(load_yaml(path), path)
