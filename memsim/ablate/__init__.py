"""Ablations: which device imperfection costs the most accuracy (``memsim ablate``)."""

from .run import plan, run_ablation
from .spec import AblationSpec, Variant, load_ablation_spec, parse_ablation_spec

__all__ = ["AblationSpec", "Variant", "load_ablation_spec", "parse_ablation_spec", "plan",
           "run_ablation"]
