"""Every flow file goes through one bounded reader: regular files only, at most MAX_FLOW_FILE_BYTES read.

``flowtide validate /dev/zero`` used to read forever; now it answers at once with exit 2 and one line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flowtide.client.flowfiles import read_flow_file
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.limits import MAX_FLOW_FILE_BYTES
from tests.support.cli import flowtide_process


async def test_validate_dev_zero_answers_at_once() -> None:
    started = time.monotonic()
    code, out, err = await flowtide_process("validate", "/dev/zero", timeout=30)
    assert code == 2 and time.monotonic() - started < 20
    said = (out + err).strip()
    assert said.count("\n") == 0 and "not a regular file" in said, said


def test_fifo_directory_and_oversize_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "flow.yaml"
    os.mkfifo(fifo)
    with pytest.raises(FlowValidationError, match="not a regular file"):
        read_flow_file(fifo)  # no writer: a blocking open would hang here
    with pytest.raises(FlowValidationError, match="is a directory"):
        read_flow_file(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_bytes(b" " * (MAX_FLOW_FILE_BYTES + 1))
    with pytest.raises(FlowValidationError, match="larger than"):
        read_flow_file(big)


async def test_deploy_reads_through_the_same_reader(tmp_path: Path) -> None:
    code, out, err = await flowtide_process("flows", "deploy", "/dev/zero", "--project", "p", env={
        "FLOWTIDE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}, timeout=30)
    assert code != 0 and "not a regular file" in out + err, (code, out, err)
