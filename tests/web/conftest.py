"""The runs page in headless Chromium (Playwright) against the real service, Temporal dev server and worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.support import parts
from tests.support.service import Api, running_api

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(autouse=True)
def plain_structlog() -> Iterator[None]:
    """Log to this test's stdout (an earlier ``configure()`` may hold a closed stream); put the old one back."""
    before = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**before)


@pytest.fixture(scope="module")
async def site(client: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The service (pages and API) on SQLite, projects ``acme`` and ``other``, a key of each role; refresh 1 s."""
    os.environ["FLOWTIDE_WEB_REFRESH_S"] = "1"
    db = Path(tmp_path_factory.mktemp("web")) / "flowtide.db"
    try:
        async with running_api(client, f"sqlite:///{db}", f"tq-web-{uuid.uuid4().hex[:8]}") as a:
            yield a
    finally:
        del os.environ["FLOWTIDE_WEB_REFRESH_S"]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium driven by Playwright (never ``playwright install``: no browser download here)."""
    if not Path(CHROMIUM).exists():
        parts.missing(CHROMIUM, "apt-get install chromium (the browser tests need a real browser)")
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()
