"""Sweep tasks on a Dask cluster (``--cluster local:N`` or ``--cluster tcp://host:8786``).

Fits and training batches become Dask tasks; each leaves its result in the sweep's store, which
must be on a path every worker sees under the same name (a shared filesystem: NFS, Lustre, …;
on one machine, anywhere); a task whose result is not there afterwards is reported as failed.
Store writes are atomic and the first copy is kept, so a task Dask runs twice (a retry, a
worker lost mid-task and its task rescheduled) changes nothing. Batches that compute on CUDA
ask for a ``GPU`` worker resource (``dask worker … --resources GPU=1``); CPU tasks go to any
worker. Workers need memsim installed (the same version) and the data it reads (MNIST wheel,
Fashion-MNIST package, device data under the same paths).
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from distributed import Client, LocalCluster, as_completed
from distributed.comm import connect
from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import MemsimError
from .execute import Executor, TaskFailure, one_line, task_labels

CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up with one line
WORKER_TIMEOUT = 120.0  # seconds to wait for a first worker (batch-queued workers start late)


class TorchThreads(WorkerPlugin):
    """torch threads per worker process, so N workers share the cores instead of each taking
    them all (applied to restarted workers too)."""

    def __init__(self, threads: int):
        self.threads = threads

    def setup(self, worker) -> None:
        import torch

        torch.set_num_threads(self.threads)


async def _identity(address: str, timeout: float) -> dict:
    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await asyncio.wait_for(comm.read(), timeout)
    finally:
        comm.abort()


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse, with one line and within ``timeout`` seconds, an address where no Dask
    scheduler answers (before a Client, which would retry and hang on close). The probe runs
    in a thread of its own, so it works under a running event loop (a notebook) too."""
    probe = asyncio.wait_for(_identity(address, timeout), timeout)
    try:
        with ThreadPoolExecutor(1) as pool:
            identity = pool.submit(asyncio.run, probe).result()
    except Exception as exc:  # noqa: BLE001 - refused, timed out, malformed, not Dask
        raise MemsimError(f"cannot reach a Dask scheduler ({one_line(exc)})", None,
                          address) from None
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        raise MemsimError("the server there is not a Dask scheduler", None, address)


class DaskExecutor(Executor):
    """Submits every call as a Dask task and collects them as they finish, cluster-wide.

    ``local:N`` starts N worker processes on this machine; on a CUDA machine each gets a
    ``GPU`` resource, so N batches share its one GPU."""

    def __init__(self, address: str):
        self.address = address
        self.client: Client | None = None
        self._cluster: LocalCluster | None = None

    def _connect(self) -> Client:
        if self.client is not None:
            return self.client
        try:
            if self.address.startswith("local:"):
                n = int(self.address.split(":", 1)[1])
                self._cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR, resources={"GPU": 1} if _cuda() else None)
                self.client = Client(self._cluster)
                self.client.register_plugin(TorchThreads(max(1, (os.cpu_count() or 1) // n)),
                                            name="memsim-torch-threads")
            else:
                check_scheduler(self.address)
                self.client = Client(self.address, timeout=f"{CONNECT_TIMEOUT}s")
        except MemsimError:
            raise
        except Exception as exc:  # noqa: BLE001 - a cluster that cannot start or be joined
            self.close()
            raise MemsimError(f"cannot start the Dask client ({one_line(exc)})", None,
                              self.address) from None
        return self.client

    def start(self, gpu: bool = False) -> None:
        client = self._connect()
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except TimeoutError:
            raise MemsimError(f"no worker joined the scheduler within {WORKER_TIMEOUT:.0f} s: "
                              "start some with `dask worker ADDRESS`", None,
                              self.address) from None
        if gpu:
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
            if not any(w.get("resources", {}).get("GPU") for w in workers):
                raise MemsimError("the batches compute on CUDA but no worker of the cluster "
                                  "has a GPU resource: start GPU workers with `dask worker "
                                  "ADDRESS --resources GPU=1`, or run with --compute cpu", None,
                                  self.address)

    def map(self, fn, calls, weights, advance, labels=None, gpu=False) -> list[TaskFailure]:
        if not calls:
            return []
        client = self._connect()
        labels = task_labels(labels, len(calls))
        resources = {"GPU": 1} if gpu else None
        futures = {client.submit(fn, *args, pure=False, resources=resources): (w, label)
                   for args, w, label in zip(calls, weights, labels, strict=True)}
        failures = []
        try:
            for fut in as_completed(futures):
                w, label = futures[fut]
                if fut.status == "error":
                    failures.append(TaskFailure(label, one_line(fut.exception())))
                elif fut.status != "finished":  # cancelled: the scheduler was lost
                    failures.append(TaskFailure(label, f"{fut.status} by the cluster"))
                advance(w)
                fut.release()
        except BaseException:  # Ctrl-C: what was not finished is not left running
            client.cancel([f for f in futures if not f.done()])
            raise
        return failures

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
