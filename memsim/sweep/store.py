"""The store of a sweep: every finished fit cell and training batch as one JSON document under
``OUT/cache/CODE/{fits,batches}/KEY.json``, written atomically; a task that runs twice (a retry,
two workers given the same task) leaves the first copy. The executor writes it; the report
reads only it. CODE is memsim's code identity (:func:`~memsim._version.code_identity`): a
result computed by other code is computed anew, never served. It names the folder, not the
keys, because a batch's key also seeds its random draws, which must not move with the code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import code_identity
from ..io.storage import write_json
from ..models.formats import table_from_document
from ..models.table import JumpTable

KINDS = ("fits", "batches")


class SweepStore:
    """has / put / get of content-hashed results, by kind (``fits`` or ``batches``)."""

    def __init__(self, out: str | Path):
        # a path every worker sees (a shared filesystem for a distributed executor)
        self.root = Path(out).absolute() / "cache" / code_identity()

    def path(self, kind: str, key: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown store kind {kind!r}")
        return self.root / kind / f"{key}.json"

    def has(self, kind: str, key: str) -> bool:
        return self.path(kind, key).exists()

    def put(self, kind: str, key: str, doc: dict) -> None:
        """Store ``doc`` unless a copy is there already: the first finished copy of a task
        run twice is kept (the copies differ only in the wall time they record)."""
        if not self.has(kind, key):
            write_json(self.path(kind, key), doc)

    def get(self, kind: str, key: str) -> dict:
        return json.loads(self.path(kind, key).read_text())

    def table(self, fit_key: str) -> JumpTable:
        """The fitted table of a finished fit cell."""
        return table_from_document(self.get("fits", fit_key)["table"], fit_key)

    # -- what the report reads
    def member_rows(self, batches: list[dict]) -> pd.DataFrame:
        """One row per trained network of the given batches."""
        rows = []
        for b in batches:
            rows += self.get("batches", b["key"])["results"]
        return pd.DataFrame(rows)

    def fit_rows(self, fits: list[dict]) -> pd.DataFrame:
        """One row per fit cell: its device-level metrics, averaged over polarities and per
        polarity."""
        rows = []
        for f in fits:
            doc = self.get("fits", f["key"])
            per_pol = {}
            for r in doc["metrics"]:
                for k, v in r.items():
                    if k != "polarity":
                        per_pol[f"{k}_{r['polarity']}"] = v
            metrics = {k: float(np.mean([r[k] for r in doc["metrics"]]))
                       for k in doc["metrics"][0] if k != "polarity"}
            rows.append({"fit_key": f["key"], "truth": f["truth"], "method": f["method"]["name"],
                         "n": f["n"], "data_seed": f["data_seed"], "fit_seconds": doc["seconds"],
                         **metrics, **per_pol})
        return pd.DataFrame(rows)
