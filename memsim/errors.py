"""User-facing errors: one line naming the file, the place and the problem.

The CLI turns a :class:`MemsimError` into that line on stderr and exit code 2. Library users
catch it like any exception; ``str(err)`` is the same one line.
"""

from __future__ import annotations

import re


class MemsimError(Exception):
    """A problem the user can act on (bad input, bad spec, missing file)."""

    def __init__(self, problem: str, file: str | None = None, where: str | None = None):
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        return ": ".join([*parts, self.problem])

    def key(self) -> tuple[str, str] | None:
        """(spec key, rest of the place) of an error placed at ``key 'a.b'...``, else None."""
        m = re.fullmatch(r"key '([^']*)'(.*)", self.where or "", flags=re.S)
        return (m.group(1), m.group(2)) if m else None

    def moved(self, key: str, file=None) -> MemsimError:
        """The same problem placed at another spec key (and file)."""
        rest = self.key()[1] if self.key() else ""
        return MemsimError(self.problem, self.file if file is None else file,
                           f"key '{key}'{rest}")
