"""structlog setup for the CLI and the worker: JSON when stderr is not a TTY, readable lines when it is."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(default_level: str = "WARNING") -> None:
    """Configure structlog and stdlib logging once; ``FLOWTIDE_LOG_LEVEL`` overrides the level."""
    level = getattr(logging, os.environ.get("FLOWTIDE_LOG_LEVEL", default_level).upper(), logging.WARNING)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False) if sys.stderr.isatty() else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
