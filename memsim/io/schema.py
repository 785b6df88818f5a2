"""Strict reading of YAML specs: unknown keys and wrong types are refused with one line.

A :class:`Section` wraps one mapping of a spec. ``take`` reads a key with a type and optional
checks; ``done`` refuses any key that was not taken, suggesting the closest known key, so a
misspelt option never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import MemsimError

REQUIRED = object()


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader with two changes a spec needs: ``1e-3`` is a number (YAML 1.2
    reads it so; the 1.1 rules PyYAML follows want ``1.0e-3`` and would make it a string), and
    a key given twice in one mapping is refused instead of the last one silently winning."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _unique_mapping(loader: SpecLoader, node, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise MemsimError("file not found", path)
    if path.is_dir():
        raise MemsimError("is a directory, expected a YAML spec", path)
    try:
        data = yaml.load(path.read_text(), Loader=SpecLoader)  # noqa: S506 - a safe loader
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
        elif isinstance(value, float) and not math.isfinite(value):
            # no setting means "unbounded" or "undefined" by .inf / .nan (null does)
            raise self.error(key, f"must be a finite number, not {value!r}")
        elif isinstance(value, types):
            return value
        elif isinstance(value, int) and float in types:
            return float(value)
        raise self.error(key, f"must be {_type_name(types)}, not {value!r}")

    def number_list(self, key: str, default: Any = REQUIRED, *, integer: bool = False,
                    positive: bool = False, nonempty: bool = True, unique: bool = False
                    ) -> list:
        value = self.take(key, (list, int, float), default)
        if value is default and default is not REQUIRED:
            return value
        items = value if isinstance(value, list) else [value]
        kind = int if integer else (int, float)
        for v in items:
            if isinstance(v, bool) or not isinstance(v, kind):
                raise self.error(key, f"must be a list of {'integers' if integer else 'numbers'}"
                                      f", found {v!r}")
            if not math.isfinite(v):
                raise self.error(key, f"values must be finite, found {v!r}")
            if positive and not v > 0:
                raise self.error(key, f"values must be positive, found {v!r}")
        if nonempty and not items:
            raise self.error(key, "must not be empty")
        if unique and len(set(items)) != len(items):  # a repeat would count one run twice
            raise self.error(key, f"repeats a value: {items}")
        return list(items)

    def out_dir(self, base: str | Path | None, key: str = "out") -> str | None:
        """The output folder under ``key``, relative to ``base`` (the spec's folder) unless
        absolute; refused at once where no folder can be made there (a file in the way, a
        folder not writable), not after the run."""
        value = self.take(key, str, None)
        if value is None:
            return None
        path = Path(value) if base is None or Path(value).is_absolute() else Path(base) / value
        problem = out_dir_problem(path)
        if problem:
            raise self.error(key, problem)
        return str(path)

    def seed(self, key: str = "seed", default: Any = 0) -> int:
        """A seed: an integer >= 0 (every stream memsim derives counts up from it)."""
        return self.take(key, int, default, check=lambda v: v >= 0, check_msg="must be >= 0")

    def seed_list(self, key: str = "seeds", default: Any = REQUIRED) -> list[int]:
        value = self.number_list(key, default, integer=True, unique=True)
        if any(v < 0 for v in value):
            raise self.error(key, f"must be >= 0, found {min(value)}")
        return value

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


def out_dir_problem(path: str | Path) -> str | None:
    """Why no output folder can be made at ``path``, or None: the nearest part of it that
    exists must be a folder this process can write into."""
    path = Path(path).absolute()
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                return f"{part} is a file, not a folder"
            if not os.access(part, os.W_OK | os.X_OK):
                return f"cannot write into the folder {part}"
            return None
    return None


def deep_merge(raw: dict, over: dict) -> dict:
    """``raw`` with ``over`` written over it, mappings merged key by key (spec overrides)."""
    out = dict(raw)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


def _as_tuple(t) -> tuple:
    return t if isinstance(t, tuple) else (t,)
