"""Sweeps and ablations on a Dask cluster: a real LocalCluster of 2 worker processes gives the
local executor's tables byte for byte (Optuna fits kept in a shared SQLite study included),
survives a killed worker, resumes after an interrupted client, and reports a failing task while
the rest of the sweep goes on; a bad address is refused in one line."""

from __future__ import annotations

import http.server
import os
import signal
import threading
import time

import pytest
import yaml
from conftest import run_cli
from distributed import Client, LocalCluster
from test_ablate import _spec_file as ablation_spec_file
from test_sweep import SMALL

from memsim.errors import MemsimError
from memsim.sweep import parse_sweep_spec, run_sweep
from memsim.sweep import run as sweep_run
from memsim.sweep.dask_executor import DaskExecutor, TorchThreads
from memsim.sweep.execute import LocalExecutor
from memsim.sweep.executors import executor_for, parse_cluster
from memsim.sweep.store import SweepStore
from memsim.sweep.tasks import run_fit_cell

TABLES = ("runs.csv", "bias.csv", "bias.md", "device_metrics.csv", "metric_bias.csv",
          "unpredictability.csv", "unpredictability.md")
OPTUNA = {"name": "optuna", "method": "optuna", "trials": 6}
# more batches than SMALL (6 seeds in pairs), so a worker can be killed while work remains
WIDER = {**SMALL, "train_seeds": [0, 1, 2, 3, 4, 5], "ensemble": 2, "subset": 3000,
         "methods": [*SMALL["methods"], OPTUNA]}
BATCHES = 18  # of WIDER: 3 methods' tables and the truth's reference runs, per N, in pairs


@pytest.fixture(scope="module")
def cluster():
    """A running scheduler with 2 worker processes, reached by its address as a remote one
    would be (``--cluster tcp://…``); its nannies restart a killed worker."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as lc, Client(lc) as client:
        client.register_plugin(TorchThreads(1), name="memsim-torch-threads")
        yield lc.scheduler_address


def _sweep(tmp_path, name, spec=None, executor=None, **changes):
    spec = parse_sweep_spec({**(spec or SMALL), **changes, "out": str(tmp_path / name)})
    return run_sweep(spec, "cpu", progress=False, log=lambda m: None, executor=executor)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The wider sweep on the local executor (in this process, Optuna studies in memory)."""
    return _sweep(tmp_path_factory.mktemp("local"), "local", WIDER)


def same_tables(a, b):
    for name in TABLES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_cli_on_a_local_cluster_gives_the_local_executors_tables(runner, reference, tmp_path):
    """`memsim bias-sweep SPEC --cluster local:2`, the Optuna studies in a SQLite file every
    worker writes to (a path relative to the spec)."""
    methods = [*SMALL["methods"], {**OPTUNA, "storage": "studies/optuna.db"}]
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({**WIDER, "methods": methods, "out": "out"}))
    result = run_cli(runner, ["bias-sweep", spec, "--cluster", "local:2", "--no-progress",
                              "--compute", "cpu"])
    assert result.exit_code == 0, result.output
    same_tables(reference, tmp_path / "out")
    import optuna

    studies = optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'studies' / 'optuna.db'}")
    assert len(studies) == 4  # 2 N x 2 polarities, each run to its 6 trials
    assert all(s.n_trials == 6 for s in studies)


def running_a_batch(dask_worker) -> bool:
    """On a worker: is it executing a training batch right now?"""
    return any("run_batch" in str(ts.key) for ts in dask_worker.state.executing)


def test_a_killed_worker_is_replaced_and_the_tables_do_not_change(cluster, reference,
                                                                  tmp_path):
    ex = DaskExecutor(cluster)
    killed = {}

    def kill_a_worker_mid_batch():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            client = ex.client
            if client is not None:
                busy = [w for w, yes in client.run(running_a_batch).items() if yes]
                if busy:
                    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                    os.kill(pid, signal.SIGKILL)  # mid-task: Dask must reschedule it
                    killed["worker"] = busy[0]
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker_mid_batch, daemon=True)
    killer.start()
    out = _sweep(tmp_path, "killed", WIDER, executor=ex)
    killer.join(timeout=5)
    assert killed.get("worker"), "no worker was killed while it ran a batch"
    same_tables(reference, out)


def test_an_interrupted_client_resumes_without_recomputing(cluster, reference, tmp_path,
                                                           monkeypatch):
    class Interrupted(DaskExecutor):
        def map(self, fn, calls, weights, advance, labels=None, gpu=False):
            seen = {"n": 0}

            def count(w):
                seen["n"] += 1
                if fn.__name__ == "run_batch" and seen["n"] == 3:
                    raise KeyboardInterrupt  # Ctrl-C while the cluster works
                advance(w)

            return super().map(fn, calls, weights, count, labels, gpu)

    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path, "resumed", WIDER, executor=Interrupted(cluster))
    batches = SweepStore(tmp_path / "resumed").root / "batches"
    done = {p.name: p.stat().st_mtime_ns for p in batches.glob("*.json")}
    assert 3 <= len(done) < BATCHES and not (tmp_path / "resumed" / "bias.csv").exists()

    submitted = []
    real_map = LocalExecutor.map

    def counting(self, fn, calls, *args, **kwargs):
        submitted.extend(c[0]["key"] for c in calls)
        return real_map(self, fn, calls, *args, **kwargs)

    monkeypatch.setattr(LocalExecutor, "map", counting)
    out = _sweep(tmp_path, "resumed", WIDER)
    assert not {k + ".json" for k in submitted} & set(done)  # finished cells not rerun
    assert {p.name: p.stat().st_mtime_ns for p in batches.glob("*.json")
            if p.name in done} == done
    same_tables(reference, out)


