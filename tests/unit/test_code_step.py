"""core.code through the activity boundary (a real activity context, no Temporal server): semantics,
console, error mapping, retries, secrets, time and memory limits, JavaScript."""

from __future__ import annotations

import asyncio
import glob
import json
import socket
import tempfile
import time
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import flowtide.activities.code as code_mod
from flowtide.activities._boundary import clip_console
from flowtide.activities._sandbox import RUNNER, Limits, console_with_note, js_runtime
from flowtide.activities.code import code_step, map_code_exception
from flowtide.workflows.errors import StepFailure
from tests.support import parts
from tests.support.activities import LoopTicks, step_task

CTX = {"input": {"name": "Ada", "amount": 3}, "steps": {"fetch": {"status": 200, "$meta": {"success": True}}},
       "errors": [{"code": "HTTP_TIMEOUT"}], "vars": {"region": "eu"}, "item": {"id": 7}, "index": 2}
needs_js = parts.needs(js_runtime() is not None, "JavaScript (mini-racer)", "pip install 'flowtide[js]'")


def task(inp: dict[str, Any], *, timeout: float = 10, retry: dict[str, Any] | None = None,
         context: dict[str, Any] | None = None, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    return step_task("core.code", {**inp, "$context": CTX if context is None else context}, step_id="code",
                     title="Code", timeout=timeout, retry=retry, limits=limits)


async def call(inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return await ActivityEnvironment().run(code_step, task(inp, **kw))


async def fails(inp: dict[str, Any], **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await call(inp, **kw)
    return info.value


def record(err: ApplicationError) -> dict[str, Any]:
    return err.details[0]


# ---- values, context, console ------------------------------------------------------------------------
async def test_return_value_and_every_context_name() -> None:
    script = ("return {'name': input['name'], 'status': steps['fetch']['status'], 'ok': steps['fetch']['$meta']"
              "['success'], 'firstError': errors[0]['code'], 'region': vars['region'], 'item': item, "
              "'index': index, 'params': params, 'env': env}")
    result = await call({"script": script, "limit": 5, "tags": ["a"]})
    assert result["output"] == {"name": "Ada", "status": 200, "ok": True, "firstError": "HTTP_TIMEOUT",
                                "region": "eu", "item": {"id": 7}, "index": 2,
                                "params": {"limit": 5, "tags": ["a"]}, "env": {}}
    assert result["warnings"] == [] and result["console"] == []


async def test_script_is_an_async_body_with_exact_line_numbers() -> None:
    script = 'import asyncio\ntext = """a\n  b"""\nawait asyncio.sleep(0.01)\nreturn text'
    assert (await call({"script": script}))["output"] == "a\n  b"  # no indentation added to the string
    err = await fails({"script": "x = 1\n\n\nraise ValueError('on line four')"})
    assert "line 4" in record(err)["detail"]


async def test_no_return_gives_null_and_scratch_directory_is_usable() -> None:
    assert (await call({"script": "x = 1"}))["output"] is None
    script = "open('notes.txt', 'w').write('kept')\nimport os\nreturn [open('notes.txt').read(), os.listdir('.')]"
    assert (await call({"script": script}))["output"] == ["kept", ["notes.txt"]]


async def test_scratch_directory_is_removed() -> None:
    pattern = f"{tempfile.gettempdir()}/flowtide-code-*"
    before = set(glob.glob(pattern))
    await call({"script": "open('big.bin', 'wb').write(b'x' * 100000)"})
    await fails({"script": "open('f', 'w').write('x')\nwhile True: pass"}, timeout=0.5)
    assert set(glob.glob(pattern)) == before


async def test_print_is_the_console() -> None:
    script = "print('hello', input['name'])\nprint('a\\nb', end='')\nimport sys\nprint('err', file=sys.stderr)"
    result = await call({"script": script})
    assert result["console"] == ["hello Ada", "a", "berr"]


async def test_console_truncation_by_lines_is_counted_exactly() -> None:
    result = await call({"script": "for i in range(150):\n    print('line', i)\nreturn 1"})
    console = result["console"]
    assert len(console) == 100 and console[98] == "line 98"
    assert console[-1].startswith("[console truncated: 51 more line(s) not kept; limit 100 lines / 10 KB]")
    assert clip_console(console) == console  # the boundary's own cut has nothing left to do


async def test_console_truncation_by_bytes() -> None:
    result = await call({"script": "for i in range(50):\n    print(str(i) * 1000)"})
    console = result["console"]
    assert sum(map(len, console)) <= 10 * 1024
    assert console[-1].startswith("[console truncated:") and len(console) < 12


def test_console_note_fits_the_boundary_limits() -> None:
    limits = Limits(timeout_s=1, memory_mb=64)
    lines = ["x" * 100] * 100
    out = console_with_note(lines, 5, limits)
    assert len(out) == 100 and out[-1].startswith("[console truncated: 6 more")
    assert console_with_note(["a"], 0, limits) == ["a"]


# ---- errors ----------------------------------------------------------------------------------------
async def test_raise_is_code_exception_and_retryable_in_smart_mode() -> None:
    err = await fails({"script": "print('before')\nraise ValueError('bad amount')"})
    rec = record(err)
    assert err.type == "CODE_EXCEPTION" and rec["type"] == "execution"
    assert rec["message"] == "ValueError: bad amount" and "line 2" in rec["detail"]
    assert not err.non_retryable  # class unknown: retried optimistically
    assert err.details[2] == ["before"]  # the console survives the failure


async def test_raise_names_its_code() -> None:
    err = await fails({"script": "e = RuntimeError('x')\ne.code = 'PARTNER_DOWN'\nraise e"})
    assert err.type == "PARTNER_DOWN"
    err = await fails({"script": "class QUOTA_EXCEEDED(Exception):\n    pass\nraise QUOTA_EXCEEDED('no')"})
    assert err.type == "QUOTA_EXCEEDED"
    err = await fails({"script": "class Oops(Exception):\n    pass\nraise Oops('no')"})
    assert err.type == "CODE_EXCEPTION"  # not spelled like a code


async def test_dollar_error_is_operational_and_final_in_smart_mode() -> None:
    script = "return {'$error': {'code': 'PARTNER_REJECTED', 'message': 'rejected'}, 'status': 400}"
    err = await fails({"script": script})
    rec = record(err)
    assert err.type == "PARTNER_REJECTED" and rec["type"] == "operational" and rec["message"] == "rejected"
    assert err.non_retryable
    assert err.details[1] == {"status": 400}  # the output stays readable


async def test_dollar_error_in_custom_mode_follows_the_denylist() -> None:
    script = "return {'$error': {'code': 'RATE_LIMITED', 'message': 'slow down'}}"
    custom = {"mode": "custom", "maxRetries": 5, "nonRetryableErrorCodes": ["INVALID_REQUEST"]}
    assert not (await fails({"script": script}, retry=custom)).non_retryable
    denied = {**custom, "nonRetryableErrorCodes": ["RATE_LIMITED"]}
    assert (await fails({"script": script}, retry=denied)).non_retryable


async def test_dollar_warning_keeps_the_other_keys_as_output() -> None:
    script = "return {'synced': 3, '$warning': {'code': 'PARTIAL_SYNC', 'message': '1 of 4 rows failed'}}"
    result = await call({"script": script})
    assert result["output"] == {"synced": 3}
    [warning] = result["warnings"]
    assert warning["code"] == "PARTIAL_SYNC" and warning["severity"] == "warning"
    assert warning["type"] == "operational" and warning["message"] == "1 of 4 rows failed"


async def test_syntax_error() -> None:
    err = await fails({"script": "x = 1\nif x\n    return 2"})
    assert err.type == "CODE_SYNTAX_ERROR" and err.non_retryable and "(line 2)" in record(err)["message"]


@pytest.mark.parametrize("value", ["{1, 2}", "float('nan')", "object()", "{'a': b'bytes'}"])
async def test_non_json_result(value: str) -> None:
    err = await fails({"script": f"return {value}"})
    assert err.type == "CODE_RESULT_INVALID" and err.non_retryable


async def test_result_over_the_output_limit() -> None:
    err = await fails({"script": "return 'x' * 5000"}, limits={"outputBytes": 1000})
    assert err.type == "OUTPUT_TOO_LARGE"


async def test_invalid_inputs() -> None:
    assert (await fails({"script": 42})).type == "VALIDATION_ERROR"
    assert (await fails({"script": "return 1", "language": "ruby"})).type == "CODE_LANGUAGE_UNSUPPORTED"
    assert (await fails({"script": "return 1", "memoryMb": 10})).type == "VALIDATION_ERROR"
    assert (await fails({"script": "return 1", "env": ["NOT VALID"]})).type == "VALIDATION_ERROR"
    assert (await fails({"script": "return 1", "allowNetwork": "yes"})).type == "VALIDATION_ERROR"


def test_parent_side_exceptions_are_mapped() -> None:
    assert map_code_exception(OSError(24, "Too many open files")) == StepFailure(
        "SUBPROCESS_CRASHED", "the script process could not be started: [Errno 24] Too many open files")
    mapped = map_code_exception(TypeError("not serializable"))
    assert mapped is not None and mapped.code == "SUBPROCESS_INVALID_INPUT"
    assert map_code_exception(KeyError("x")) is None


# ---- env and secrets ---------------------------------------------------------------------------------
async def test_env_secrets_are_redacted_and_variables_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_SECRET_API_KEY", "sk-live-0123456789")
    monkeypatch.setenv("FLOWTIDE_VAR_REGION", "eu-west-1")
    script = "print('key is', env['API_KEY'])\nreturn {'key': env['API_KEY'], 'region': env['REGION']}"
    result = await call({"script": script, "env": ["API_KEY", "REGION"]})
    assert result["output"] == {"key": "***", "region": "eu-west-1"}
    assert result["console"] == ["key is ***"]
    err = await fails({"script": "raise ValueError(env['API_KEY'])", "env": ["API_KEY"]})
    assert "sk-live" not in json.dumps(err.details) and "***" in record(err)["message"]


async def test_missing_env_name_is_auth_missing() -> None:
    err = await fails({"script": "return 1", "env": ["FLOWTIDE_NOT_SET_ANYWHERE"]})
    assert err.type == "AUTH_MISSING" and err.non_retryable


# ---- limits ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["while True:\n    pass", "import time\ntime.sleep(60)",
                                    "import asyncio\nawait asyncio.sleep(60)"])
async def test_timeout_is_enforced_within_ten_percent(script: str) -> None:
    started = time.monotonic()
    err = await fails({"script": script}, timeout=2)
    elapsed = time.monotonic() - started
    assert err.type == "SUBPROCESS_TIMEOUT" and not err.non_retryable
    assert 1.8 <= elapsed <= 2.2, elapsed


async def test_memory_limit_stops_a_large_allocation() -> None:
    err = await fails({"script": "x = bytearray(1024 * 1024 * 1024)\nreturn len(x)", "memoryMb": 64})
    assert err.type == "SUBPROCESS_OUT_OF_MEMORY" and err.non_retryable


@pytest.mark.parametrize("memory_mb", [64, 256])
async def test_memory_limit_is_accurate_within_ten_percent(memory_mb: int) -> None:
    script = ("blocks = []\ntry:\n    while True:\n        blocks.append(bytearray(1 << 20))\n"
              "except MemoryError:\n    n = len(blocks)\n    blocks.clear()\n    return n")
    got = (await call({"script": script, "memoryMb": memory_mb}))["output"]
    assert 0.9 * memory_mb <= got <= memory_mb, got


async def test_allow_network_reaches_an_allowed_address(monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    port = server.getsockname()[1]
    script = ("import socket\nwith socket.create_connection(('127.0.0.1', params['port']), 5) as s:\n"
              "    s.sendall(b'hello from a script')\nreturn 'sent'")
    try:
        monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")
        accepting = asyncio.ensure_future(asyncio.to_thread(server.accept))
        assert (await call({"script": script, "port": port, "allowNetwork": True}))["output"] == "sent"
        conn, _ = await accepting
        assert conn.recv(100) == b"hello from a script"
        conn.close()
        monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "")
        err = await fails({"script": script, "port": port, "allowNetwork": True})
        assert "not a public address" in record(err)["message"]
    finally:
        server.close()


async def test_a_script_connects_to_addresses_not_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name judged in the hook could resolve elsewhere for the connect itself (DNS rebinding): the hook judges
    addresses only; create_connection resolves first and connects to an address, so names still work there."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    port = server.getsockname()[1]
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")
    try:
        raw = "import socket\ns = socket.socket()\ns.connect(('localhost', params['port']))\nreturn 'sent'"
        err = await fails({"script": raw, "port": port, "allowNetwork": True})
        assert "connect to IP addresses" in record(err)["message"]
        resolved = ("import socket\nfamily = socket.AF_INET\nwith socket.create_connection(('localhost', "
                    "params['port']), 5) as s:\n    s.sendall(b'x')\nreturn 'sent'")
        accepting = asyncio.ensure_future(asyncio.to_thread(server.accept))
        assert (await call({"script": resolved, "port": port, "allowNetwork": True}))["output"] == "sent"
        (await accepting)[0].close()
    finally:
        server.close()


async def test_scripts_run_concurrently_without_blocking_the_worker_loop() -> None:
    async with LoopTicks(0.05) as beat:
        started = time.monotonic()
        results = await asyncio.gather(*(call({"script": f"import time\ntime.sleep(1)\nreturn {i}"})
                                         for i in range(4)))
        elapsed = time.monotonic() - started
    assert [r["output"] for r in results] == [0, 1, 2, 3]
    assert elapsed < 3.0 and beat.ticks >= 0.6 * elapsed / 0.05


# ---- JavaScript ------------------------------------------------------------------------------------------
@needs_js
async def test_javascript_seed_names_console_and_return() -> None:
    script = ("console.log('hi', input.name, {a: 1});\nconst s = $steps.fetch.status;\n"
              "await null;\nreturn {s, errs: $errors.length, p: params.limit, item: $item, idx: $index}")
    result = await call({"script": script, "language": "javascript", "limit": 5})
    assert result["output"] == {"s": 200, "errs": 1, "p": 5, "item": {"id": 7}, "idx": 2}
    assert result["console"] == ['hi Ada {"a":1}']


@needs_js
async def test_javascript_errors_warnings_and_limits() -> None:
    js = {"language": "javascript"}
    err = await fails({**js, "script": "throw new Error('Missing or invalid email')"})
    assert err.type == "CODE_EXCEPTION" and record(err)["message"] == "Error: Missing or invalid email"
    err = await fails({**js, "script": "return { $error: { code: 'INVALID_REQUEST', message: 'bad' } }"})
    assert err.type == "INVALID_REQUEST" and record(err)["type"] == "operational"
    result = await call({**js, "script": "return {n: 1, $warning: {code: 'PARTIAL', message: 'half'}}"})
    assert result["output"] == {"n": 1} and result["warnings"][0]["code"] == "PARTIAL"
    assert (await fails({**js, "script": "return {"})).type == "CODE_SYNTAX_ERROR"
    started = time.monotonic()
    assert (await fails({**js, "script": "while (true) {}"}, timeout=1.5)).type == "SUBPROCESS_TIMEOUT"
    assert time.monotonic() - started <= 1.65
    err = await fails({**js, "memoryMb": 64, "script": "const a = []; while (true) a.push(new Array(1e6).fill(1))"})
    assert err.type == "SUBPROCESS_OUT_OF_MEMORY"


async def test_javascript_without_mini_racer_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_mod, "js_runtime", lambda: None)
    err = await fails({"script": "return 1", "language": "javascript"})
    assert err.type == "CODE_LANGUAGE_UNSUPPORTED" and "flowtide[js]" in record(err)["message"]


async def test_cancelling_the_step_kills_the_script_and_cleans_up() -> None:
    pattern = f"{tempfile.gettempdir()}/flowtide-code-*"
    before = set(glob.glob(pattern))
    step = asyncio.ensure_future(call({"script": "open('f', 'w').close()\nimport time\ntime.sleep(30)"}))
    await asyncio.sleep(0.5)
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    await asyncio.sleep(0.2)  # the directory is removed in a worker thread
    running = [p for p in glob.glob("/proc/[0-9]*/cmdline") if str(RUNNER).encode() in _read(p)]
    assert running == [] and set(glob.glob(pattern)) == before


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def test_a_missing_kernel_layer_is_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from structlog.testing import capture_logs

    from flowtide.activities._sandbox import SandboxOutcome

    monkeypatch.setattr(code_mod, "_warned_layers", set())
    with capture_logs() as logs:
        for _ in range(2):
            code_mod._warn_missing_layers(SandboxOutcome("ok", layers=["no_new_privs", "seccomp"]))
        code_mod._warn_missing_layers(SandboxOutcome("timeout"))  # no report: nothing to say
    assert [(e["event"], e["layer"]) for e in logs] == [("code sandbox layer unavailable on this worker", "landlock")]

