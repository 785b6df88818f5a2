"""Training grids: one network per device x update algorithm x network, each over several
seeds (one batched ensemble), to tell what the device costs from what the training algorithm
costs. ``experiments/attribution.yaml`` is one; ``make reproduce`` runs it.

A grid spec (YAML), relative paths relative to the spec file::

    name: attribution
    dataset: mnist
    subset: 10000                  # null: the whole training set
    seeds: [0, 1, 2]
    networks:                      # name -> network and training settings of a train spec
      mlp: {network: {kind: mlp, hidden: [100]}, training: {epochs: 10, lr: 0.1}}
    devices:                       # name -> a train spec's device: (float runs once)
      float: float
      tiox: {kind: table, path: ../device_data/xbtorch_tiox/optuna_exp_1.5V}
    algorithms:                    # name -> a train spec's training.algorithm
      sgd: sgd
      mixed: {kind: mixed_precision, verify: false}
    mapping: {kind: pair, policy: split, max_pulses: 8}
    out: ../results/attribution

Outputs: ``table.csv``/``table.md`` (per cell: accuracy of the final epoch and the mean of the
last k epochs, mean and standard deviation over seeds; pulses per weight; seconds),
``history.csv`` and one ``accuracy_<device>.png`` per non-float device (test accuracy by
epoch, mean over seeds with its range; float is the reference line in each).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MemsimError
from ..io.schema import Section, deep_merge, load_yaml
from ..io.storage import save_figure, write_csv, write_text
from ..io.tables import markdown
from .spec import parse_train_spec
from .trainer import train


@dataclass
class Grid:
    name: str
    cells: list[tuple[str, str, str, dict]] = field(default_factory=list)  # net, dev, algo, doc
    file: str | None = None
    out: str | None = None


def parse_grid(data: dict, file=None) -> Grid:
    """Every cell's train spec is built and checked here, before any training."""
    sec = Section(data, file)
    base = Path(file).parent if file is not None else None
    grid = Grid(sec.take("name", str, Path(file).stem if file else "grid"), file=file)
    common = {"dataset": sec.take("dataset", str, "mnist"),
              "subset": sec.take("subset", int, None),
              "seeds": sec.seed_list("seeds", [0, 1, 2]),
              "mapping": sec.take("mapping", dict, {})}
    some = {"check": bool, "check_msg": "must name at least one"}
    nets = sec.take("networks", dict, **some)
    devices = sec.take("devices", dict, **some)
    algos = sec.take("algorithms", dict, **some)
    grid.out = sec.out_dir(base)
    sec.done()
    for net_name, net in nets.items():
        ns = Section(net, file, f"networks.{net_name}")
        network, training = ns.take("network", dict), ns.take("training", dict, {})
        ns.done()
        for dev_name, dev in devices.items():
            try:
                is_float = parse_train_spec({"device": dev}, file).device.is_float
            except MemsimError as err:
                raise _in_grid(err, net_name, dev_name, "") from None
            for algo_name, algo in ({"-": "sgd"} if is_float else algos).items():
                doc = {**common, "name": f"{net_name}/{dev_name}/{algo_name}",
                       "network": network, "device": dev,
                       "training": {**training, "algorithm": algo}}
                try:  # refuse a bad cell now, at its place in the grid
                    parse_train_spec(doc, file)
                except MemsimError as err:
                    raise _in_grid(err, net_name, dev_name, algo_name) from None
                grid.cells.append((net_name, dev_name, algo_name, doc))
    return grid


def _in_grid(err: MemsimError, net: str, dev: str, algo: str) -> MemsimError:
    """An error of a cell's train spec, placed at the key of the grid that set it."""
    key = err.key()[0] if err.key() else ""
    for prefix, place in (("training.algorithm", f"algorithms.{algo}"),
                          ("device", f"devices.{dev}"),
                          ("training", f"networks.{net}.training"),
                          ("network", f"networks.{net}.network")):
        if key == prefix or key.startswith(prefix + "."):
            return err.moved(place + key[len(prefix):])
    return err


def load_grid(path) -> Grid:
    return parse_grid(load_yaml(path), path)


