"""The plan of a sweep: its fit cells and training batches, in a fixed order, each keyed by a
content hash of everything that determines its result. Batches are composed from the plan
alone, never from what the store holds, so an interrupted sweep resumes to exactly the tables
an uninterrupted one writes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .._version import __version__
from ..devices.registry import device_for_model
from ..io.storage import sha256_json
from ..seeds import SCHEME
from .spec import CONTROL, TABLE_CONTROL, MethodSpec, SweepSpec, TruthSpec


def _fit_key(truth: TruthSpec, n: int, method: MethodSpec, data_seed: int) -> str:
    return sha256_json({"truth": truth.ident, "sampling": truth.sampling, "n": n,
                        "method": method.method, "params": method.params,
                        "data_seed": data_seed, "memsim": __version__,
                        "streams": SCHEME})[:20]


@dataclass
class Member:
    truth: str
    network: str
    role: str  # "fit" (a fitted table or the truth control) or "reference" (the truth)
    method: str
    n: int
    data_seed: int
    train_seed: int
    fit_key: str  # "" for the reference
    control: bool = False  # the "fitted" model is the truth itself (or its fine tabulation)
    replicate: int = 0  # reference runs: independent device noise, same seed
    group: str = ""  # which reference runs pair with it: the table-path control has its own

    def key(self) -> str:
        return sha256_json(asdict(self))[:20]


def plan(spec: SweepSpec, models: dict, compute: str = "cpu") -> tuple[list[dict], list[dict]]:
    """The fit cells and the training batches of a sweep, in a fixed order. Batch keys include
    the compute device: CPU and CUDA draw from different random streams."""
    fits = []
    for t in spec.truths:
        for n in spec.n:
            for m in spec.methods:
                for d in spec.data_seeds:
                    fits.append({"key": _fit_key(t, n, m, d), "truth": t.name, "ref": t.ref,
                                 "sampling": t.sampling, "n": n, "method": m.to_doc(),
                                 "data_seed": d})
    fit_keys = {(f["truth"], f["n"], f["method"]["name"], f["data_seed"]): f["key"]
                for f in fits}
    batches = []
    for t in spec.truths:
        truth_kind = device_for_model(models[t.name]).kind
        for net_name in [n.name for n in spec.networks]:
            # fitted tables first, then the truth's own kind (its reference runs and control)
            groups: dict[str, list[Member]] = {"table": [], truth_kind: []}
            ref_groups = [""] + ([TABLE_CONTROL] if any(
                m.method == TABLE_CONTROL for m in spec.methods) else [])
            for group in ref_groups:
                for s in spec.train_seeds:
                    for r in range(spec.reference_replicates):
                        groups[truth_kind].append(Member(t.name, net_name, "reference", "", 0,
                                                         0, s, "", replicate=r, group=group))
            for m in spec.methods:
                control = m.method in (CONTROL, TABLE_CONTROL)
                kind = truth_kind if m.method == CONTROL else "table"
                group = TABLE_CONTROL if m.method == TABLE_CONTROL else ""
                for n in spec.n:
                    for d in spec.data_seeds:
                        key = fit_keys[(t.name, n, m.name, d)]
                        for s in spec.train_seeds:
                            groups[kind].append(Member(t.name, net_name, "fit", m.name, n, d,
                                                       s, key, control, group=group))
            for kind, members in groups.items():
                for i in range(0, len(members), spec.ensemble):
                    chunk = members[i:i + spec.ensemble]
                    batches.append({"truth": t.name, "ref": t.ref, "sampling": t.sampling,
                                    "network": net_name, "kind": kind,
                                    "members": [asdict(mb) for mb in chunk]})
    for b in batches:
        b["key"] = sha256_json({"members": [Member(**m).key() for m in b["members"]],
                                "ident": [t.ident for t in spec.truths if t.name == b["truth"]],
                                "sampling": b["sampling"],
                                "settings": _train_settings(spec, b["network"]),
                                "compute": compute.split(":")[0], "memsim": __version__,
                                "streams": SCHEME})[:20]
    return fits, batches


def _train_settings(spec: SweepSpec, network: str) -> dict:
    net = {n.name: n for n in spec.networks}[network]
    return {"dataset": spec.dataset, "subset": spec.subset, "network": net.resolved(),
            "mapping": asdict(spec.mapping), "dw_min": spec.dw_min}

