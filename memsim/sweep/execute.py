"""Executors: what runs a sweep's tasks. The plan, store and report are the same whatever
executes them; a distributed executor is one more subclass of :class:`Executor`."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable


class Executor(ABC):
    """Runs task calls; ``map`` returns once every call has finished."""

    @abstractmethod
    def map(self, fn: Callable, calls: list[tuple], weights: list[float],
            advance: Callable[[float], None]) -> None:
        """Run ``fn(*args)`` for each ``args`` in ``calls``; ``advance(weight)`` as each ends."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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

    def map(self, fn, calls, weights, advance) -> None:
        if self.jobs == 1:
            for args, w in zip(calls, weights, strict=True):
                fn(*args)
                advance(w)
            return
        from concurrent.futures import as_completed

        futures = {self._workers().submit(fn, *args): w
                   for args, w in zip(calls, weights, strict=True)}
        for fut in as_completed(futures):
            fut.result()
            advance(futures[fut])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
