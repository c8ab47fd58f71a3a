"""Flowtide's activity-side metrics, through ``activity.metric_meter()`` (live, per attempt).

- ``flowtide_step_attempts_total{kind}``: step attempts started in activities;
- ``flowtide_step_attempt_retries_total{kind}``: of those, attempts beyond the first (a retry started);
- ``flowtide_step_attempt_failures_total{kind, code, class, retryable}``: failed attempts.
"""

from __future__ import annotations

from temporalio import activity

from flowtide.workflows.errors import classify

ATTEMPTS = "flowtide_step_attempts_total"
RETRIES = "flowtide_step_attempt_retries_total"
FAILURES = "flowtide_step_attempt_failures_total"


def attempt_started(kind: str, attempt: int) -> None:
    """Count an attempt of a ``kind`` step (and a retry when ``attempt`` > 1)."""
    meter = activity.metric_meter()
    meter.create_counter(ATTEMPTS, "Flowtide step attempts started, by kind").add(1, {"kind": kind})
    if attempt > 1:
        meter.create_counter(RETRIES, "Flowtide step retries started, by kind").add(1, {"kind": kind})


def attempt_failed(kind: str, code: str, retryable: bool) -> None:
    """Count a failed attempt by error code, class and whether it will be retried."""
    activity.metric_meter().create_counter(FAILURES, "Flowtide step attempts that failed").add(
        1, {"kind": kind, "code": code, "class": classify(code), "retryable": str(retryable).lower()})
