"""Logs of every Flowtide process: one JSON object per line when stderr is not a terminal, else readable lines.

structlog renders both its own events and the standard library's records (the Temporal SDK, httpx and
every other library), so a log shipper never meets a line it cannot parse. Workflow, run, activity and step
ids are added where they are known: the SDK's ``temporal_workflow``/``temporal_activity`` extras, and the
current activity's info when a line is logged inside one; while tracing is on, the current span's
``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from flowtide.guards import tracing

_WORKFLOW_KEYS = {"workflow_id": "workflow_id", "run_id": "run_id", "workflow_type": "workflow_type",
                  "task_queue": "task_queue", "attempt": "attempt", "activity_type": "activity_type",
                  "activity_id": "activity_id"}


def _temporal_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Flatten the SDK's context extras and the current activity into top-level ids."""
    # a line forwarded from the SDK core carries its core entry as an object; its text and target are in the
    # line already (message, logger name), and rendered it would only be a Python repr
    event.pop("temporal_log", None)
    record = event.get("_record")
    for extra in ("temporal_workflow", "temporal_activity"):
        ctx = getattr(record, extra, None) if record is not None else None
        if isinstance(ctx, dict):
            for key, name in _WORKFLOW_KEYS.items():
                if key in ctx:
                    event.setdefault(name, ctx[key])
    activity = sys.modules.get("temporalio.activity")
    if activity is not None and activity.in_activity():
        info = activity.info()
        event.setdefault("workflow_id", info.workflow_id)
        event.setdefault("run_id", info.workflow_run_id)
        event.setdefault("activity_type", info.activity_type)
    return event


def _shared() -> list[structlog.typing.Processor]:
    # trace_id/span_id of the current span while tracing is on (docs/tracing.md); a no-op otherwise
    return [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso"), _temporal_ids,
            tracing.log_ids]


def configure(default_level: str = "WARNING", stream: Any = None) -> None:
    """Configure structlog and stdlib logging once; ``FLOWTIDE_LOG_LEVEL`` overrides the level.

    Args:
        default_level: the level when ``FLOWTIDE_LOG_LEVEL`` is unset.
        stream: where lines go (default: standard error).
    """
    stream = stream or sys.stderr
    level = getattr(logging, os.environ.get("FLOWTIDE_LOG_LEVEL", default_level).upper(), logging.WARNING)
    tty = hasattr(stream, "isatty") and stream.isatty()
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False) if tty else structlog.processors.JSONRenderer())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    handler.set_name("flowtide")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "flowtide"]:  # ours only: keep pytest's and others'
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_shared(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
