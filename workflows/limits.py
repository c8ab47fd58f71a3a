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
# The largest flow document (characters), and the most bytes read from a flow file: UTF-8 takes up to four
# bytes a character. A reader never reads more than this plus one byte (to know the file is larger).
MAX_DOC_CHARS = 1_048_576
MAX_FLOW_FILE_BYTES = 4 * MAX_DOC_CHARS
# Temporal's longest identifier (``limit.maxIDLength``, UTF-8 bytes): workflow ids, signal names
MAX_TEMPORAL_ID_BYTES = 1000


def limit(settings: dict[str, Any], name: str) -> int:
    """``settings.limits.<name>`` of a wire flow, or its default (older wire forms may lack a key)."""
    value = (settings.get("limits") or {}).get(name)
    return int(value) if isinstance(value, int | float) and value else DEFAULT_LIMITS[name]

# Connection fields (checked when a connection is saved, by the CLI, REST and GraphQL alike): characters of
# one value by field (others: "*"), and the most scopes an oauth2 connection lists.
CONNECTION_FIELD_CHARS: dict[str, int] = {"header": 128, "tokenUrl": 2_048, "clientId": 512, "username": 512,
                                          "scopes": 256, "*": 16_384}
CONNECTION_MAX_SCOPES = 64
