"""Run records rebuilt from a history, kept per process: a history that has not grown is not replayed again.

Replaying a 10,000-step history takes about a second of CPU (docs/performance.md), and a cancelled, terminated
or waiting run is rebuilt that way on every read: a caller polling ``GET /v1/runs/{id}`` (or a page, or
``flowtide runs watch``) would spend the API's CPU once per request. Two bounds make that cheap and fair:

- the record of a history is kept, keyed by (run id, history length, status), which change whenever the
  history does, so a kept record is always the one a replay would give now (``durationMs`` of an open run is
  brought up to now). At most ``MAX_BYTES`` of records are kept (as JSON), the least recently read go first;
- ``REPLAYS_AT_ONCE`` replays run at a time in a process, and callers reading the same history at the same
  moment wait for one replay instead of making their own.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

MAX_BYTES = 64 * 1024 * 1024  # kept records of one process, as JSON
REPLAYS_AT_ONCE = 2  # replays at the same time in one process (each takes a core while it runs)

Key = tuple[str, int, str]  # run id, history length, execution status


@dataclass(frozen=True)
class Rebuilt:
    """A record rebuilt from a history: how (``replay``, ``history``, or ``query`` when the interpreter could
    not replay an open run and its worker answered: not kept), and what waits for a worker."""

    record: dict[str, Any]
    source: str
    unprocessed: list[str]
    keep: bool = True


class RecordCache:
    """The process's kept records and its replay slots (see the module docstring)."""

    def __init__(self, max_bytes: int = MAX_BYTES, at_once: int = REPLAYS_AT_ONCE) -> None:
        self.max_bytes, self.at_once = max_bytes, at_once
        self._kept: OrderedDict[Key, tuple[bytes, str, list[str]]] = OrderedDict()
        self._bytes = 0
        self._slots: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()
        self._same: dict[Key, asyncio.Lock] = {}
        self.rebuilds = 0  # how many records were rebuilt rather than read here (tests and metrics read it)

    def get(self, key: Key) -> Rebuilt | None:
        found = self._kept.get(key)
        if found is None:
            return None
        self._kept.move_to_end(key)
        blob, source, unprocessed = found
        record = json.loads(blob)
        if record.get("completedAt") is None and record.get("startedAt"):  # open: its duration runs on
            started = datetime.fromisoformat(record["startedAt"])
            record["durationMs"] = int((datetime.now(UTC) - started).total_seconds() * 1000)
        return Rebuilt(record, source, list(unprocessed))

    def put(self, key: Key, rebuilt: Rebuilt) -> None:
        blob = json.dumps(rebuilt.record, default=str).encode()
        if len(blob) > self.max_bytes // 4:  # one record never pushes out most of the others
            return
        old = self._kept.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0])
        self._kept[key] = (blob, rebuilt.source, list(rebuilt.unprocessed))
        self._bytes += len(blob)
        while self._bytes > self.max_bytes:
            _, (gone, _, _) = self._kept.popitem(last=False)
            self._bytes -= len(gone)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.at_once)
        async with slots:
            yield

    async def rebuilt(self, key: Key, rebuild: Callable[[], Awaitable[Rebuilt]]) -> Rebuilt:
        """The kept record of ``key``, else ``rebuild()`` (in a replay slot), kept for the next reader."""
        found = self.get(key)
        if found is not None:
            return found
        same = self._same.setdefault(key, asyncio.Lock())
        try:
            async with same:
                found = self.get(key)  # another reader rebuilt it while this one waited
                if found is not None:
                    return found
                async with self._slot():
                    made = await rebuild()
                    self.rebuilds += 1
                if not made.keep:
                    return made
                self.put(key, made)
                return self.get(key) or made  # a copy when kept: the caller may change its record
        finally:
            if not same.locked() and self._same.get(key) is same:
                del self._same[key]


RECORDS = RecordCache()
