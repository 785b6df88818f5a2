"""User-facing errors: one line naming the file, the place and the problem.

The CLI turns a :class:`MemsimError` into that line on stderr and exit code 2. Library users
catch it like any exception; ``str(err)`` is the same one line.
"""

from __future__ import annotations


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
