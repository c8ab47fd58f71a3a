"""A worker a test or the corpus recorder can stop for a while and start again (a fresh one each time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client


class WorkerSwitch:
    """The recorder's worker, which a case's drive may stop for a while (``paused``): what happens meanwhile
    reaches the run in one workflow task when the next worker starts."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self._running: tuple[Any, asyncio.Task[None]] | None = None

    async def start(self) -> None:
        from flowtide.worker.app import build_worker
        worker = build_worker(self.client, self.task_queue, graceful_shutdown_s=1)
        self._running = (worker, asyncio.create_task(worker.run()))

    async def stop(self) -> None:
        if self._running is not None:
            worker, task = self._running
            self._running = None
            await worker.shutdown()
            await task

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        await self.stop()
        try:
            yield
        finally:
            await self.start()
