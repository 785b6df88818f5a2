"""Weight codings: how a weight becomes cell states and comes back from cell reads.

A new coding is a module with a :class:`Coding` subclass and a line in ``CODINGS``.
"""

from ...errors import MemsimError
from ...io.schema import Section
from .analog import Analog
from .base import FIELDS, FORMATS, Coded, Coding, bit_fields, from_bits, to_bits
from .float_bits import FloatBits
from .multilevel import Multilevel

CODINGS: dict[str, type[Coding]] = {c.name: c for c in (FloatBits, Multilevel, Analog)}


def parse_coding(sec: Section) -> Coding:
    name = sec.take("coding", str)
    if name not in CODINGS:
        raise MemsimError(f"unknown coding {name!r}; use one of {', '.join(CODINGS)}",
                          sec.file, f"key {sec.path('coding')!r}")
    coding = CODINGS[name](sec)
    sec.done()
    return coding


__all__ = ["CODINGS", "FIELDS", "FORMATS", "Coded", "Coding", "bit_fields", "from_bits",
           "parse_coding", "to_bits"]
