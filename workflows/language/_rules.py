"""Validation rules added after runs were recorded, and the switch that lets those runs replay as they ran.

The workflow checks its flow again on every replay. A rule added later (a remote ``$ref``, an unsafe webhook
header, a line break in an e-mail address) would refuse a document that a run already accepted, and the
replay would then fail the run where the recording went on: a non-determinism error. So the engine checks with
every rule; when that fails, it asks ``workflow.patched(NEWER_RULES)``: a run recorded before the rules gets
False and checks again without them (``without_newer_rules``), exactly as it did then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NEWER_RULES = "validation-rules-2026-12"  # the patch id: remote $ref, webhook headers, e-mail line breaks
_enforced: ContextVar[bool] = ContextVar("flowtide_newer_rules", default=True)


def newer_rules() -> bool:
    """Whether the rules added after recorded runs apply (always, except while replaying such a run)."""
    return _enforced.get()


@contextmanager
def without_newer_rules() -> Iterator[None]:
    """Check as before the newer rules, for the duration of the block."""
    token = _enforced.set(False)
    try:
        yield
    finally:
        _enforced.reset(token)
