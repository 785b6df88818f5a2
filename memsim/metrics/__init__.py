"""How faithful is a device model? Scoring rules (:mod:`.scoring`), distribution distances
against a reference model or data (:mod:`.distances`), and pulse trains (:mod:`.pulse_trains`).
"""

from .distances import compare_models, compare_to_data, distribution_distances
from .pulse_trains import pulse_train_distance, simulate_pulse_train
from .scoring import crps, crps_gaussian, crps_quantile_rows

__all__ = ["compare_models", "compare_to_data", "crps", "crps_gaussian", "crps_quantile_rows",
           "distribution_distances", "pulse_train_distance", "simulate_pulse_train"]
