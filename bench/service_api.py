"""The service under load: ``python bench/service_api.py [--requests N] [--clients C] [--json]``.

Starts an in-memory Temporal dev server, ``flowtide worker`` and ``flowtide serve`` as child processes (the
API does not share a GIL with the load it measures), then reports:

- POST /v1/flows/{id}/runs (no wait) and GET /v1/runs/{id}: requests/s at C concurrent clients;
- the latency a webhook adds: median of POST /v1/hooks/... (answered with the run's return) minus the median
  of ``flowtide.run_flow`` on the same flow and worker, sequential.

The per-key rate limit is lifted for the run (``FLOWTIDE_API_RATE``), so the numbers are the service's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowtide.dev.server import DevServer, free_port  # noqa: E402

FLOW = {"id": "bench-echo", "steps": [{"stepId": "answer", "stepType": "core.return",
                                       "input": {"output": {"got": "{{ initial.n }}"}}}]}


async def _until_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def _load(clients: int, total: int, call: Any) -> tuple[float, list[Any]]:
    """``total`` calls from ``clients`` concurrent workers; returns (requests/s, results)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    results: list[Any] = []

    async def one() -> None:
        while not queue.empty():
            results.append(await call(queue.get_nowait()))

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return total / (time.perf_counter() - t0), results


async def measure(base: str, key: str, temporal: str, requests: int, clients: int) -> dict[str, Any]:
    import flowtide
    from flowtide.client.connect import connect
    headers = {"authorization": f"Bearer {key}", "x-project-id": "bench"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as http:
        assert (await http.put(f"/v1/flows/{FLOW['id']}", json=FLOW)).status_code == 201

        async def start(i: int) -> str:
            r = await http.post(f"/v1/flows/{FLOW['id']}/runs", json={"input": {"n": i}})
            assert r.status_code == 202, r.text
            return str(r.json()["runId"])

        async def read(i: int) -> None:
            r = await http.get(f"/v1/runs/{run_ids[i % len(run_ids)]}")
            assert r.status_code == 200, r.text

        await _load(clients, clients, start)  # warm-up: connections, caches
        start_rps, run_ids = await _load(clients, requests, start)
        await asyncio.sleep(2)  # let the worker drain the started runs before reading them
        read_rps, _ = await _load(clients, requests, read)
        client = await connect(temporal)
        hook, direct = [], []
        for i in range(20):
            t0 = time.perf_counter()
            r = await http.post(f"/v1/hooks/bench/{FLOW['id']}", json={"n": i})
            assert r.status_code == 200, r.text
            hook.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await flowtide.run_flow(client, FLOW, {"n": i}, task_queue="flowtide")
            direct.append(time.perf_counter() - t0)
    h, d = statistics.median(hook[2:]) * 1000, statistics.median(direct[2:]) * 1000
    return {"clients": clients, "requests": requests, "start_runs_per_s": round(start_rps, 1),
            "get_run_per_s": round(read_rps, 1), "webhook_ms": round(h, 1), "run_flow_ms": round(d, 1),
            "webhook_added_ms": round(h - d, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from flowtide.store.database import Store
    work = tempfile.mkdtemp(prefix="flowtide-bench-api-")
    env = {**os.environ, "FLOWTIDE_DATABASE_URL": f"sqlite:///{work}/flowtide.db", "FLOWTIDE_API_RATE": "100000",
           "FLOWTIDE_LOG_LEVEL": "ERROR"}
    store = Store(env["FLOWTIDE_DATABASE_URL"])
    store.migrate()
    store.create_project("bench")
    key = store.create_key("bench", "admin", "bench")[1]
    port = free_port()
    with DevServer(port=free_port(), ui_port=None, db_file=None) as server:
        env["TEMPORAL_ADDRESS"] = server.address
        procs = _spawn([["worker"], ["serve", "--port", str(port)]], env, work)
        try:
            await _until_up(f"http://127.0.0.1:{port}/healthz")
            return await measure(f"http://127.0.0.1:{port}", key, server.address, args.requests, args.clients)
        finally:
            await asyncio.to_thread(_stop, procs)


def _spawn(commands: list[list[str]], env: dict[str, str], cwd: str) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-m", "flowtide.client.cli.main", *cmd], env=env, cwd=cwd)
            for cmd in commands]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
        p.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    out = asyncio.run(main(ns))
    print(json.dumps(out) if ns.json else "\n".join(f"{k:>18}: {v}" for k, v in out.items()))
