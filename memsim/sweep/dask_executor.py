"""Sweep tasks on a Dask cluster (``--cluster local:N`` or ``--cluster tcp://host:8786``).

Fits and training batches become Dask tasks; each leaves its result in the sweep's store, which
must be on a path every worker sees under the same name (a shared filesystem: NFS, Lustre, …;
on one machine, anywhere). Store writes are atomic renames of content-hashed files, so a task
Dask runs twice (a retry, a worker lost mid-task and its task rescheduled) writes the same
bytes again. Batches that compute on CUDA ask for a ``GPU`` worker resource (``dask worker …
--resources GPU=1``); CPU tasks go to any worker. Workers need memsim installed (the same
version) and the data it reads (MNIST wheel, Fashion-MNIST package, device data under the same
paths).
"""

from __future__ import annotations

import asyncio
import logging
import os

from distributed import Client, LocalCluster, as_completed
from distributed.comm import connect
from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import MemsimError
from .execute import Executor, TaskFailure, one_line

CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up with one line


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
    scheduler answers (before a Client, which would retry and hang on close)."""
    try:
        identity = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
    except Exception as exc:  # noqa: BLE001 - refused, timed out, malformed, not Dask
        raise MemsimError(f"cannot reach a Dask scheduler ({one_line(exc)})", None,
                          address) from None
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        raise MemsimError("the server there is not a Dask scheduler", None, address)


class DaskExecutor(Executor):
    """Submits every call as a Dask task and collects them as they finish, cluster-wide."""

    def __init__(self, address: str):
        self.address = address
        self.client: Client | None = None
        self._cluster: LocalCluster | None = None

    def _connect(self) -> Client:
        if self.client is not None:
            return self.client
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
        return self.client

    def start(self, gpu: bool = False) -> None:
        client = self._connect()
        if gpu:
            self._check_gpu_workers(client)

    def _check_gpu_workers(self, client: Client) -> None:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        if workers and not any(w.get("resources", {}).get("GPU") for w in workers):
            raise MemsimError("the batches compute on CUDA but no worker of the cluster has a "
                              "GPU resource: start GPU workers with `dask worker ADDRESS "
                              "--resources GPU=1`, or run with --compute cpu", None,
                              self.address)

    def map(self, fn, calls, weights, advance, labels=None, gpu=False) -> list[TaskFailure]:
        if not calls:
            return []
        client = self._connect()
        labels = labels if labels is not None else [f"task {i}" for i in range(len(calls))]
        resources = {"GPU": 1} if gpu else None
        futures = {client.submit(fn, *args, pure=False, resources=resources): (w, label)
                   for args, w, label in zip(calls, weights, labels, strict=True)}
        failures = []
        try:
            for fut in as_completed(futures):
                w, label = futures[fut]
                if fut.status == "error":
                    failures.append(TaskFailure(label, one_line(fut.exception())))
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
