"""Every expected CLI failure is one line on stderr (or one JSON object on stdout) with the right exit code."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from flowtide.dev.server import free_port
from tests.support.cli import flowtide_process as flowtide

ROOT = Path(__file__).resolve().parents[2]
HELLO = str(ROOT / "examples" / "hello.yaml")
ECHO = """
id: echo
steps:
  - stepId: back
    stepType: core.return
    input: {output: "{{ initial }}"}
"""


@pytest.fixture
def env(dev_server) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": dev_server.address}


@pytest.fixture
def echo(tmp_path) -> str:
    path = tmp_path / "echo.yaml"
    path.write_text(ECHO)
    return str(path)


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


async def test_binary_input_file_is_refused_in_one_line(tmp_path):
    blob = tmp_path / "blob.json"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    code, _, err = await flowtide("run", HELLO, "--input-file", str(blob))
    assert code == 2 and "not UTF-8" in one_line(err)


async def test_nan_and_infinity_are_not_json():
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}'):
        code, _, err = await flowtide("run", HELLO, "--input", text)
        assert code == 2 and "NaN or Infinity" in one_line(err), text


async def test_ten_megabyte_input_is_refused_as_invalid_not_unreachable(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"blob": "x" * 10_000_000}))
    code, out, err = await flowtide("run", HELLO, "--input-file", str(big), "--json")
    assert code == 2, err
    assert json.loads(out)["error"]["code"] == "INVALID_INPUT"
    assert "MB" in json.loads(out)["error"]["message"]


async def test_yaml_dates_reach_the_flow_as_iso_strings(env, echo, tmp_path):
    data = tmp_path / "in.yaml"
    data.write_text("day: 2024-01-31\nat: 2024-01-31T10:00:00Z\n")
    code, out, err = await flowtide("run", echo, "--input-file", str(data), "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["output"] == {"day": "2024-01-31", "at": "2024-01-31T10:00:00+00:00"}


async def test_lone_surrogate_in_input_does_not_crash_runs_show(env, echo):
    code, out, err = await flowtide("run", echo, "--input", '{"s": "a\\ud800b"}', "--json", env=env)
    assert code == 0, err
    run = json.loads(out)["workflowId"]
    code, out, err = await flowtide("runs", "show", run, env=env)
    assert code == 0 and "Traceback" not in err, err
    assert "\\ud800" in out


async def test_cancel_of_an_unknown_run(env):
    code, _, err = await flowtide("cancel", "no-such-run-42", env=env)
    assert code == 4 and "no run matches" in one_line(err)  # 4: not found
    code, out, err = await flowtide("cancel", "no-such-run-42", "--json", env=env)
    assert code == 4 and json.loads(out)["error"]["code"] == "RUN_NOT_FOUND" and not err.strip()


async def test_signal_with_bad_json_data():
    code, _, err = await flowtide("signal", "some-run", "approve", "--data", "{bad")
    assert code == 2 and "--data" in one_line(err)


async def test_replay_of_a_binary_history_file(tmp_path):
    blob = tmp_path / "history.json"
    blob.write_bytes(b"\x00\x01\xfe\xff" * 100)
    code, _, err = await flowtide("replay", "--history", str(blob))
    assert code == 2 and "not UTF-8" in one_line(err)


async def test_server_refusal_is_not_unreachable(env):
    code, _, err = await flowtide("runs", "list", "--namespace", "no-such-namespace", env=env)
    assert code == 4 and "refused" in one_line(err) and "no-such-namespace" in err  # 4: not found


async def test_only_an_unreachable_server_exits_3():
    addr = f"127.0.0.1:{free_port()}"
    code, out, err = await flowtide("runs", "list", "--address", addr, "--json")
    assert code == 3 and json.loads(out)["error"]["code"] == "TEMPORAL_UNREACHABLE"
    code, _, err = await flowtide("cancel", "x", env={"TEMPORAL_ADDRESS": addr})
    assert code == 3 and addr in one_line(err)


async def test_usage_errors_are_one_line_and_json_with_json():
    code, _, err = await flowtide("run")
    assert code == 2 and "required" in one_line(err)
    code, out, _ = await flowtide("validate", "--json", "--nope")
    assert code == 2 and json.loads(out)["error"]["code"] == "INVALID_INPUT"
    code, out, _ = await flowtide("--version")
    assert code == 0 and out.startswith("flowtide ")


async def test_sdk_core_warnings_are_log_lines_not_raw_text(env, echo, tmp_path):
    data = tmp_path / "big.json"
    data.write_text(json.dumps({"blob": "x" * 700_000}))  # over the SDK's 512 KiB payload warning, under 2 MiB
    code, _, err = await flowtide("run", echo, "--input-file", str(data), "--json", env=env)
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any("TMPRL1103" in line["event"] for line in lines), err[:500]


# Each bad argument of a command that would start the embedded server (no address configured), call Temporal, or
# open (create) the service database.
BAD_ARGUMENTS = [
    (["runs", "list", "--status", "bogus"], "unknown status 'bogus'"),
    (["runs", "watch", "0194c2", "--interval", "0"], "--interval must be"),
    (["cancel", "0194c2", "--grace", "nan"], "--grace must be"),
    (["schedule", "create", "ECHO", "--cron", "* * * * *", "--catchup-window", "soon"], "'soon' is not a duration"),
    (["schedule", "create", HELLO, "--cron", "* * * * *"], "'customerId' is a required property"),
    (["flows", "deploy", "BAD", "--project", "p"], "steps: must be a list of steps"),
    (["connections", "add", "crm"], "--kind is required"),
]


@pytest.mark.parametrize(("argv", "words"), BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
async def test_bad_arguments_are_refused_before_any_server_is_started_or_called(argv, words, echo, tmp_path,
                                                                                monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nsteps: 3\n")
    argv = [{"ECHO": echo, "BAD": str(bad)}.get(a, a) for a in argv]
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)  # nothing configured: the embedded server would start
    monkeypatch.setenv("HOME", str(tmp_path))  # no Temporal profile of the machine's user
    embedded, service = tmp_path / "embedded.db", tmp_path / "service.db"
    started = time.monotonic()
    code, _, err = await flowtide(*argv, env={"FLOWTIDE_DB": str(embedded),
                                              "FLOWTIDE_DATABASE_URL": f"sqlite:///{service}"}, timeout=60)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert "embedded Temporal server" not in err and not embedded.exists()  # no server was started for it
    assert not service.exists()  # nor a service database created
    assert time.monotonic() - started < 15  # the process start alone; a server start or a connect retry is more
