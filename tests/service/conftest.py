"""The service over real HTTP: uvicorn on a free loopback port, a real Temporal dev server and a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests.support.postgres import postgres_cluster
from tests.support.rest_api import api_fixture, http_fixture


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


api = api_fixture("svc")  # the service on SQLite, projects acme and other, a key of every role in each


@pytest.fixture(autouse=True)
def plain_structlog() -> Iterator[None]:
    """Log to the stdout of this test: an earlier test's ``configure()`` may have bound a stream since closed.

    The configuration found is put back afterwards, so the tests after these see what they saw before.
    """
    before = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**before)


http = http_fixture()
