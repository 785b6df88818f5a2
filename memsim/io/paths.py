"""Paths as outputs record them: relative to the output folder, never absolute machine paths,
so a results tree regenerated elsewhere is the same byte for byte."""

from __future__ import annotations

import os
from pathlib import Path


def _looks_like_path(value: str) -> bool:
    """Presets (``preset:NAME`` or a bare name) and generated sources are not file paths."""
    if ":" in value.split("/")[0] and not Path(value).is_absolute():
        return False
    return Path(value).is_absolute() or os.sep in value or Path(value).exists()


# the tree memsim runs from: its shipped device_data/ and experiments/ are found from here, not
# from the working directory or a spec's folder
ROOT = Path(__file__).resolve().parents[2]

SQLITE = "sqlite:///"  # an SQLite URL: the path after it is a file, relative or absolute


def _relative(path: str, relto: str | Path | None) -> str:
    base = Path(relto).absolute() if relto is not None else Path.cwd()
    return os.path.relpath(Path(path).absolute(), base)


def portable(value, relto: str | Path | None):
    """``value`` (a path, a list of paths, an ``sqlite:///PATH`` URL, or None) relative to
    ``relto``; absolute paths without ``relto`` become relative to the working directory."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [portable(v, relto) for v in value]
    text = str(value)
    file = text.removeprefix(SQLITE)
    if file != text:  # the URL's file, made or not yet (the first path part holds a ':')
        return text if file in ("", ":memory:") else SQLITE + _relative(file, relto)
    if not _looks_like_path(text):
        return text
    return _relative(text, relto)
