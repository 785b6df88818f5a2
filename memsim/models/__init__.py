"""Device models: the distribution of dG for one pulse given G, per polarity.

:mod:`.base` (the interface), :mod:`.table` (jump tables), :mod:`.synthetic` (known
Gaussian-profile devices and presets), :mod:`.formats` (table files: memsim JSON, XBTorch,
CrossSim), :mod:`.resolve` (any model reference -> a model), :mod:`.sampling` (Algorithm 2).
"""

from .base import POLARITIES, DeviceModel
from .resolve import load_model
from .sampling import sample_points
from .synthetic import SyntheticDevice, load_synthetic, preset_names
from .table import ConditionalTable, JumpTable

__all__ = ["POLARITIES", "ConditionalTable", "DeviceModel", "JumpTable", "SyntheticDevice",
           "load_model", "load_synthetic", "preset_names", "sample_points"]
