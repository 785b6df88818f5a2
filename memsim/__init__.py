"""memsim: neural networks on simulated resistive-memory devices.

Fit jump tables from device data, train networks with any device model in the loop, and measure
the modeling bias of fitted device models. The CLI (``memsim``) is a thin layer over this API.
"""

__version__ = "0.1.0"
