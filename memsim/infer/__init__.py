"""Inference on coded weights: a float network's weights written once into memory cells of
measured state distributions, read back, and what that does to the layer outputs and accuracy.

``memsim infer SPEC.yaml`` is :func:`run_inference` over :func:`parse_infer_spec`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..io.paths import portable
from ..io.storage import write_text
from .codings import CODINGS, Coding
from .report import write_report
from .run import run_cells
from .spec import InferSpec, parse_infer_spec


def run_inference(spec: InferSpec, device="cpu", log=print, plots: bool = True,
                  raw: dict | None = None) -> Path:
    """Run every cell of ``spec`` and write its report; returns the output directory."""
    out = Path(spec.out or f"results/infer/{spec.name}")
    draws, bits, float_accuracy = run_cells(spec, device, log)
    write_report(out, spec, draws, bits, float_accuracy, plots)
    if raw is not None:
        write_text(out / "infer_spec.yaml",
                   yaml.safe_dump(_rerunnable(raw, spec, out), sort_keys=False))
    return out


def _rerunnable(raw: dict, spec: InferSpec, out: Path) -> dict:
    """The spec as given, its files made relative to ``out`` (where it is written): it reruns
    from there and holds no absolute machine path."""
    base = Path(spec.file).parent if spec.file else Path.cwd()
    doc = dict(raw)
    if isinstance(doc.get("luts"), list):
        doc["luts"] = [{**lut, "file": portable(str(base / lut["file"]), out)}
                       if isinstance(lut, dict) and isinstance(lut.get("file"), str) else lut
                       for lut in doc["luts"]]
    if "out" in doc:
        doc["out"] = "."
    return doc


__all__ = ["CODINGS", "Coding", "InferSpec", "parse_infer_spec", "run_inference"]
