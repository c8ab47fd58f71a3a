"""The service over real HTTP: uvicorn on a free loopback port, a real Temporal dev server and a worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from tests.support.postgres import postgres_cluster
from tests.support.service import Api, running_api


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module")
async def api(client: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The service on SQLite with projects ``acme`` and ``other`` and a key of every role in each."""
    db = Path(tmp_path_factory.mktemp("svc")) / "flowtide.db"
    async with running_api(client, f"sqlite:///{db}", f"tq-svc-{uuid.uuid4().hex[:8]}") as a:
        yield a


@pytest.fixture(autouse=True)
def plain_structlog() -> Iterator[None]:
    """Log to the stdout of this test: an earlier test's ``configure()`` may have bound a stream since closed.

    The configuration found is put back afterwards, so the tests after these see what they saw before.
    """
    before = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**before)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c
