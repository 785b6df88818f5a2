"""Device-in-the-loop training on MNIST subsets: devices behave as devices should."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import TIOX, run_cli

from memsim.io.datasets import load_dataset
from memsim.train.spec import parse_train_spec
from memsim.train.trainer import Trainer, prepare

BASE = {"network": {"kind": "mlp", "hidden": [64]}, "subset": 5000, "seed": 3,
        "training": {"epochs": 2, "batch": 64, "lr": 0.1}}


def _run(extra: dict, compute: str = "cpu"):
    spec = parse_train_spec({**BASE, **extra})
    return Trainer(spec, prepare(spec, compute), compute).run(progress=False)


def _final(history):
    return history[history["epoch"] == history["epoch"].max()]["test_acc"].to_numpy()


def test_mnist_is_the_original_split():
    data = load_dataset("mnist")
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert data.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) < 1.0


@pytest.fixture(scope="module")
def float_acc():
    return _final(_run({"device": "float", "seeds": [0, 1, 2]}))


def test_ideal_fine_step_device_matches_float(float_acc):
    """A fine, noise-free device whose per-step pulse cap never binds trains like float, seed by
    seed (same start, same data order)."""
    ideal = _final(_run({"device": {"kind": "ideal", "levels": 4000},
                         "mapping": {"max_pulses": 127, "w_max": 1.0}, "seeds": [0, 1, 2]}))
    assert abs(ideal - float_acc).max() < 0.025  # trajectories drift apart a little
    assert abs(ideal.mean() - float_acc.mean()) < 0.01
    assert float_acc.mean() > 0.75


def test_coarse_noisy_device_is_measurably_worse(float_acc):
    coarse = _final(_run({"device": {"kind": "neurosim", "levels": 20, "c2c": 0.05,
                                     "nonlinearity_set": 3, "nonlinearity_reset": 3}}))[0]
    assert coarse < float_acc.mean() - 0.03


def test_table_device_trains_and_counts_pulses():
    h = _run({"device": {"kind": "table", "path": str(TIOX)}})
    assert _final(h)[0] > 0.4
    assert h["pulses"].iloc[-1] > 1000


def test_bnn_trains_well_above_chance():
    h = _run({"network": {"kind": "bnn", "hidden": [256]}, "device": "float",
              "training": {"epochs": 2, "batch": 100, "optimizer": "adam", "lr": 0.005}})
    assert _final(h)[0] > 0.75
    hd = _run({"network": {"kind": "bnn", "hidden": [256]},
               "device": {"kind": "table", "path": str(TIOX)},
               "mapping": {"policy": "reset", "refresh_every": 20},
               "training": {"epochs": 1, "batch": 100, "optimizer": "adam", "lr": 0.005}})
    assert _final(hd)[0] > 0.6


def test_same_seed_same_numbers_and_seeds_differ():
    dev = {"device": {"kind": "table", "path": str(TIOX)},
           "training": {"epochs": 1, "batch": 64, "lr": 0.1}}
    a, b = _run(dev), _run(dev)
    assert a["test_acc"].tolist() == b["test_acc"].tolist()
    assert a["pulses"].tolist() == b["pulses"].tolist()
    c = _run({**dev, "seed": 4})
    assert c["test_acc"].tolist() != a["test_acc"].tolist()


def test_ensemble_members_start_like_single_runs():
    spec = parse_train_spec({**BASE, "device": "float", "seeds": [3, 5]})
    data = prepare(spec)
    ens = Trainer(spec, data)
    single = Trainer(parse_train_spec({**BASE, "device": "float", "seed": 5}), data)
    for layer in range(2):
        assert torch.equal(ens.net.syn.layer(layer)[1], single.net.syn.layer(layer)[0])
    h_ens = ens.run(1, progress=False)
    h_one = single.run(1, progress=False)
    member = h_ens[h_ens["seed"] == 5]["test_acc"].iloc[0]
    assert member == pytest.approx(h_one["test_acc"].iloc[0], abs=0.002)


@pytest.mark.cuda
def test_cuda_training_runs():
    h = _run({"device": {"kind": "table", "path": str(TIOX)},
              "training": {"epochs": 1, "batch": 64, "lr": 0.1}}, compute="cuda")
    assert _final(h)[0] > 0.3


def test_train_cli_writes_outputs(runner, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: t\nnetwork: {{hidden: [32]}}\ndevice: {{kind: table, path: {TIOX}}}\n"
                    "training: {epochs: 3}\n")
    out = tmp_path / "out"
    result = run_cli(runner, ["train", spec, "--epochs", "1", "--subset", "2000",
                              "--out", out, "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for name in ("history.csv", "summary.csv", "spec.yaml", "accuracy.png"):
        assert (out / name).exists()
    assert "table:optuna_exp_1.5V" in result.output
    assert "epoch 1/1" not in result.output  # --no-progress is quiet


def test_train_cli_logs_each_epoch_where_no_bar_can_show(runner, tmp_path):
    """Run into a log file (stderr not a terminal), a long training says how far it is."""
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: t\nnetwork: {{hidden: [16]}}\ndevice: {{kind: table, path: {TIOX}}}\n"
                    "seeds: [0, 1]\ntraining: {epochs: 2}\n")
    result = run_cli(runner, ["train", spec, "--subset", "500", "--out", tmp_path / "o",
                              "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"]
    assert lines[-1].count("%") == 1 and lines[-1].count(",") == 1  # one figure per seed


@pytest.mark.parametrize("body, expected", [
    ("device: {kind: memristor}\n", "key 'device.kind': must be one of"),
    ("device: {kind: table, path: nowhere/table.json}\n", "file not found"),
    ("device: missing_table_prefix\n", "no such table file"),
    ("network: {sizes: [785, 100, 10]}\n", "input size 785 does not fit mnist"),
    ("network: {sizes: [784, 100, 7]}\n", "output size 7 does not fit mnist"),
    ("training: {lr: -0.1}\n", "key 'training.lr': must be positive"),
    ("training: {epoch: 3}\n", "unknown key (did you mean 'epochs'?)"),
    ("network: {kind: transformer}\n", "key 'network.kind': must be one of"),
    ("network: {kind: mlp, conv: [8]}\n", "has no conv layers"),
    ("network: {kind: bcnn, conv: [pool, 8]}\n", "'pool' must follow a conv layer"),
    ("network: {kind: bcnn, conv: [8, 0]}\n", "entries are channel counts"),
    ("network: {kind: cnn, conv: [4, pool, 4, pool, 4, pool, 4, pool, 4, pool]}\n",
     "too many pools"),
    ("network: {kind: cnn}\ntraining: {algorithm: pulse_trains}\n", "linear layers only"),
    ("mapping: {policy: sideways}\n", "key 'mapping.policy'"),
    ("periphery: {out_noise: -0.1}\n", "key 'periphery.out_noise': must be >= 0"),
    ("periphery: {inp_bits: 1}\n", "key 'periphery.inp_bits': must be 0 or 2..24"),
    ("periphery: {adc_bits: 8}\n", "key 'periphery.adc_bits': unknown key"),
    ("periphery: ideal\n", "key 'periphery': must be kit, none or a mapping"),
    ("periphery: {bound_management: shift}\n", "key 'periphery.bound_management'"),
    ("network: {kind: bnn}\nperiphery: kit\n", "linear layers of an mlp only"),
])
def test_bad_train_specs_fail_before_training(runner, tmp_path, body, expected):
    spec = tmp_path / "bad.yaml"
    spec.write_text(body)
    result = run_cli(runner, ["train", spec, "--out", tmp_path / "o", "--no-progress"])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and expected in line, line
    assert not (tmp_path / "o").exists()


def test_fashion_mnist_loads_or_names_its_package(tmp_path, monkeypatch):
    from memsim.errors import MemsimError
    from memsim.io import datasets

    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path / "cache"))
    if datasets.FASHION_DIR.exists():
        data = datasets.load_dataset("fashion", subset=100)
        assert data.x_test.shape == (10000, 784) and data.y_test[:3].tolist() == [9, 2, 1]
    monkeypatch.setattr(datasets, "FASHION_DIR", tmp_path / "absent")
    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(MemsimError, match="dataset-fashion-mnist"):
        datasets.load_dataset("fashion")


def _write_idx(path, array):
    import gzip

    head = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(head + array.astype(np.uint8).tobytes())


def test_a_dataset_replaced_in_place_is_read_again_not_served_from_the_cache(tmp_path,
                                                                             monkeypatch):
    from memsim.io import datasets

    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "FASHION_DIR", tmp_path)
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    for part in ("train", "t10k"):
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", np.array([9, 2, 1]))
    assert datasets.load_arrays("fashion")["y_test"].tolist() == [9, 2, 1]
    assert datasets.load_arrays("fashion")["y_test"].tolist() == [9, 2, 1]  # from the cache
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    _write_idx(labels, np.array([0, 3, 2]))
    stamp = labels.stat().st_mtime_ns + 10**9  # a replaced file: a new time, here forced
    os.utime(labels, ns=(stamp, stamp))
    assert datasets.load_arrays("fashion")["y_test"].tolist() == [0, 3, 2]

def test_a_gpu_run_asks_cudnn_for_full_fp32_and_determinism():
    """TF32 convolutions (cuDNN's default) would round away the low mantissa bits inference
    reads errors into; a CPU run leaves the process's flags alone."""
    from memsim.train.trainer import exact_cuda

    conv = torch.backends.cudnn.conv
    saved = conv.fp32_precision, torch.backends.cudnn.deterministic
    try:
        conv.fp32_precision, torch.backends.cudnn.deterministic = "tf32", False
        exact_cuda("cpu")
        assert (conv.fp32_precision, torch.backends.cudnn.deterministic) == ("tf32", False)
        exact_cuda("cuda:0")
        assert (conv.fp32_precision, torch.backends.cudnn.deterministic) == ("ieee", True)
    finally:
        conv.fp32_precision, torch.backends.cudnn.deterministic = saved
