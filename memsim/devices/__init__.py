"""Device kinds for training and their vectorized populations.

One module per device family (:mod:`.ideal`, :mod:`.table`, :mod:`.synthetic`,
:mod:`.neurosim`, :mod:`.hfox`, :mod:`.floating`), each with its spec keys, range, nominal
step and population; :mod:`.registry` maps ``kind:`` to them; :mod:`.population` is the
pulse engine they share.
"""

from .base import DeviceKind
from .population import Population
from .registry import KINDS, device_for_model, parse_device, population_for

__all__ = ["KINDS", "DeviceKind", "Population", "device_for_model", "parse_device",
           "population_for"]
