"""Step builders the tests share (list spelling)."""

from __future__ import annotations

from typing import Any


def http(step_id: str, url: str = "http://127.0.0.1/x", **extra: Any) -> dict[str, Any]:
    """A ``core.http`` step calling ``url``; ``extra`` adds step keys (``retryPolicy``, ``title``, ...)."""
    return {"stepId": step_id, "stepType": "core.http", "input": {"url": url}, **extra}
