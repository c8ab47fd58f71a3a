"""Values checked before a Temporal command is made, so that Temporal never refuses one.

A refused command (a payload over the server's blob limit, an id over its length limit, an invalid retry
policy) fails the workflow task, and Temporal retries that task forever: the run would hang in Running.
Checked here instead, they become the step's failure with a code.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flowtide.workflows.engine._state import json_size
from flowtide.workflows.errors import StepFailure

# Temporal's default blob limit is 2 MiB per payload (limit.blobSize.error); stay clear of it with room for
# the task's own fields and the payload metadata.
MAX_COMMAND_PAYLOAD_BYTES = 1_900_000
# Workflow ids may be 1,000 characters (limit.maxIDLength); child ids are derived from the parent's id, so
# a long parent id must not push a child's id past it.
MAX_CHILD_ID_CHARS = 255


def check_payload(value: Any, what: str) -> None:
    """Raise ``INPUT_TOO_LARGE`` when ``value`` would not fit in one Temporal payload."""
    size = json_size(value)
    if size > MAX_COMMAND_PAYLOAD_BYTES:
        raise StepFailure("INPUT_TOO_LARGE", f"{what} is {size} bytes, over the {MAX_COMMAND_PAYLOAD_BYTES} bytes "
                          "one Temporal payload can carry", detail="pass less data: a reference (a URL, a file "
                          "path, a datastore key) instead of the data itself", retryable=False)


def suffix_id(suffix: str) -> str:
    """A frame's activity-id suffix (``#3`` / ``#3.1``) as it appears in child workflow ids (``-3`` / ``-3-1``)."""
    return suffix.replace("#", "-").replace(".", "-")


def child_id(wanted: str) -> str:
    """``wanted``, or when it is too long, a prefix and a hash of it (deterministic, unique in practice)."""
    if len(wanted) <= MAX_CHILD_ID_CHARS:
        return wanted
    digest = hashlib.sha256(wanted.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{wanted[:MAX_CHILD_ID_CHARS - 17]}-{digest}"
