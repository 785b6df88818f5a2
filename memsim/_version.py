"""The package version and the identity of its code (their own module: everything may import
it, it imports nothing of memsim)."""

import hashlib
from functools import cache
from pathlib import Path

__version__ = "0.1.0"


def sources_digest(root: Path) -> str:
    """A digest of every Python source below ``root``: each file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


@cache
def code_identity() -> str:
    """The version and a digest of the package's sources. Stores of finished work are kept
    apart by it (a sweep's or ablation's store folder, the inference network's cache key, an
    Optuna study's name), so a result computed by other code is computed anew, never served:
    the version alone does not change with every change that moves a number."""
    return f"{__version__}+{sources_digest(Path(__file__).resolve().parent)}"
