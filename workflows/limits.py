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

# Where a step runs when the flow does not say (``workflows.placement``, docs/performance.md): an idempotent
# HTTP call runs as a local activity when one attempt may take at most this long (the kind's default step
# timeout) and all its attempts with their retry waits at most that long; longer calls stay remote.
AUTO_LOCAL_MAX_ATTEMPT_S = 30.0
AUTO_LOCAL_MAX_TOTAL_S = 120.0

# Connection fields (checked when a connection is saved, by the CLI, REST and GraphQL alike): characters of
# one value by field (others: "*"), and the most scopes an oauth2 connection lists.
CONNECTION_FIELD_CHARS: dict[str, int] = {"header": 128, "tokenUrl": 2_048, "clientId": 512, "username": 512,
                                          "scopes": 256, "*": 16_384}
CONNECTION_MAX_SCOPES = 64
# Work inside one workflow task (issue 23). Counted, never timed, so a replay decides exactly as the run did.
# An operation is one template expression, filter call or condition operator, or one item a filter walks;
# characters are those templates build. The worst case of one task (a step at its caps after the engine's
# yield threshold) stays a small fraction of the SDK's 2 s deadlock detector on a busy machine.
MAX_STEP_OPS = 50_000  # operations one step's templates and conditions may do (WORK_BUDGET_EXCEEDED)
MAX_STEP_CHARS = 8_000_000  # characters one step's templates may build (WORK_BUDGET_EXCEEDED)
TASK_OPS_YIELD = 20_000  # past this much work in one workflow task, the next step starts a new task
# One JSON Schema check (a flow's input, core.validate, a rerun's input): keyword evaluations, plus what a
# keyword walks (a large enum, uniqueItems over items that do not sort: n*n/2 comparisons; workflows/language/
# _schemas._cost). A schema of nested anyOf is
# exponential, and a workflow task would trip the deadlock detector on every retry (a stuck run). An
# evaluation is 1, a subschema applied 4, a $ref 4 more; 1.3-4.6 us each here, so a check stops within about
# 1 s. A 3,000-item input of ten-property objects takes about 200,000; a list of 40,000 integers 200,000.
# Past the cap: WORK_BUDGET_EXCEEDED (core.validate), a problem of the input (a flow's input, a rerun's).
MAX_SCHEMA_OPS = 250_000
TASK_CHARS_YIELD = 2_000_000
# A variable is a step output: each one a set-variable sets is held to settings.limits.outputBytes as JSON.
# The run's scope (variables and the step outputs it keeps, as JSON; a value shared by several entries
# counts each time) is held to this (VALUE_TOO_LARGE).
MAX_SCOPE_BYTES = 64 * 1024 * 1024
