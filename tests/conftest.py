"""Shared fixtures: a real Temporal dev server, a real local HTTP service, a worker per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import settings

from flowtide.dev.demo_service import DemoService
from flowtide.dev.server import DevServer, free_port

os.environ.setdefault("FLOWTIDE_HTTP_ALLOW", "127.0.0.1,::1,localhost")


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    server = DevServer(port=free_port(), ui_port=None, db_file=None,
                       extra_args=["--dynamic-config-value", "frontend.workerHeartbeatsEnabled=false"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def client(dev_server: DevServer) -> Any:
    from flowtide.client.connect import connect
    return await connect(dev_server.address)


@pytest.fixture(scope="session")
def service() -> Iterator[DemoService]:
    with DemoService() as svc:
        yield svc


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Any, task_queue: str) -> AsyncIterator[Any]:
    from flowtide.worker.app import build_worker
    # sandboxed in tests: a clock or I/O call slipped into workflow code fails here (production runs without)
    w = build_worker(client, task_queue, graceful_shutdown_s=1, sandbox=True)
    async with w:
        yield w


@pytest.fixture
def key() -> str:
    """A unique key for the service's /flaky counters."""
    return uuid.uuid4().hex[:12]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_part(part, how=None): the test needs a part of the machine "
                            "(tests/support/parts.py); with `how` given the part is missing")


def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker("needs_part")
    if mark is not None and len(mark.args) > 1:
        from tests.support import parts
        parts.missing(mark.args[0], mark.args[1])


# Property tests draw the same examples on every run (derandomized from each test's name), so a failure in CI
# reproduces on any machine; explore with `pytest --hypothesis-seed=N` or HYPOTHESIS_PROFILE=explore.
settings.register_profile("flowtide", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "flowtide"))


@pytest.fixture
def conns(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A connection store on SQLite in ``tmp_path``, with the database URL and a secret key set for the
    in-process worker, which reads connections at the moment of use."""
    import secrets

    from flowtide.store.connections import Connections
    from flowtide.store.database import Store
    url = f"sqlite:///{tmp_path / 'flowtide.db'}"
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", url)
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "test-" + secrets.token_hex(20))
    store = Store(url)
    store.migrate()
    return Connections(store)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, dev_server: DevServer) -> None:
    """In-process CLI commands talk to the test's Temporal server."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
