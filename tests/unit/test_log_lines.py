"""Every log line of a Flowtide process is one JSON object (off a terminal) with plain values only."""

from __future__ import annotations

import io
import json
import logging

from flowtide.client.cli import logs


class CoreEntry:
    """Stands for the SDK core's log entry object, which the SDK's forwarding attaches as ``temporal_log``."""

    target = "temporalio_sdk_core::worker"


def test_a_line_forwarded_from_the_sdk_core_has_no_object_repr() -> None:
    out, root = io.StringIO(), logging.getLogger()
    level = root.level
    logs.configure("WARNING", stream=out)
    try:
        logging.getLogger("temporalio.core-sdk_core::worker").warning(
            "[TMPRL1104] Workflow task duration exceeded 5 seconds.", extra={"temporal_log": CoreEntry()})
    finally:
        root.removeHandler(next(h for h in root.handlers if h.get_name() == "flowtide"))
        root.setLevel(level)
    line = json.loads(out.getvalue().strip())
    assert line["event"].startswith("[TMPRL1104]") and line["level"] == "warning"
    assert "temporal_log" not in line and "CoreEntry" not in out.getvalue()
