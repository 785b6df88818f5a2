"""Shared fixtures: paths to the shipped device data and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "device_data"
TIOX = DATA / "xbtorch_tiox" / "optuna_exp_1.5V"
XBSYN = DATA / "xbtorch_synthetic"
RAMPS = [DATA / "crosssim_ramps" / "set.csv", DATA / "crosssim_ramps" / "reset.csv"]
GONG = DATA / "aihwkit_gong" / "gong_et_al.csv"
ENODE = DATA / "crosssim_enode_lut"

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)


@pytest.fixture
def runner():
    return CliRunner()


def run_cli(runner, args):
    from memsim.cli import main

    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
