"""Flow files: the one bounded reader through which the CLI, the Python API and sub-flow references read a flow
document from disk (the flow language itself, under ``workflows/``, never touches a file)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language import Flow, load_flow_text
from flowtide.workflows.limits import MAX_FLOW_FILE_BYTES


def read_flow_file(path: str | Path) -> str:
    """The text of a flow file, read through the one bounded reader (every flow file the CLI opens).

    Regular files only (a FIFO, a device such as ``/dev/zero`` or a directory is refused at once, before any
    read), at most ``MAX_FLOW_FILE_BYTES`` (one more byte is read to know a file is larger), UTF-8.

    Raises:
        FlowValidationError: missing, not a regular file, unreadable, too large or not UTF-8; one problem.
    """
    source = str(path)

    def fail(message: str) -> FlowValidationError:
        return FlowValidationError([Problem("", message)], source)

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused by the check below anyway.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise fail(f"file not found: {source}") from None
    except IsADirectoryError:
        raise fail(f"{source} is a directory, not a flow file") from None
    except OSError as exc:
        raise fail(f"cannot read {source}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise fail(f"{source} is a directory, not a flow file")
        raise fail(f"{source} is not a regular file (a device, FIFO or socket cannot be a flow file)")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(MAX_FLOW_FILE_BYTES + 1)
        except OSError as exc:
            raise fail(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_FLOW_FILE_BYTES:
        raise fail(f"the file is larger than {MAX_FLOW_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"the file is not UTF-8 text (byte {exc.start})") from None


def load_flow_file(path: str | Path) -> Flow:
    """Read (``read_flow_file``) and validate a flow file (``.json``, ``.yaml``, ``.yml``).

    Raises:
        FlowValidationError: the file is missing, unreadable, too large, not UTF-8, or not a valid flow.
    """
    return load_flow_text(read_flow_file(path), str(path))
