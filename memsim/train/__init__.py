"""Training networks with devices in the loop.

:mod:`.cells` (synapse cells, policies, the pulse update rule), :mod:`.networks` (MLP/BNN over
members), :mod:`.optim` (SGD/Adam proposing changes), :mod:`.spec` (train specs),
:mod:`.trainer` (the vectorized trainer and ``memsim train``).
"""

from .spec import TrainSpec, load_train_spec, parse_train_spec
from .trainer import Trainer, TrainResult, train

__all__ = ["TrainResult", "TrainSpec", "Trainer", "load_train_spec", "parse_train_spec",
           "train"]
