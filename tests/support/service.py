"""Helpers for the service tests: a running API with projects, keys of each role, and a worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from flowtide.dev.server import free_port

ROLES = ("read", "run", "admin")
ECHO = {"id": "echo", "name": "Echo", "input": {"type": "object", "required": ["n"],
                                                 "properties": {"n": {"type": "integer"}}},
        "steps": [{"stepId": "answer", "stepType": "core.return", "input": {"output": {"got": "{{ initial.n }}"}}}]}
WAITS = {"id": "waits", "steps": [
    {"stepId": "hold", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 60}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"ok": True}}}]}


@dataclass
class Api:
    """A running service: its base URL, its store, and keys by project and role."""

    base: str
    svc: Any
    task_queue: str
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # project -> role -> key

    def headers(self, role: str = "admin", project: str = "acme", as_project: str | None = None) -> dict[str, str]:
        """Headers for a key of ``project`` with ``role``, claiming ``as_project`` (default: the same)."""
        return {"authorization": f"Bearer {self.keys[project][role]}", "x-project-id": as_project or project}

    def url(self, path: str) -> str:
        return self.base + path

    async def deploy(self, http: httpx.AsyncClient, doc: dict[str, Any], project: str = "acme") -> dict[str, Any]:
        r = await http.put(self.url(f"/v1/flows/{doc['id']}"), json=doc, headers=self.headers("admin", project))
        assert r.status_code == 201, r.text
        return dict(r.json())


@contextlib.asynccontextmanager
async def running_api(client: Any, database_url: str, task_queue: str,
                      projects: tuple[str, ...] = ("acme", "other"), **worker_options: Any) -> AsyncIterator[Api]:
    """Serve the API on a free loopback port, with a worker polling ``task_queue`` (``worker_options`` go to
    ``build_worker``)."""
    from flowtide.client.cli.service import serving
    from flowtide.store.database import Store
    from flowtide.worker.app import build_worker
    store = Store(database_url)
    await asyncio.to_thread(store.migrate)
    keys: dict[str, dict[str, str]] = {}
    for p in projects:
        await asyncio.to_thread(store.create_project, p)
        keys[p] = {r: (await asyncio.to_thread(store.create_key, p, r, f"{p}-{r}"))[1] for r in ROLES}
    port = free_port()
    async with serving("127.0.0.1", port, client, task_queue, database_url) as server, \
            build_worker(client, task_queue, graceful_shutdown_s=1, **worker_options):
        yield Api(base=f"http://127.0.0.1:{port}", svc=server.config.app.state.svc, task_queue=task_queue, keys=keys)


def new_id(prefix: str = "f") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def threaded_api(temporal_address: str, database_url: str) -> Any:
    """The service in its own thread and event loop (for synchronous clients such as schemathesis).

    Yields ``(base URL, admin key of project acme)``; a worker polls the service's task queue.
    """
    import threading

    from flowtide.store.database import Store
    store = Store(database_url)
    store.migrate()
    store.create_project("acme")
    key = store.create_key("acme", "admin", "prop")[1]
    port, started, stop = free_port(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        from flowtide.client.cli.service import serving
        from flowtide.client.connect import connect
        from flowtide.worker.app import build_worker
        client = await connect(temporal_address)
        tq = f"tq-prop-{uuid.uuid4().hex[:8]}"
        async with serving("127.0.0.1", port, client, tq, database_url), build_worker(client, tq,
                                                                                       graceful_shutdown_s=1):
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(30)
    if errors:
        raise errors[0]
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        stop.set()
        thread.join(30)
