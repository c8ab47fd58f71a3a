"""Parts a suite needs from the machine (PostgreSQL, Chromium, the js extra, ...).

Locally a missing part skips its tests and says how to install it. With ``FLOWTIDE_REQUIRE_PARTS=1`` (set by
``.ci/run``) the same absence fails the test: a CI run that quietly skipped the PostgreSQL, browser or
JavaScript suites would prove less than it says.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ENV = "FLOWTIDE_REQUIRE_PARTS"


def required() -> bool:
    """Whether every part must be present (CI)."""
    return os.environ.get(REQUIRE_ENV) == "1"


def missing(part: str, how: str) -> NoReturn:
    """Skip (locally) or fail (CI) the current test because ``part`` is missing; ``how`` says how to get it."""
    message = f"{part} is missing: {how}"
    if required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: this suite must run here)", pytrace=False)
    pytest.skip(message)


def needs(available: bool, part: str, how: str) -> pytest.MarkDecorator:
    """A mark for tests that need ``part``: skipped without it locally; failing without it in CI."""
    if available:
        return pytest.mark.needs_part(part)
    if required():
        return pytest.mark.needs_part(part, how)  # tests/conftest.py fails such a test at setup
    return pytest.mark.skip(reason=f"{part} is missing: {how}")
