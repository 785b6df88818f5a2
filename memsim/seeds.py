"""Every random stream of memsim, derived in one place.

An experiment has integer seeds (a data seed, a training seed, a population root); each use of
randomness is a *role* below. ``seed_for(seed, role, *keys)`` hashes them with numpy's
``SeedSequence``, so streams of different roles (or of the same role under different keys such
as the epoch or the polarity) are independent by construction, not by lucky offsets, and the
same spec and seed give the same numbers on a machine.

======================  =======================================================================
role                    stream
======================  =======================================================================
``data``                Algorithm 2 draws from a truth (key: polarity index)
``holdout``             which points (or ramps) a fit holds out (key: polarity index)
``folds``               cross-validation folds of a fit method (key: polarity index)
``search``              Optuna's TPE sampler (key: polarity index)
``metrics``             pulse-train simulations of device-level metrics
``init``                a network's initial weights (key: none; one stream per member seed)
``order``               a member's minibatch order (key: epoch)
``device``              the write noise of a population (its pulse draws)
``variation``           device-to-device parameters of a population
``choice``              which model each device of a multi-model population follows
``subset``              which examples a dataset subset keeps
``display``             which points a crowded figure shows
``rounding``            stochastic rounding of desired updates into pulses
``read``                inference reads of coded cells (key: hash of LUT, coding, layer, time)
``periphery``           output noise of a network's converters (one stream per member seed)
======================  =======================================================================
"""

from __future__ import annotations

import numpy as np

# the scheme of the streams: stored results keyed under another scheme are not reused
SCHEME = 2

ROLES = {"data": 1, "holdout": 2, "folds": 3, "search": 4, "metrics": 5, "init": 6,
         "order": 7, "device": 8, "variation": 9, "choice": 10, "rounding": 11,
         "subset": 12, "display": 13, "bootstrap": 14,
         "read": 15, "periphery": 16}


def seed_for(seed: int, role: str, *keys: int) -> int:
    """A 32-bit seed for stream ``role`` of ``seed`` (and sub-keys), independent of every other
    (seed, role, keys)."""
    if role not in ROLES:
        raise ValueError(f"unknown seed role {role!r}")
    # the number of keys is part of the entropy: SeedSequence does not tell [a, b] from [a, b, 0]
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF, ROLES[role], len(keys), *(int(k) for k in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])


def rng(seed: int, role: str, *keys: int) -> np.random.Generator:
    """A numpy generator for stream ``role`` of ``seed``."""
    return np.random.default_rng(seed_for(seed, role, *keys))


def substreams(seed: int, n: int) -> list[int]:
    """``n`` independent 32-bit seeds spawned from ``seed`` (the generators inside one stream,
    e.g. the two halves of a large parallel draw)."""
    children = np.random.SeedSequence(int(seed) & 0xFFFFFFFFFFFFFFFF).spawn(n)
    return [int(c.generate_state(1, np.uint32)[0]) for c in children]
