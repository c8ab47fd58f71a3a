"""The Flowtide workers running in this process, so that a start can take Temporal's eager path.

An eager start (``request_eager_start``) hands the run's first workflow task back in the start's answer, to a
worker of the same client connection: no trip through the task queue before the first step. It only helps
when such a worker is running here (``flowtide run`` with its worker, ``flowtide dev``, ``create_worker`` in
the Python API, the service next to a worker), so ``client.runs.start_run`` asks for it only then. The SDK
core falls back to a plain start by itself when the worker has no free slot or the server declines.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.worker import Worker

_WORKERS: weakref.WeakSet[Worker] = weakref.WeakSet()  # a worker leaves with its last reference


def register(worker: Worker) -> Worker:
    """Note ``worker`` (``worker.app.build_worker`` does it for every worker it builds); returns it."""
    _WORKERS.add(worker)
    return worker


def serves(client: Client, task_queue: str) -> bool:
    """Whether a registered worker that is not shut down serves ``task_queue`` of ``client``'s namespace
    through the same connection (the SDK core dispatches an eager task only to a worker of the connection
    that started it). Not shut down rather than running: ``async with worker`` starts it in a task that has
    not run yet when the block's first start comes, and the core keeps the eager task until it polls."""
    return any(not w.is_shutdown and w.task_queue == task_queue and w.client.namespace == client.namespace
               and w.client.service_client is client.service_client for w in list(_WORKERS))