def run_grid(grid: Grid, compute: str = "cpu", overrides: dict | None = None, log=print
             ) -> pd.DataFrame:
    """Train every cell (its seeds as one ensemble); returns the history of all runs."""
    histories = []
    for net, dev, algo, doc in grid.cells:
        doc = deep_merge(doc, overrides or {})
        spec = parse_train_spec(doc, grid.file)
        t0 = time.perf_counter()
        result = train(spec, compute, progress=False, file=grid.file)
        h = result.history.assign(network=net, device=dev, algorithm=algo,
                                  report_last=spec.training.report_last)
        histories.append(h)
        acc = h[h["epoch"] == h["epoch"].max()]["test_acc"]
        log(f"{grid.name} {net}/{dev}/{algo}: {100 * acc.mean():.2f} % "
            f"(sd {100 * acc.std(ddof=1) if len(acc) > 1 else 0:.2f}) in "
            f"{time.perf_counter() - t0:.0f} s")
    return pd.concat(histories, ignore_index=True)


def grid_table(history: pd.DataFrame) -> pd.DataFrame:
    """Per cell: final and last-k accuracy (%) as mean and sd over seeds, pulses, seconds."""
    rows = []
    for (net, dev, algo), h in history.groupby(["network", "device", "algorithm"], sort=False):
        last_epoch = h["epoch"].max()
        k = int(min(h["report_last"].iloc[0], last_epoch))
        final = h[h["epoch"] == last_epoch].sort_values("member")
        lastk = h[h["epoch"] > last_epoch - k].groupby("member")["test_acc"].mean()
        pulses = final.reindex(columns=["pulses_per_weight_mean", "pulses_per_weight_max"])
        pulses = pulses.fillna(0.0)  # float networks send none
        rows.append({
            "network": net, "device": dev, "algorithm": algo, "seeds": len(final),
            "epochs": int(last_epoch),
            "final_acc_pct": 100 * final["test_acc"].mean(),
            "final_acc_sd": 100 * final["test_acc"].std(ddof=1) if len(final) > 1 else np.nan,
            "last_k": k,
            "last_k_acc_pct": 100 * lastk.mean(),
            "last_k_acc_sd": 100 * lastk.std(ddof=1) if len(lastk) > 1 else np.nan,
            "pulses_per_weight": float(pulses["pulses_per_weight_mean"].mean()),
            "pulses_per_weight_max": float(pulses["pulses_per_weight_max"].max()),
            "seconds": float(final["seconds"].max())})
    return pd.DataFrame(rows)


def grid_markdown(table: pd.DataFrame) -> str:
    t = table.copy()
    t["final acc (%)"] = [f"{m:.2f} ± {s:.2f}" for m, s in
                          zip(t["final_acc_pct"], t["final_acc_sd"], strict=True)]
    t["last-k acc (%)"] = [f"{m:.2f} ± {s:.2f}" for m, s in
                           zip(t["last_k_acc_pct"], t["last_k_acc_sd"], strict=True)]
    t["pulses/weight"] = [f"{v:.1f}" for v in t["pulses_per_weight"]]
    return markdown(t[["network", "device", "algorithm", "seeds", "epochs", "final acc (%)",
                       "last-k acc (%)", "last_k", "pulses/weight", "seconds"]], ".3g")


def plot_device(history: pd.DataFrame, device: str):
    import matplotlib.pyplot as plt

    nets = list(dict.fromkeys(history["network"]))
    fig, axes = plt.subplots(1, len(nets), figsize=(6.2 * len(nets), 4.2), squeeze=False)
    for ax, net in zip(axes[0], nets, strict=True):
        for label, dev in (("float", "float"), (None, device)):
            h = history[(history["network"] == net) & (history["device"] == dev)]
            for algo, g in h.groupby("algorithm", sort=False):
                by = g.groupby("epoch")["test_acc"]
                e = by.mean().index
                ls = ":" if dev == "float" else "-"
                (line,) = ax.plot(e, 100 * by.mean(), ls=ls, marker="o", ms=3,
                                  label=label or algo, color="k" if dev == "float" else None)
                ax.fill_between(e, 100 * by.min(), 100 * by.max(), alpha=0.15,
                                color=line.get_color())
        ax.set_title(f"{device}: {net}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy [%] (mean over seeds, band: range)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_grid_outputs(grid: Grid, history: pd.DataFrame, out: str | Path) -> pd.DataFrame:
    out = Path(out)
    table = grid_table(history)
    write_csv(out / "history.csv", history)
    write_csv(out / "table.csv", table)
    write_text(out / "table.md", grid_markdown(table))
    for dev in dict.fromkeys(history["device"]):
        if dev != "float":
            save_figure(out / f"accuracy_{dev}.png", plot_device(history, dev))
    return table