def failing_fit(cell, store):
    """run_fit_cell, except for the N = 400 cells (a task that raises on a worker)."""
    if cell["n"] == 400:
        raise ValueError("disk full\nsecond line")
    return run_fit_cell(cell, store)


@pytest.mark.parametrize("on_cluster", [False, True])
def test_a_failing_task_is_reported_and_the_rest_goes_on(cluster, tmp_path, monkeypatch,
                                                         on_cluster):
    monkeypatch.setattr(sweep_run, "run_fit_cell", failing_fit)
    logged = []
    spec = parse_sweep_spec({**SMALL, "out": str(tmp_path / "f"),
                             "cluster": cluster if on_cluster else None})
    with pytest.raises(MemsimError) as err:
        run_sweep(spec, "cpu", progress=False, log=logged.append)
    message = str(err.value)
    assert "2 of 10 tasks failed" in message and "N=400" in message
    assert "ValueError: disk full" in message and "\n" not in message
    assert any(line.startswith("failed: fit softbounds") for line in logged)
    assert len(list((SweepStore(tmp_path / "f").root / "fits").glob("*.json"))) == 2
    assert len(list((SweepStore(tmp_path / "f").root / "batches").glob("*.json"))) == 3
    assert not (tmp_path / "f" / "bias.csv").exists()

    monkeypatch.setattr(sweep_run, "run_fit_cell", run_fit_cell)  # the cause fixed: a rerun
    out = run_sweep(spec, "cpu", progress=False, log=lambda m: None)  # completes the rest
    assert (out / "bias.csv").exists()


def test_an_ablation_on_the_cluster_gives_the_local_tables(runner, cluster, tmp_path):
    outs = {}
    for name, flags in (("local", []), ("dask", ["--cluster", cluster])):
        (tmp_path / name).mkdir()
        path = ablation_spec_file(tmp_path / name)
        result = run_cli(runner, ["ablate", path, "--no-progress", "--compute", "cpu", *flags])
        assert result.exit_code == 0, result.output
        outs[name] = path.parent / "out"
    for table in ("runs.csv", "ablation.csv", "ranking.csv"):
        assert (outs["local"] / table).read_bytes() == (outs["dask"] / table).read_bytes()


def test_results_a_worker_keeps_on_its_own_disk_are_failures(cluster, tmp_path, monkeypatch):
    """Workers that do not see the output folder (not a shared filesystem): their tasks
    finish, but the sweep must say what is missing instead of reporting from nothing."""
    monkeypatch.setattr(sweep_run, "run_fit_cell", lambda cell, store: None)  # stores nothing
    spec = parse_sweep_spec({**SMALL, "out": str(tmp_path / "f"), "cluster": cluster})
    with pytest.raises(MemsimError, match="4 of 10 tasks failed, 4 batches skipped .*"
                                          "filesystem every worker mounts"):
        run_sweep(spec, "cpu", progress=False, log=lambda m: None)
    assert not (tmp_path / "f" / "bias.csv").exists()


def test_cuda_batches_need_a_gpu_worker(cluster):
    with DaskExecutor(cluster) as ex, pytest.raises(MemsimError, match="GPU resource"):
        ex.start(gpu=True)


def test_cluster_addresses_are_checked():
    assert parse_cluster("local:2") == "local:2"
    assert parse_cluster("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    assert isinstance(executor_for(None, 1), LocalExecutor)
    for bad in ("local:0", "local:x", "somehost", "tls://h:8786", "tcp://"):
        with pytest.raises(MemsimError, match="cluster"):
            parse_cluster(bad)
    with pytest.raises(MemsimError, match="key 'cluster'"):
        parse_sweep_spec({**SMALL, "cluster": "local:-1"})


@pytest.fixture()
def http_server():
    """A server that is not a Dask scheduler (it answers Dask's handshake with HTTP)."""
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "tcp://127.0.0.1:notaport",
                                     "foo://somewhere", "http"])
def test_a_bad_or_unreachable_scheduler_is_one_line_and_exit_2(runner, tmp_path, address,
                                                               http_server):
    address = http_server if address == "http" else address
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({**SMALL, "out": "out"}))
    t0 = time.monotonic()
    result = run_cli(runner, ["bias-sweep", spec, "--cluster", address, "--no-progress"])
    assert time.monotonic() - t0 < 20  # the connect timeout (10 s), not a hang
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Dask scheduler" in line and address in line, line
    assert not (tmp_path / "out").exists()  # nothing written
