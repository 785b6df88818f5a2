"""The interface of an update algorithm: how a network's desired weight changes become pulses.

An :class:`Algorithm` holds its settings (read from the spec by :meth:`Algorithm.from_spec`),
is bound to the synapses of one network ensemble (:meth:`bind`), and then turns each step's
desired change into pulses on one or more device arrays, keeping ``syn.flat`` (the weights the
network computes with) equal to what the devices hold. Everything is vectorized over members
and weights; the same code runs on CPU and CUDA.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import ClassVar

import torch


class Algorithm:
    name: ClassVar[str]
    needs_outer: ClassVar[bool] = False  # updates from (x, delta) per example, not from dw
    checks: ClassVar[dict] = {}  # per setting: extra checks for Section.take

    def __init__(self, **settings):
        self.settings = self.Settings(**settings)

    @classmethod
    def from_spec(cls, sec) -> Algorithm:
        """Read the settings from a spec section; keys left out keep the defaults."""
        out = {}
        for f in fields(cls.Settings):
            out[f.name] = sec.take(f.name, type(f.default), f.default,
                                   **cls.checks.get(f.name, {}))
        return cls(**out)

    def to_doc(self) -> dict:
        return {"kind": self.name, **asdict(self.settings)}

    # -- bound to one ensemble's synapses
    def bind(self, syn, dev, seed: int, member_choice=None) -> Algorithm:
        self.syn = syn
        return self

    def arrays(self) -> list:
        """The device arrays this algorithm writes (for pulse accounting)."""
        return [self.syn.array]

    def initialise(self, w0: torch.Tensor) -> None:
        self.syn.array.program(w0)

    def weights(self) -> torch.Tensor:
        """The weights the network computes with."""
        return self.syn.array.read()

    def update(self, dw: torch.Tensor) -> None:
        raise NotImplementedError

    def update_outer(self, xs, deltas, lr: float) -> None:
        raise NotImplementedError(f"{self.name} updates from weight changes")

    def slow_target(self) -> torch.Tensor:
        """What the main array must hold for the network's weights to stay what they are."""
        return self.syn.flat

    def refresh(self) -> None:
        """Re-program saturated weights of the main array to the same weight with free range."""
        syn = self.syn
        sat = syn.array.refresh(self.slow_target())
        if sat is not None:
            syn.count_refresh(sat)
            syn.flat.copy_(self.weights())

    # -- helpers shared by the algorithms
    def send(self, array, k: torch.Tensor, counts: torch.Tensor) -> None:
        """Pulses ``counts`` for flat weights ``k`` on ``array``, booked to their members."""
        applied = array.send(k, counts, self.syn.steps)
        self.syn.count(k, counts, applied)

    def stochastic_round(self, x: torch.Tensor) -> torch.Tensor:
        """floor(x + u), u uniform: E = x (in place on ``x``)."""
        return x.add_(self.syn.rounding.rounding_uniform(x.numel())).floor_()
