"""One resolver for every model reference: a preset name (or ``preset:NAME``), a synthetic
device YAML, or a table file in any format memsim reads. ``memsim fit``, ``memsim train`` and
``memsim bias-sweep`` all resolve references here, so what works in one spec works in all.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MemsimError
from ..io.storage import sha256_file, sha256_json
from .base import DeviceModel
from .formats import (
    crosssim_dir,
    is_crosssim,
    read_crosssim,
    read_table,
    read_xbtorch,
    xbtorch_prefix,
)
from .synthetic import PRESET_DIR, load_synthetic, preset_names


def is_preset(ref: str) -> bool:
    return ref.startswith("preset:") or ref in preset_names()


def resolve_ref(ref: str, base: Path | None) -> str:
    """``ref`` with a relative path taken relative to ``base`` (a spec's folder); presets and
    absolute paths unchanged."""
    if base is None or is_preset(ref) or Path(ref).is_absolute():
        return ref
    return str(Path(base) / ref)


def ref_name(refs: list[str]) -> str:
    """A readable name for outputs: the file name without its extension, or the folder of
    several data files."""
    if len(refs) > 1:
        return Path(refs[0]).resolve().parent.name
    name = Path(refs[0]).name
    for ext in (".csv", ".tsv", ".txt", ".json", ".yaml", ".yml"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name.removeprefix("preset:")


def model_ident(ref: str) -> str:
    """A content hash of a model reference: its file(s), or the preset's spec; a changed file
    changes it, wherever the file lies."""
    path = Path(ref)
    if is_preset(ref):
        return sha256_file(PRESET_DIR / f"{ref.removeprefix('preset:')}.yaml")
    path = crosssim_dir(path)  # one file of a LUT names the whole folder
    if path.is_file():
        return sha256_file(path)
    files = sorted(path.glob("*")) if path.is_dir() else sorted(
        path.parent.glob(path.name + "_*"))
    return sha256_json([sha256_file(f) for f in files if f.is_file()])


def load_model(ref: str | Path, unit: str = "S") -> DeviceModel:
    """A device model from a preset name, a YAML device spec or any table file memsim reads."""
    text = str(ref)
    if text.startswith("preset:") or text in preset_names():
        return load_synthetic(text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        return load_synthetic(path)
    if path.suffix == ".json":
        return read_table(path)
    if is_crosssim(path):
        return read_crosssim(path, unit)
    prefix = xbtorch_prefix(path)
    if Path(f"{prefix}_set_cdf.txt").exists():
        return read_xbtorch(prefix, unit)
    if path.is_dir():
        found = sorted({str(xbtorch_prefix(p)) for p in path.glob("*_set_cdf.txt")})
        if len(found) == 1:
            return read_xbtorch(found[0], unit)
        if found:
            names = ", ".join(Path(f).name for f in found)
            raise MemsimError(f"holds several XBTorch tables; name one of: {names}", path)
    if not path.exists() and not Path(f"{prefix}_set_cdf.txt").exists():
        raise MemsimError("no such table file, preset or XBTorch prefix "
                          f"(presets: {', '.join(preset_names())})", path)
    raise MemsimError("not a table memsim can read (memsim .json, XBTorch triplet, "
                      "CrossSim LUT folder, or a synthetic-device .yaml)", path)
