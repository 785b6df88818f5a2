"""Cross-validation folds shared by the fit methods that select settings on held-out points."""

from __future__ import annotations

import numpy as np

from .. import seeds
from ..errors import MemsimError


def fold_labels(n: int, folds: int, seed: int, groups: np.ndarray | None = None,
                key: int = 0) -> np.ndarray:
    """Cross-validation folds. With ``groups`` (e.g. the ramp of each point) and enough of
    them, whole groups go to one fold: consecutive changes of one ramp are correlated, and
    splitting them would make held-out scores look better than they are. ``key`` (e.g. the
    polarity index) gives an independent fold stream of the same seed."""
    rng = seeds.rng(seed, "folds", key)
    if groups is not None and len(np.unique(groups)) >= folds:
        uniq, inverse = np.unique(groups, return_inverse=True)
        group_fold = np.empty(len(uniq), dtype=int)
        group_fold[rng.permutation(len(uniq))] = np.arange(len(uniq)) % folds
        return group_fold[inverse]
    labels = np.empty(n, dtype=int)
    labels[rng.permutation(n)] = np.arange(n) % folds
    return labels


def check_cv_points(n: int, folds: int, polarity: str, what: str) -> None:
    if n < 4 * folds:
        raise MemsimError(f"too few points for {what}: {polarity} has {n}, {folds}-fold "
                          f"cross-validation needs at least {4 * folds}")

