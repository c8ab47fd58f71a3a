"""Follow a run to its end; on a terminal, keep one live progress line on standard error meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from flowtide.client.cli.term import colour


async def follow(client: Any, handle: Any, *, live: bool) -> dict[str, Any]:
    """Wait for the run's record; when ``live`` and stderr is a terminal, show its progress as it goes."""
    from flowtide.client.runs import wait_record
    if not (live and sys.stderr.isatty()):
        return await wait_record(handle)
    from flowtide.client.cli.term import console
    with console(stderr=True).status("starting ...", spinner="dots" if colour(sys.stderr) else "line") as status:
        ticker = asyncio.create_task(_tick(client, handle, status))
        try:
            return await wait_record(handle)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


async def _tick(client: Any, handle: Any, status: Any, every: float = 0.5) -> None:
    from flowtide.client.cli import render_runs
    from flowtide.client.cli.term import styled
    from flowtide.client.inspect import inspect_run
    while True:
        with contextlib.suppress(Exception):  # a refresh that fails only delays the next one
            view = await inspect_run(handle, client)
            status.update(styled(render_runs.progress_bar(view.record), one_line=True))
        await asyncio.sleep(every)
