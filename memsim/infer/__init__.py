"""Inference on coded weights: a float network's weights written once into memory cells of
measured state distributions, read back, and what that does to the layer outputs and accuracy.

``memsim infer SPEC.yaml`` is :func:`run_inference` over :func:`load_infer_spec`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..io.storage import write_text
from ..train.trainer import pick_device
from .codings import CODINGS, Coding
from .report import write_report
from .run import run_cells
from .spec import InferSpec, load_infer_spec, parse_infer_spec


def run_inference(spec: InferSpec, compute: str = "auto", *, log=print,
                  plots: bool = True) -> Path:
    """Run every cell of ``spec`` and write its report, and beside it ``infer_spec.yaml`` (the
    spec as run, which reruns from there); returns the output directory. ``compute``: cpu,
    cuda or auto (cuda when available, as on the command line)."""
    compute = pick_device(compute)
    out = Path(spec.out or f"results/infer/{spec.name}")
    draws, bits, float_accuracy = run_cells(spec, compute, log)
    write_report(out, spec, draws, bits, float_accuracy, plots)
    write_text(out / "infer_spec.yaml", yaml.safe_dump(spec.record(out), sort_keys=False))
    return out


__all__ = ["CODINGS", "Coding", "InferSpec", "load_infer_spec", "parse_infer_spec",
           "run_inference"]
