"""Atomic file writes and content hashes.

Every result memsim writes goes through :func:`atomic_write`: the bytes land in a temporary
file in the target directory and are renamed over the target, so an interrupted run leaves
either the old file or the new one, never half a table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def write_csv(path: str | Path, frame) -> None:
    """Write a pandas DataFrame atomically (no index column)."""
    with atomic_write(path) as fh:
        frame.to_csv(fh, index=False)


def save_figure(path: str | Path, fig) -> None:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (sorted keys), e.g. a resolved spec."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def write_run_spec(path: Path, doc: dict, report: tuple[str, ...]) -> None:
    """Write the resolved spec of a resumable run (a sweep, an ablation) to ``path``. When the
    spec already there differs, first remove the old run's ``report`` files beside it: a run
    stopped before its own report must leave no report that the spec beside it did not make."""
    if path.exists() and _read_yaml(path) != yaml.safe_load(yaml.safe_dump(doc, sort_keys=False)):
        for name in report:
            (path.parent / name).unlink(missing_ok=True)
    with atomic_write(path) as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)


def _read_yaml(path: Path) -> Any:
    """A YAML file's content, or None when it cannot be read (a spec corrupted or half-edited
    by hand differs from any spec, so its report is removed, not trusted)."""
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
