"""Retry presets and per-family defaults, mapped onto one Temporal ``RetryPolicy`` per activity call.

This module is the one table of docs/error-handling.md. The workflow builds the ``RetryPolicy`` with
``temporal_policy``; the activity boundary decides ``non_retryable`` for each failure with ``is_retryable``,
so codes outside the taxonomy (a Code step's own ``$error`` codes) and the POST/PATCH rule follow the
same rules as the listed codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from flowtide.workflows.errors import ERROR_CLASSES, ErrorClass, classify, codes_of_class

if TYPE_CHECKING:
    from temporalio.common import RetryPolicy

RetryMode = Literal["smart", "aggressive", "rate-limits-only", "custom"]
RETRY_MODES: tuple[RetryMode, ...] = ("smart", "aggressive", "rate-limits-only", "custom")


@dataclass(frozen=True)
class FamilyDefaults:
    """Default retries for one step family."""

    max_retries: int
    delay_ms: int
    backoff: float = 2.0


# One row per family of the kinds in workflows/kinds.py (tests/unit/test_kinds_declared.py checks it).
FAMILY_DEFAULTS: dict[str, FamilyDefaults] = {
    "HTTP": FamilyDefaults(2, 1000),
    "Code": FamilyDefaults(3, 1000),
    "Email": FamilyDefaults(1, 2000),
    "AI / LLM": FamilyDefaults(1, 3000),
    "File": FamilyDefaults(2, 1000),
    "Data Store": FamilyDefaults(1, 500),
    "Core": FamilyDefaults(0, 1000),
}

# Which classes retry under each preset (custom: every class; the denylist decides).
RETRYING_CLASSES: dict[RetryMode, frozenset[ErrorClass]] = {
    "smart": frozenset({"transient", "rate-limit", "unknown"}),
    "aggressive": frozenset({"transient", "rate-limit", "unknown", "permanent"}),
    "rate-limits-only": frozenset({"rate-limit"}),
    "custom": frozenset(ERROR_CLASSES),
}

# Codes that never retry whatever the preset: retrying cannot change the outcome.
ALWAYS_FINAL = frozenset({"RUN_LIMIT_REACHED", "CANCELLED", "OUTPUT_TOO_LARGE", "HTTP_DESTINATION_BLOCKED",
                          "TEMPLATE_ERROR", "AUTH_MISSING", "STEP_BUDGET_EXCEEDED", "SUBPROCESS_OUT_OF_MEMORY",
                          "HTTP_RESPONSE_TOO_LARGE"})

NON_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})


@dataclass(frozen=True)
class RetrySettings:
    """A step's effective retry settings after defaults are applied."""

    max_retries: int
    delay_ms: int
    backoff: float
    max_delay_ms: int | None
    mode: RetryMode
    non_retryable_codes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"maxRetries": self.max_retries, "delayMs": self.delay_ms, "backoffMultiplier": self.backoff,
                "maxDelayMs": self.max_delay_ms, "mode": self.mode,
                "nonRetryableErrorCodes": list(self.non_retryable_codes)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RetrySettings:
        return RetrySettings(int(d["maxRetries"]), int(d["delayMs"]), float(d["backoffMultiplier"]),
                             d.get("maxDelayMs"), d["mode"], tuple(d.get("nonRetryableErrorCodes") or ()))


def effective(family: str, spec: dict[str, Any] | None, flow_default: dict[str, Any] | None = None
              ) -> RetrySettings:
    """Merge a step's ``retryPolicy`` over the flow's ``settings.retryPolicy`` over the family default."""
    base = FAMILY_DEFAULTS.get(family, FAMILY_DEFAULTS["Core"])
    merged: dict[str, Any] = {}
    for layer in (flow_default or {}, spec or {}):
        merged.update({k: v for k, v in layer.items() if v is not None})
    mode: RetryMode = merged.get("mode", "smart")
    denylist = merged.get("nonRetryableErrorCodes")
    if denylist is None:
        denylist = codes_of_class("permanent", "auth", "invalid-config") if mode == "custom" else []
    return RetrySettings(
        max_retries=max(0, int(merged.get("maxRetries", base.max_retries))),
        delay_ms=max(1, int(merged.get("delayMs", base.delay_ms))),
        backoff=max(1.0, float(merged.get("backoffMultiplier", base.backoff))),
        max_delay_ms=merged.get("maxDelayMs"),
        mode=mode,
        non_retryable_codes=tuple(denylist),
    )


def is_retryable(code: str, settings: RetrySettings, *, method: str | None = None,
                 user_code: bool = False, provider_status: int | None = None) -> bool:
    """Whether a failure with ``code`` may be retried under ``settings`` (docs/error-handling.md).

    Args:
        code: the taxonomy code (or a Code step's own code).
        settings: the step's effective retry settings.
        method: the HTTP method, for the POST/PATCH rule.
        user_code: the code came from a Code step's ``$error`` return.
        provider_status: the provider's status (429 lets POST/PATCH retry).
    """
    if code in ALWAYS_FINAL or settings.max_retries == 0:
        return False
    cls = classify(code)
    if method and method.upper() in NON_IDEMPOTENT_METHODS and cls != "rate-limit" and provider_status != 429:
        return False
    if settings.mode == "custom":
        return code not in settings.non_retryable_codes
    if user_code:
        return False
    return cls in RETRYING_CLASSES[settings.mode]


def non_retryable_types(settings: RetrySettings) -> list[str]:
    """The preset's denylist as Temporal ``non_retryable_error_types`` (taxonomy codes only)."""
    if settings.mode == "custom":
        return sorted(set(settings.non_retryable_codes) | ALWAYS_FINAL | {"PayloadsTooLarge"})
    retrying = RETRYING_CLASSES[settings.mode]
    final = [c for c in codes_of_class(*ERROR_CLASSES) if classify(c) not in retrying]
    return sorted(set(final) | ALWAYS_FINAL | {"PayloadsTooLarge"})


def temporal_policy(settings: RetrySettings, *, max_attempts_cap: int | None = None) -> RetryPolicy:
    """One ``RetryPolicy`` for an activity call; ``max_attempts_cap`` enforces a remaining runLimit."""
    from temporalio.common import RetryPolicy  # here: the flow language reads this module without the SDK
    attempts = settings.max_retries + 1
    if max_attempts_cap is not None:
        attempts = max(1, min(attempts, max_attempts_cap))
    initial = timedelta(milliseconds=settings.delay_ms)
    max_interval = (timedelta(milliseconds=settings.max_delay_ms) if settings.max_delay_ms
                    else timedelta(milliseconds=settings.delay_ms * 100))
    # Temporal refuses a policy whose maximum interval is below its initial one, and the refusal fails the
    # workflow task on every try (a stuck run): the cap can only lower later delays, never the first one.
    return RetryPolicy(
        initial_interval=initial,
        maximum_interval=max(max_interval, initial),
        backoff_coefficient=max(1.0, settings.backoff),
        maximum_attempts=attempts,
        non_retryable_error_types=non_retryable_types(settings),
    )
