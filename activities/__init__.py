"""The activity registry: one Temporal activity type per step kind that touches the outside world."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowtide.activities.code import code_step
from flowtide.activities.datastore import datastore_query
from flowtide.activities.email import email_send
from flowtide.activities.files import file_read, file_write
from flowtide.activities.http import http_request
from flowtide.activities.llm import llm_chat

ACTIVITIES: dict[str, Callable[..., Any]] = {
    "core.http": http_request,
    "core.code": code_step,
    "email.send": email_send,
    "file.read": file_read,
    "file.write": file_write,
    "datastore.query": datastore_query,
    "llm.chat": llm_chat,
}


def all_activities() -> list[Callable[..., Any]]:
    """Every step activity, for ``Worker(activities=...)``."""
    return list(ACTIVITIES.values())
