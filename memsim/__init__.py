"""memsim: neural networks on simulated resistive-memory devices.

Fit jump tables from device data, train networks with any device model in the loop, and measure
the modeling bias of fitted device models. The CLI (``memsim``) is a thin layer over this API::

    import memsim

    data = memsim.load_device_data("set.csv", unit="uS")          # device data
    table = memsim.fit_table(data, "optuna").table                # a fitted model
    truth = memsim.load_model("preset:xbtorch_target")            # any model reference
    pop = memsim.population_for(table, 10_000)                    # devices, pulsed with torch
    result = memsim.train_network(memsim.load_train_spec("experiments/mlp_tiox.yaml"))
    out = memsim.run_sweep(memsim.load_sweep_spec("experiments/bias_synthetic.yaml"))
    out = memsim.run_ablation(memsim.load_ablation_spec("experiments/ablate_hfox.yaml"))
    out = memsim.run_inference(memsim.load_infer_spec("experiments/infer_lenet_levy.yaml"))

Every runner takes ``(spec, compute, *, options)``; ``compute`` is cpu, cuda or auto (the
default, as on the command line: cuda when a CUDA device is available, else cpu).

Names are loaded on first use, so ``import memsim`` stays cheap.
"""

from ._version import __version__

_API = {
    # device data -> models
    "load_device_data": "memsim.io.data",
    "PulseData": "memsim.io.data",
    "load_model": "memsim.models.resolve",
    "sample_points": "memsim.models.sampling",
    "JumpTable": "memsim.models.table",
    "DeviceModel": "memsim.models.base",
    # fitting
    "fit_table": "memsim.fit.registry",
    "get_method": "memsim.fit.registry",
    "FIT_METHODS": "memsim.fit.registry",
    "load_fit_spec": "memsim.fit.experiment",
    "run_fit": "memsim.fit.experiment",
    "write_fit_outputs": "memsim.fit.experiment",
    "check_table": "memsim.fit.sanity",
    "run_fidelity": "memsim.fit.fidelity",
    "compare_models": "memsim.metrics.distances",
    "w1_to_truth": "memsim.metrics.distances",
    "compare_to_data": "memsim.metrics.distances",
    # devices -> populations
    "DEVICE_KINDS": "memsim.devices.registry",
    "parse_device": "memsim.devices.registry",
    "population_for": "memsim.devices.registry",
    # training
    "load_train_spec": "memsim.train.spec",
    "parse_train_spec": "memsim.train.spec",
    "train_network": "memsim.train.trainer",
    "write_train_outputs": "memsim.train.trainer",
    # sweeps
    "load_sweep_spec": "memsim.sweep.spec",
    "run_sweep": "memsim.sweep.run",
    # ablations
    "load_ablation_spec": "memsim.ablate.spec",
    "parse_ablation_spec": "memsim.ablate.spec",
    "run_ablation": "memsim.ablate.run",
    # inference on state look-up tables
    "StateLUT": "memsim.states.lut",
    "parse_lut": "memsim.states.sources",
    "read_state_csv": "memsim.states.sources",
    "load_infer_spec": "memsim.infer.spec",
    "parse_infer_spec": "memsim.infer.spec",
    "run_inference": "memsim.infer",
    "MemsimError": "memsim.errors",
}
# API names that differ from the module attribute (a subpackage name cannot be an API name:
# importing memsim.fit would shadow a function memsim.fit)
_RENAMED = {"FIT_METHODS": "METHODS", "DEVICE_KINDS": "KINDS", "fit_table": "fit",
            "train_network": "train"}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'memsim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
