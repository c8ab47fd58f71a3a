"""Reading a run that is not completed or failed replays its history; a history that has not grown is not
replayed again (``client.record_cache``), and replays in one process take turns.

Before, every ``GET /v1/runs/{id}`` of a cancelled, terminated or waiting run replayed its whole history in
the API process: one caller polling a long run spent a core per request for every project.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from flowtide.client.inspect import inspect_run
from flowtide.client.record_cache import RECORDS, Rebuilt, RecordCache
from flowtide.client.runs import start_run
from flowtide.workflows.language.dsl import parse_flow

WAITS = {"id": "cache-waits", "steps": [
    {"stepId": "count", "stepType": "core.set-variable", "input": {"name": "n", "value": 1}},
    {"stepId": "hold", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 600}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True}}}]}


def rebuilt(n: int, source: str = "replay", **record: Any) -> Rebuilt:
    return Rebuilt({"steps": [{"stepId": f"s{i}"} for i in range(n)], **record}, source, ["a signal"])


def test_kept_records_are_bounded_by_bytes_and_the_least_recently_read_go_first() -> None:
    size = len(json.dumps(rebuilt(30).record))
    cache = RecordCache(max_bytes=4 * size + size // 2)  # room for four
    for i in range(3):
        cache.put((f"r{i}", 10, "cancelled"), rebuilt(30))
    assert cache.get(("r0", 10, "cancelled")) is not None  # r0 read: r1 is now the oldest
    for i in range(3, 6):
        cache.put((f"r{i}", 10, "cancelled"), rebuilt(30))
    kept = [i for i in range(6) if cache.get((f"r{i}", 10, "cancelled")) is not None]
    assert kept == [0, 3, 4, 5] and cache._bytes <= cache.max_bytes
    cache.put(("big", 10, "cancelled"), rebuilt(40))  # more than a quarter of the bound: never kept
    assert cache.get(("big", 10, "cancelled")) is None
    assert cache.get(("r0", 11, "cancelled")) is None  # the history grew: another key


def test_a_kept_record_is_a_copy_and_an_open_runs_duration_runs_on() -> None:
    cache = RecordCache()
    key = ("r", 12, "running")
    cache.put(key, rebuilt(2, startedAt="2026-01-01T00:00:00+00:00", completedAt=None, durationMs=5))
    first = cache.get(key)
    assert first is not None and first.unprocessed == ["a signal"] and first.record["durationMs"] > 5
    first.record["steps"].append({"stepId": "changed by a reader"})
    again = cache.get(key)
    assert again is not None and len(again.record["steps"]) == 2


async def test_readers_of_one_history_share_one_replay_and_replays_take_turns() -> None:
    cache = RecordCache(at_once=2)
    running, most = 0, 0

    async def rebuild() -> Rebuilt:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return rebuilt(1)

    same = await asyncio.gather(*(cache.rebuilt(("one", 5, "cancelled"), rebuild) for _ in range(20)))
    assert cache.rebuilds == 1 and all(r.record == same[0].record for r in same)
    await asyncio.gather(*(cache.rebuilt((f"k{i}", 5, "cancelled"), rebuild) for i in range(8)))
    assert cache.rebuilds == 9 and most == 2

    async def asked() -> Rebuilt:
        return Rebuilt({"steps": []}, "query", [], keep=False)  # a worker's answer is not kept

    await cache.rebuilt(("q", 5, "running"), asked)
    await cache.rebuilt(("q", 5, "running"), asked)
    assert cache.rebuilds == 11


@pytest.mark.timeout(120)
async def test_polling_a_waiting_or_cancelled_run_replays_only_when_its_history_grew(
        client: Any, task_queue: str, worker: Any) -> None:
    handle = await start_run(client, parse_flow(WAITS, source="test"), {}, task_queue=task_queue)
    length = -1
    for _ in range(100):  # until the run waits for its signal and its history is still
        view = await inspect_run(handle, client)
        now = (await handle.describe()).history_length
        if any(s["stepId"] == "hold" for s in view.record["steps"]) and now == length:
            break
        length = now
        await asyncio.sleep(0.2)
    before = RECORDS.rebuilds
    views = [await inspect_run(handle, client) for _ in range(5)]
    assert RECORDS.rebuilds == before and {v.source for v in views} == {"replay"}
    assert all(v.record == views[0].record | {"durationMs": v.record["durationMs"]} for v in views)
    assert views[0].record["status"] == "paused" and views[-1].record["durationMs"] >= views[0].record["durationMs"]

    await handle.signal("not-awaited", {"x": 1})  # the history grows: the next read replays it
    await inspect_run(handle, client)
    assert RECORDS.rebuilds == before + 1

    await handle.cancel()
    for _ in range(100):
        view = await inspect_run(handle, client)
        if view.execution_status == "cancelled":
            break
        await asyncio.sleep(0.1)
    closed = RECORDS.rebuilds
    views = [await inspect_run(handle, client) for _ in range(5)]
    assert RECORDS.rebuilds == closed and {v.record["status"] for v in views} == {"cancelled"}
