"""How faithful is a device model? Scoring rules (:mod:`.scoring`), distribution distances
against a reference model or data (:mod:`.distances`), and pulse trains (:mod:`.pulse_trains`).
Names load on first use: fitting needs only the scoring rules, not the simulator.
"""

_API = {"compare_models": "distances", "compare_to_data": "distances",
        "distribution_distances": "distances", "pulse_train_distance": "pulse_trains",
        "simulate_pulse_train": "pulse_trains", "crps": "scoring", "crps_gaussian": "scoring",
        "crps_quantile_rows": "scoring"}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'memsim.metrics' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    globals()[name] = value
    return value
