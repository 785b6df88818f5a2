"""State look-up tables: measured conductance per programmed state, and draws from them."""

from .lut import MODELS, StateLUT, StateSampler, best_threshold, empirical_ber
from .sources import SOURCES, parse_lut, read_state_csv

__all__ = ["MODELS", "SOURCES", "StateLUT", "StateSampler", "best_threshold", "empirical_ber",
           "parse_lut", "read_state_csv"]
