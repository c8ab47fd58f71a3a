"""A failing command under ``-o json`` or ``-o jsonl`` writes one compact ``{"error": {"code", "message"}}``
object on stderr and nothing on stdout (stdout holds only data), with the documented exit code; ``--json``
alone keeps the object on stdout; the text (and ``-o table``) is one line on stderr. In-process."""

from __future__ import annotations

import json

import pytest

from flowtide.dev.server import free_port
from tests.support.cli import flowtide

# (argv, exit code, error code): not found (4), a usage error (2), an unreachable server (3)
FAILURES = [
    (["examples", "nope"], 4, "NOT_FOUND"),
    (["validate", "--nope"], 2, "INVALID_INPUT"),
    (["runs", "list", "--address", "UNREACHABLE"], 3, "TEMPORAL_UNREACHABLE"),
]


@pytest.mark.parametrize(("argv", "exit_code", "code"), FAILURES, ids=lambda v: str(v))
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
async def test_an_error_under_o_json_is_one_object_on_stderr(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                             exit_code: int, code: str, fmt: str) -> None:
    argv = [a.replace("UNREACHABLE", f"127.0.0.1:{free_port()}") for a in argv]
    status, out, err = await flowtide(capsys, *argv, "-o", fmt)
    assert status == exit_code and out == "", (out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err  # one object, on one line
    error = json.loads(lines[0])["error"]
    assert error["code"] == code and error["message"], error


@pytest.mark.parametrize(("argv", "exit_code", "code"), FAILURES, ids=lambda v: str(v))
async def test_text_is_one_line_and_json_alone_stays_on_stdout(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                                exit_code: int, code: str) -> None:
    argv = [a.replace("UNREACHABLE", f"127.0.0.1:{free_port()}") for a in argv]
    for extra in ([], ["-o", "table"]):
        status, out, err = await flowtide(capsys, *argv, *extra)
        assert status == exit_code and out == "" and len(err.splitlines()) == 1, (extra, out, err)
        assert err.startswith("flowtide: ") and "Traceback" not in err
    status, out, err = await flowtide(capsys, *argv, "--json")
    assert status == exit_code and err == "" and json.loads(out)["error"]["code"] == code, (out, err)
