"""Update algorithms: how desired weight changes become device pulses.

:mod:`.base` (the interface), :mod:`.sgd`, :mod:`.mixed_precision`, :mod:`.tiki_taka`,
:mod:`.pulse_trains`, :mod:`.registry` (name -> algorithm).
"""
