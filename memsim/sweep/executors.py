"""Which executor runs a sweep's tasks, from ``--cluster`` / ``cluster:``: none, the local
one (:mod:`.execute`); ``local:N`` or a scheduler address, Dask (:mod:`.dask_executor`). A
new executor is a module and a line here."""

from __future__ import annotations

from ..errors import MemsimError
from .execute import Executor, LocalExecutor


def parse_cluster(address: str | None, where: str = "--cluster") -> str | None:
    """Check a cluster address: ``local:N`` (N worker processes on this machine) or a
    scheduler's ``tcp://host:port`` (TLS would need certificates memsim does not pass); None =
    the local executor."""
    if address is None:
        return None
    if address.startswith("local:"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise MemsimError(f"local:N needs a positive number of workers, not {address!r}",
                              None, where)
        return address
    if address.startswith("tcp://") and len(address) > len("tcp://"):
        return address
    raise MemsimError(f"cluster must be local:N or a Dask scheduler address tcp://HOST:PORT, "
                      f"not {address!r}", None, where)


def executor_for(cluster: str | None, jobs: int = 1) -> Executor:
    """The local executor (``cluster`` None) or a Dask one."""
    if parse_cluster(cluster) is None:
        return LocalExecutor(jobs)
    try:
        from .dask_executor import DaskExecutor
    except ImportError:
        raise MemsimError("a cluster needs the package distributed (pinned in requirements.txt: "
                          "`make setup` installs it)", None, "--cluster") from None
    return DaskExecutor(cluster)
