"""Strict reading of YAML specs: unknown keys and wrong types are refused with one line.

A :class:`Section` wraps one mapping of a spec. ``take`` reads a key with a type and optional
checks; ``done`` refuses any key that was not taken, suggesting the closest known key, so a
misspelt option never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import MemsimError

REQUIRED = object()


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise MemsimError("file not found", path)
    if path.is_dir():
        raise MemsimError("is a directory, expected a YAML spec", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise MemsimError(f"invalid YAML ({problem})", path, where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MemsimError(f"cannot read file ({exc})", path) from None
    if data is None:
        raise MemsimError("spec is empty", path)
    if not isinstance(data, dict):
        raise MemsimError("spec must be a mapping of keys to values", path)
    return data


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            list: "a list", dict: "a mapping"}.get(t, t.__name__)


class Section:
    """One mapping of a spec, read key by key."""

    def __init__(self, data: Any, file: str | Path | None, where: str = ""):
        self.file = None if file is None else str(file)
        self.where = where
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise MemsimError(f"must be a mapping, not {type(data).__name__}", self.file,
                              where or None)
        self.data = data
        self.taken: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, problem: str) -> MemsimError:
        return MemsimError(problem, self.file, f"key {self.path(key)!r}")

    def has(self, key: str) -> bool:
        """Whether the spec gives ``key`` (a null value counts as not given)."""
        return self.data.get(key) is not None

    def take(self, key: str, types=None, default: Any = REQUIRED, *,
             choices: Sequence | None = None, check: Callable[[Any], bool] | None = None,
             check_msg: str = "") -> Any:
        self.taken.add(key)
        if key not in self.data or self.data[key] is None:
            if default is REQUIRED:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        if types is not None:
            value = self._coerce(key, value, _as_tuple(types))
        if choices is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(map(str, choices))}, not {value!r}")
        if check is not None and not check(value):
            raise self.error(key, check_msg or f"invalid value {value!r}")
        return value

    def _coerce(self, key: str, value: Any, types: tuple) -> Any:
        """Type check; bools are never numbers, integers pass where numbers are expected."""
        if isinstance(value, bool):
            if bool in types:
                return value
        elif isinstance(value, types):
            return value
        elif isinstance(value, int) and float in types:
            return float(value)
        raise self.error(key, f"must be {_type_name(types)}, not {value!r}")

    def number_list(self, key: str, default: Any = REQUIRED, *, integer: bool = False,
                    positive: bool = False, nonempty: bool = True) -> list:
        value = self.take(key, (list, int, float), default)
        if value is default and default is not REQUIRED:
            return value
        items = value if isinstance(value, list) else [value]
        kind = int if integer else (int, float)
        for v in items:
            if isinstance(v, bool) or not isinstance(v, kind):
                raise self.error(key, f"must be a list of {'integers' if integer else 'numbers'}"
                                      f", found {v!r}")
            if positive and not v > 0:
                raise self.error(key, f"values must be positive, found {v!r}")
        if nonempty and not items:
            raise self.error(key, "must not be empty")
        return list(items)

    def sub(self, key: str, default: Any = REQUIRED) -> Section:
        value = self.take(key, dict, default)
        return Section(value, self.file, self.path(key))

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.taken]
        if unknown:
            key = unknown[0]
            near = difflib.get_close_matches(str(key), sorted(self.taken), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            allowed = ", ".join(sorted(self.taken))
            raise MemsimError(f"unknown key{hint}; allowed here: {allowed}", self.file,
                              f"key {self.path(str(key))!r}")


def deep_merge(raw: dict, over: dict) -> dict:
    """``raw`` with ``over`` written over it, mappings merged key by key (spec overrides)."""
    out = dict(raw)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


def _as_tuple(t) -> tuple:
    return t if isinstance(t, tuple) else (t,)
