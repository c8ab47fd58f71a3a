"""The run limits, declared once: the defaults of ``settings.limits`` and the longest wait; the flow models,
the engine and the activities read them."""

from __future__ import annotations

from typing import Any

DEFAULT_LIMITS: dict[str, int] = {"outputBytes": 262_144, "httpResponseBytes": 262_144,
                                  "maxStepExecutions": 10_000, "loopBatchSize": 500, "continueAsNewEvents": 8_000}
UNBOUNDED_STEPS = -1  # maxStepExecutions: a deliberately endless run (see docs/flow-language.md)
# The longest delay or signal wait a step may ask for (100 years): Temporal timers and ``timedelta`` refuse
# far longer ones, and NaN or infinity would never end.
MAX_WAIT_S = 3_155_760_000
# Temporal's longest identifier (``limit.maxIDLength``, UTF-8 bytes): workflow ids, signal names
MAX_TEMPORAL_ID_BYTES = 1000


def limit(settings: dict[str, Any], name: str) -> int:
    """``settings.limits.<name>`` of a wire flow, or its default (older wire forms may lack a key)."""
    value = (settings.get("limits") or {}).get(name)
    return int(value) if isinstance(value, int | float) and value else DEFAULT_LIMITS[name]
