"""Fixture factories for modules that need their own running API (no shared conftest in tests/security)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service import Api, running_api


def api_fixture(label: str) -> Any:
    """A module-scoped fixture: the service on its own SQLite file, projects ``acme`` and ``other``, a worker."""

    @pytest.fixture(scope="module")
    async def api(client: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
        db = Path(tmp_path_factory.mktemp(label)) / "flowtide.db"
        async with running_api(client, f"sqlite:///{db}", f"tq-{label}-{uuid.uuid4().hex[:8]}") as a:
            yield a

    return api


@pytest.fixture
async def _http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as c:
        yield c


def http_fixture() -> Any:
    """A function-scoped ``httpx.AsyncClient`` fixture."""
    return _http
