"""Run ``flowtide`` commands from async tests, in-process (fast) or as a real process (exit codes, stderr).

In-process commands run ``client.cli.main.main`` in a thread with its own event loop, so the worker that shares
the test's loop keeps serving its task queue meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flowtide.client.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


async def flowtide(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``flowtide ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def flowtide_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """``python -m flowtide.client.cli.main ARGS`` as a child process: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowtide.client.cli.main", *args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def until(probe: Any, timeout: float = 15.0, every: float = 0.2) -> Any:
    """Await ``probe()`` until it returns something truthy (visibility is eventually consistent)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(every)


async def listed(client: Any, query: str, count: int = 1) -> list[Any]:
    """The runs matching a visibility query, once at least ``count`` are visible."""
    async def probe() -> list[Any]:
        rows = [w async for w in client.list_workflows(query)]
        return rows if len(rows) >= count else []
    return list(await until(probe))
