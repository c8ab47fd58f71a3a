"""A worker process's part in a half-open race: wait for the start time, then try the breaker from threads."""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Any

from flowtide.workflows.errors import StepFailure


def trials_in_a_process(url: str, key: str, cfg: dict[str, Any], start_at: float, threads: int) -> list[str]:
    """What each of ``threads`` calls through the breaker ``key`` of the database ``url`` got, all starting at
    ``start_at``: ``trial``, ``closed`` (let through, not the trial) or the refusal's code."""
    os.environ["FLOWTIDE_DATABASE_URL"] = url
    os.environ.pop("FLOWTIDE_BREAKERS_DB", None)
    from flowtide.store import breakers
    breakers.list_breakers()  # connect before the start, as a running worker would have

    def one(_: int) -> str:
        time.sleep(max(0.0, start_at - time.time()))
        try:
            return "trial" if breakers.enter(key, cfg, 30).trial else "closed"
        except StepFailure as failure:
            return failure.code

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(threads)))
