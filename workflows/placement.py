"""Where an activity step runs when neither the step nor the flow says (``execution`` unset): the one rule.

A local activity runs in the worker that runs the flow, with no task-queue round trip, and records its
result as a marker; it has no heartbeat, and a worker crash runs the attempt in flight again. So the engine
picks it by itself only for a call that is safe to repeat and short (docs/performance.md, "Where steps run by
default"); everything else stays a regular activity. ``execution: local | remote`` overrides the rule.
"""

from __future__ import annotations

from typing import Any

from flowtide.workflows.limits import AUTO_LOCAL_MAX_ATTEMPT_S, AUTO_LOCAL_MAX_TOTAL_S
from flowtide.workflows.retry import RetrySettings

AUTO_LOCAL_KINDS = frozenset({"core.http"})
# Idempotent methods (RFC 9110, 9.2.2): repeating the request leaves the server as one request would.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def auto_local(kind: str, inp: dict[str, Any], timeout_s: float, retry: RetrySettings, *,
               heartbeats: bool) -> bool:
    """Whether a step without ``execution`` runs as a local activity.

    Args:
        kind: the step's kind: only an HTTP call qualifies (LLM, email, code, files and data stores stay
            remote: costly, slow or not safe to repeat).
        inp: the step's rendered input: an idempotent method, or POST/PATCH with an idempotency key the
            flow gave (``idempotencyKey: "<key>"`` or an ``Idempotency-Key`` header; the key Flowtide adds
            by itself does not count: the server may ignore it).
        timeout_s: the step's timeout (one attempt).
        retry: the step's effective retry settings: all attempts and their waits must fit the bound.
        heartbeats: the step's rate-limit answers must travel in heartbeats (an item of an adaptive loop).
    """
    if kind not in AUTO_LOCAL_KINDS or heartbeats or not _repeatable(inp):
        return False
    return timeout_s <= AUTO_LOCAL_MAX_ATTEMPT_S and worst_case_s(timeout_s, retry) <= AUTO_LOCAL_MAX_TOTAL_S


def worst_case_s(timeout_s: float, retry: RetrySettings) -> float:
    """The longest a step's call can take: every attempt at its timeout, plus every retry wait."""
    total, wait_ms = timeout_s, float(retry.delay_ms)
    for _ in range(retry.max_retries):
        total += timeout_s + wait_ms / 1000
        if total > AUTO_LOCAL_MAX_TOTAL_S:
            break  # past the bound already (and a huge maxRetries must not loop long)
        wait_ms = min(wait_ms * retry.backoff, float(retry.max_delay_ms or retry.delay_ms * 100))
    return total


def _repeatable(inp: dict[str, Any]) -> bool:
    method = inp.get("method") or "GET"  # unset or null: the activity sends a GET
    if not isinstance(method, str):
        return False
    if method.strip().upper() in IDEMPOTENT_METHODS:
        return True
    key = inp.get("idempotencyKey")
    headers = inp.get("headers")
    named = isinstance(headers, dict) and any(
        str(k).lower() == "idempotency-key" and v not in (None, "") for k, v in headers.items())
    return (isinstance(key, str) and key.strip() != "") or named
