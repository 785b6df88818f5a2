"""Executors: what runs a sweep's tasks. The plan, store and report are the same whatever
executes them: :class:`LocalExecutor` (this process or a process pool, the default) or
:class:`~memsim.sweep.dask_executor.DaskExecutor` (a Dask cluster), chosen by
:func:`memsim.sweep.executors.executor_for` from ``--cluster`` / ``cluster:``.

Every executor has the same failure rule: a task that raises is reported (its cell and the
one-line error) and the others go on; the caller decides what an incomplete sweep means (a
rerun finds the finished tasks in the store and runs only the rest).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import MemsimError


@dataclass
class TaskFailure:
    """A task that raised: the cell it was computing and its error, on one line."""

    label: str
    error: str

    def __str__(self) -> str:
        return f"{self.label}: {self.error}"


NOT_STORED = ("finished, but its result is not in the store: is the output folder on a "
              "filesystem every worker mounts under the same path?")


def one_line(exc: BaseException) -> str:
    """The error as one line: a memsim error as it reads, others with their type."""
    first = next(iter(str(exc).strip().splitlines()), "")
    if isinstance(exc, MemsimError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def unstored(labels: list[str], keys: list[str], stored: Callable[[str], bool],
             failures: list[TaskFailure]) -> list[TaskFailure]:
    """Tasks that did not fail yet left no result where the caller reads it (a worker that
    wrote to a disk of its own): failures too."""
    failed = {f.label for f in failures}
    return [TaskFailure(label, NOT_STORED) for label, key in zip(labels, keys, strict=True)
            if label not in failed and not stored(key)]


def report_failures(failures: list[TaskFailure], tasks: int, skipped: int, log) -> None:
    """Each failed task on a line of the log; then one error (the run is incomplete, its
    report is not written; a rerun runs only what the store lacks)."""
    if not failures and not skipped:
        return
    for f in failures:
        log(f"failed: {f}")
    extra = f", {skipped} batches skipped (their fits failed)" if skipped else ""
    first = f" (first: {failures[0]})" if failures else ""
    raise MemsimError(f"{len(failures)} of {tasks} tasks failed{extra}{first}; finished tasks "
                      "are stored: fix the cause and rerun to complete the rest")


class Executor(ABC):
    """Runs task calls; ``map`` returns once every call has finished or failed."""

    @abstractmethod
    def map(self, fn: Callable, calls: list[tuple], weights: list[float],
            advance: Callable[[float], None], labels: list[str] | None = None,
            gpu: bool = False) -> list[TaskFailure]:
        """Run ``fn(*args)`` for each ``args`` in ``calls``; ``advance(weight)`` as each ends
        (finished or failed); returns the failures. ``gpu``: the tasks compute on CUDA (a
        cluster sends them to workers with a ``GPU`` resource)."""

    def start(self, gpu: bool = False) -> None:  # noqa: B027 - optional
        """Connect to the workers (before anything is written): refuse, with one line, a
        cluster that cannot be reached or, with ``gpu``, has no worker that can run CUDA."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def task_labels(labels: list[str] | None, n: int) -> list[str]:
    return labels if labels is not None else [f"task {i}" for i in range(n)]


class LocalExecutor(Executor):
    """In this process (``jobs=1``) or a pool of ``jobs`` spawned processes on this machine,
    the CPU threads shared out among them."""

    def __init__(self, jobs: int = 1):
        self.jobs = jobs
        self._pool = None

    def _workers(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("spawn"),
                                             initializer=_worker_init, initargs=(threads,))
        return self._pool

    def map(self, fn, calls, weights, advance, labels=None, gpu=False) -> list[TaskFailure]:
        labels = task_labels(labels, len(calls))
        failures = []
        if self.jobs == 1:
            for args, w, label in zip(calls, weights, labels, strict=True):
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - reported, the sweep goes on
                    failures.append(TaskFailure(label, one_line(exc)))
                advance(w)
            return failures
        from concurrent.futures import as_completed

        futures = {self._workers().submit(fn, *args): (w, label)
                   for args, w, label in zip(calls, weights, labels, strict=True)}
        for fut in as_completed(futures):
            w, label = futures[fut]
            exc = fut.exception()
            if exc is not None:
                failures.append(TaskFailure(label, one_line(exc)))
            advance(w)
        return failures

    def close(self) -> None:
        if self._pool is not None:
            # after Ctrl-C or an error, tasks not yet started are dropped, not run to the end
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
