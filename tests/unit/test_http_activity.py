"""core.http against real local HTTP servers (the demo service and an edge-case server), through the boundary."""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import errno
import json
import socket
import ssl
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import flowtide.guards.network as netguard
from flowtide.activities._http_errors import HTTPX_EXCEPTION_CODES, retry_after_seconds
from flowtide.activities.http import http_request, map_http_exception
from flowtide.workflows.errors import TAXONOMY
from tests.support.activities import step_task
from tests.support.http_server import EdgeServer


@pytest.fixture(scope="module")
def edge() -> Iterator[EdgeServer]:
    with EdgeServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")


def task(inp: dict[str, Any], *, timeout: float = 10, limits: dict[str, Any] | None = None,
         retry: dict[str, Any] | None = None) -> dict[str, Any]:
    return step_task("core.http", inp, step_id="call", title="Call", timeout=timeout, retry=retry, limits=limits)


def env(attempt: int = 1) -> ActivityEnvironment:
    e = ActivityEnvironment()
    e.info = dataclasses.replace(e.info, attempt=attempt)
    return e


async def call(inp: dict[str, Any], *, attempt: int = 1, **kw: Any) -> dict[str, Any]:
    return await env(attempt).run(http_request, task(inp, **kw))


async def fails(inp: dict[str, Any], **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await env().run(http_request, task(inp, **kw))
    return info.value


def record(err: ApplicationError) -> dict[str, Any]:
    return err.details[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- success -----------------------------------------------------------------------------------------------


async def test_get_json(service):
    res = await call({"url": service.url + "/ok"})
    out = res["output"]
    assert out["status"] == 200 and out["body"] == {"ok": True}
    assert out["headers"]["content-type"] == "application/json"
    assert all(k == k.lower() for k in out["headers"])
    assert res["warnings"] == [] and res["attempt"] == 1


async def test_text_binary_and_charset(edge):
    assert (await call({"url": edge.url + "/latin1"}))["output"]["body"] == "café"
    text = (await call({"url": edge.url + "/textjson", "responseType": "text"}))["output"]
    assert text["body"] == '{"a": 1}'
    binary = (await call({"url": edge.url + "/bytes?n=512"}))["output"]
    assert binary["bodyEncoding"] == "base64"
    assert base64.b64decode(binary["body"]) == bytes(range(256)) * 2
    forced = (await call({"url": edge.url + "/textjson", "responseType": "binary"}))["output"]
    assert base64.b64decode(forced["body"]) == b'{"a": 1}'


async def test_compressed_bodies_are_decoded(edge):
    assert (await call({"url": edge.url + "/deflate-raw"}))["output"]["body"] == "raw deflate body"


async def test_declared_json_that_does_not_parse(edge):
    res = await call({"url": edge.url + "/badjson"})
    assert res["output"]["body"] == "{not json"
    assert [w["code"] for w in res["warnings"]] == ["HTTP_INVALID_RESPONSE"]
    err = await fails({"url": edge.url + "/badjson", "responseType": "json"})
    assert err.type == "HTTP_INVALID_RESPONSE" and err.non_retryable


async def test_request_encodings_reach_the_server(edge):
    echo = edge.url + "/echo"
    body = (await call({"url": echo, "method": "put", "json": {"a": [1, "é"]}}))["output"]["body"]
    assert body["method"] == "PUT" and json.loads(body["body"]) == {"a": [1, "é"]}
    assert body["headers"]["content-type"] == "application/json"
    body = (await call({"url": echo, "method": "POST", "form": {"name": "a b", "n": 2}}))["output"]["body"]
    assert body["body"] == "name=a+b&n=2"
    assert body["headers"]["content-type"] == "application/x-www-form-urlencoded"
    body = (await call({"url": echo, "method": "POST", "body": "plain", "headers": {"Content-Type": "text/plain"}}
                       ))["output"]["body"]
    assert body["body"] == "plain" and body["headers"]["content-type"] == "text/plain"
    body = (await call({"url": echo, "method": "POST", "body": {"k": "v"},
                        "headers": {"content-type": "application/x-www-form-urlencoded"}}))["output"]["body"]
    assert body["body"] == "k=v"
    body = (await call({"url": echo + "?x=1", "query": {"tag": ["a", "b"], "on": True, "skip": None}}
                       ))["output"]["body"]
    assert body["query"] == {"x": "1", "tag": "b", "on": "true"}
    assert body["headers"]["user-agent"].startswith("flowtide")


async def test_redirects(service):
    res = await call({"url": service.url + "/redirect?to=/ok"})
    assert res["output"]["status"] == 200 and res["output"]["body"] == {"ok": True}
    res = await call({"url": service.url + "/redirect?to=/ok", "followRedirects": False})
    assert res["output"]["status"] == 302 and res["output"]["headers"]["location"] == "/ok"


async def test_too_many_redirects(edge):
    err = await fails({"url": edge.url + "/loop"})
    assert err.type == "HTTP_TOO_MANY_REDIRECTS" and err.non_retryable


async def test_ok_statuses_turn_an_error_status_into_success(service):
    res = await call({"url": service.url + "/status/404", "okStatuses": [404, "410"]})
    assert res["output"]["status"] == 404 and res["output"]["body"]["status"] == 404


# --- status mapping --------------------------------------------------------------------------------------


async def test_404_is_an_operational_client_error_with_readable_output(service):
    err = await fails({"url": service.url + "/status/404"})
    rec = record(err)
    assert err.type == "HTTP_CLIENT_ERROR" and err.non_retryable
    assert rec["type"] == "operational" and rec["providerStatus"] == 404 and rec["retryable"] is False
    assert rec["message"] == f"GET {service.url}/status/404 returned 404"
    assert "status 404 on purpose" in rec["detail"]
    output = err.details[1]
    assert output["status"] == 404 and output["body"]["message"] == "status 404 on purpose"


@pytest.mark.parametrize(("status", "code", "retryable"), [
    (400, "HTTP_CLIENT_ERROR", False), (401, "HTTP_UNAUTHORIZED", False), (403, "HTTP_UNAUTHORIZED", False),
    (408, "HTTP_TIMEOUT", True), (409, "HTTP_CLIENT_ERROR", False), (422, "HTTP_CLIENT_ERROR", False),
    (500, "HTTP_SERVER_ERROR", True), (502, "HTTP_SERVER_ERROR", True), (503, "HTTP_SERVER_ERROR", True),
])
async def test_status_codes(service, status, code, retryable):
    err = await fails({"url": f"{service.url}/status/{status}"})
    assert err.type == code and err.non_retryable is (not retryable)
    assert record(err)["providerStatus"] == status and err.details[1]["status"] == status


async def test_429_without_retry_after_uses_the_policy_backoff(service):
    err = await fails({"url": service.url + "/ratelimit"})
    assert err.type == "HTTP_RATE_LIMITED" and not err.non_retryable and err.next_retry_delay is None


async def test_429_retry_after_seconds_and_http_date(service):
    err = await fails({"url": service.url + "/ratelimit?retry_after=7"})
    assert err.next_retry_delay == timedelta(seconds=7)
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    err = await fails({"url": service.url + "/ratelimit?retry_after=" + quote(when)})
    assert err.next_retry_delay is not None and 25 <= err.next_retry_delay.total_seconds() <= 30
    err = await fails({"url": service.url + "/ratelimit?retry_after=999999"})
    assert err.next_retry_delay == timedelta(hours=1)


async def test_post_500_is_final_but_post_429_retries(service):
    err = await fails({"url": service.url + "/status/500", "method": "POST", "json": {}})
    assert err.type == "HTTP_SERVER_ERROR" and err.non_retryable
    err = await fails({"url": service.url + "/ratelimit", "method": "POST", "json": {}})
    assert err.type == "HTTP_RATE_LIMITED" and not err.non_retryable
    err = await fails({"url": service.url + "/status/503", "method": "PATCH"})
    assert err.non_retryable


# --- time and size limits --------------------------------------------------------------------------------


async def test_step_timeout_is_timeout(service, edge):
    for url in (service.url + "/slow?ms=3000", edge.url + "/drip"):  # a slow answer, a slow body
        t0 = time.monotonic()
        err = await fails({"url": url}, timeout=0.5)
        assert err.type == "TIMEOUT" and not err.non_retryable and time.monotonic() - t0 < 2


async def test_request_timeout_is_http_timeout(service):
    for value in (0.3, "0.3"):  # a template renders numbers inside text as strings
        err = await fails({"url": service.url + "/slow?ms=3000", "timeout": value}, timeout=5)
        assert err.type == "HTTP_TIMEOUT" and not err.non_retryable and "ReadTimeout" in str(err)


async def test_declared_large_body_is_refused_before_reading(service):
    err = await fails({"url": service.url + "/large?kb=1024"})
    assert err.type == "HTTP_RESPONSE_TOO_LARGE" and err.non_retryable
    assert "declares 1048576 bytes" in str(err) and "262144" in str(err)
    err = await fails({"url": service.url + "/large?kb=2"}, limits={"httpResponseBytes": 1000})
    assert err.type == "HTTP_RESPONSE_TOO_LARGE"
    assert (await call({"url": service.url + "/large?kb=2"}, limits={"httpResponseBytes": 4096}))["output"]


async def test_endless_body_stops_at_the_limit_without_buffering(edge):
    tracemalloc.start()
    try:
        t0 = time.monotonic()
        err = await fails({"url": edge.url + "/endless"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.type == "HTTP_RESPONSE_TOO_LARGE" and err.non_retryable
    assert time.monotonic() - t0 < 5
    assert peak < 8 * 2**20, f"peak {peak} bytes: the body was buffered"


async def test_gzip_bomb_stops_at_the_limit_while_inflating(edge):
    tracemalloc.start()
    try:
        err = await fails({"url": edge.url + "/gzip-bomb"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.type == "HTTP_RESPONSE_TOO_LARGE" and "is larger" in str(err)
    assert peak < 8 * 2**20, f"peak {peak} bytes: the 64 MiB body was inflated in memory"


async def test_corrupt_gzip_is_invalid_response(edge):
    err = await fails({"url": edge.url + "/gzip-corrupt"})
    assert err.type == "HTTP_INVALID_RESPONSE" and err.non_retryable


async def test_large_error_body_keeps_the_status_code(service, edge):
    err = await fails({"url": edge.url + "/echo?status=500&pad=" + "x" * 3000}, limits={"httpResponseBytes": 100})
    assert err.type == "HTTP_SERVER_ERROR" and err.details[1]["bodyTruncated"] is True


# --- network failures -------------------------------------------------------------------------------------


async def test_connection_refused():
    port = free_port()
    err = await fails({"url": f"http://127.0.0.1:{port}/x"})
    assert err.type == "ECONNREFUSED" and not err.non_retryable
    assert "Connect call failed" in str(err) or "refused" in str(err).lower()


@pytest.mark.parametrize(("gai_errno", "code", "retryable"), [
    (socket.EAI_NONAME, "ENOTFOUND", False), (socket.EAI_AGAIN, "EAI_AGAIN", True),
])
async def test_dns_failures(monkeypatch, gai_errno, code, retryable):
    def resolver(host: str, port: int) -> list[Any]:
        raise socket.gaierror(gai_errno, "simulated resolver answer")

    monkeypatch.setattr(netguard, "_system_resolve", resolver)
    err = await fails({"url": "http://no-such-host.example/"})
    assert err.type == code and err.non_retryable is (not retryable)
    assert "simulated resolver answer" in str(err)


async def test_protocol_errors_and_resets(edge):
    assert (await fails({"url": edge.url + "/garbage"})).type == "HTTP_PROTOCOL_ERROR"
    drop = await fails({"url": edge.url + "/drop"})
    assert drop.type == "HTTP_PROTOCOL_ERROR" and "disconnected" in str(drop)
    reset = await fails({"url": edge.url + "/reset"})
    assert reset.type in ("ECONNRESET", "HTTP_PROTOCOL_ERROR") and not reset.non_retryable


# --- input errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("inp", [
    {}, {"url": ""}, {"url": "http://"}, {"url": "http://h/", "method": "GE T"},
    {"url": "http://h/", "headers": {"X-A": "a\r\nInjected: 1"}}, {"url": "http://h/", "headers": {"Bad Name": "x"}},
    {"url": "http://h/", "json": {}, "body": "x"}, {"url": "http://h/", "timeout": -1},
    {"url": "http://h/", "timeout": "soon"}, {"url": "http://h/", "timeout": True},
    {"url": "http://h/", "responseType": "xml"}, {"url": "http://h/", "auth": {"type": "digest"}},
    {"url": "http://h/", "okStatuses": ["nope"]}, {"url": "http://[::1/"},
])
async def test_invalid_input_is_refused_without_retry(inp):
    err = await fails(inp)
    assert err.type == "HTTP_INVALID_REQUEST" and err.non_retryable


async def test_empty_auth_token_is_auth_missing():
    err = await fails({"url": "http://h/", "auth": {"type": "bearer", "token": ""}})
    assert err.type == "AUTH_MISSING" and err.non_retryable


# --- idempotency and secrets ----------------------------------------------------------------------------


async def test_idempotency_key_is_stable_across_attempts(edge):
    echo = edge.url + "/echo"
    first = (await call({"url": echo, "method": "POST", "json": {}}, attempt=1))["output"]["body"]["headers"]
    second = (await call({"url": echo, "method": "POST", "json": {}}, attempt=2))["output"]["body"]["headers"]
    assert first["idempotency-key"] == second["idempotency-key"] == "run-1:call"
    patch = (await call({"url": echo, "method": "PATCH"}))["output"]["body"]["headers"]
    assert patch["idempotency-key"] == "run-1:call"
    get = (await call({"url": echo}))["output"]["body"]["headers"]
    assert "idempotency-key" not in get
    off = (await call({"url": echo, "method": "POST", "idempotencyKey": False}))["output"]["body"]["headers"]
    assert "idempotency-key" not in off
    own = (await call({"url": echo, "method": "POST", "idempotencyKey": "order-7"}))["output"]["body"]["headers"]
    assert own["idempotency-key"] == "order-7"
    forced = (await call({"url": echo, "method": "PUT", "idempotencyKey": True}))["output"]["body"]["headers"]
    assert forced["idempotency-key"] == "run-1:call"
    header = (await call({"url": echo, "method": "POST", "headers": {"idempotency-key": "mine"}}
                         ))["output"]["body"]["headers"]
    assert header["idempotency-key"] == "mine"


async def test_secrets_are_redacted_from_output_and_errors(edge, monkeypatch):
    secret = "sk-live-4f8a9c2e77"
    monkeypatch.setenv("FLOWTIDE_SECRET_API_KEY", secret)
    inp = {"url": edge.url + "/echo?token={{ secrets.API_KEY }}", "headers": {"X-Api-Key": "{{ secrets.API_KEY }}"}}
    res = await call(inp)
    assert res["output"]["body"]["headers"]["x-api-key"] == "***"
    assert secret not in json.dumps(res)
    err = await fails({**inp, "url": edge.url + "/echo?status=500&token={{ secrets.API_KEY }}"})
    assert err.type == "HTTP_SERVER_ERROR"
    assert "token=***" in str(err) and secret not in str(err)
    assert secret not in json.dumps(err.details) and "***" in json.dumps(err.details[1])


async def test_auth_credentials_are_sent_and_redacted(edge, monkeypatch):
    monkeypatch.setenv("FLOWTIDE_SECRET_TOKEN", "tok-123456")
    monkeypatch.setenv("FLOWTIDE_SECRET_PASS", "pa55word")
    bearer = await call({"url": edge.url + "/echo", "auth": {"type": "bearer", "token": "{{ secrets.TOKEN }}"}})
    assert bearer["output"]["body"]["headers"]["authorization"] == "Bearer ***"
    basic = await call({"url": edge.url + "/echo",
                        "auth": {"type": "basic", "username": "robot", "password": "{{ secrets.PASS }}"}})
    encoded = base64.b64encode(b"robot:pa55word").decode()
    assert basic["output"]["body"]["headers"]["authorization"] == "Basic ***"
    assert encoded not in json.dumps(basic) and "pa55word" not in json.dumps(basic)


async def test_user_info_password_never_shows(edge):
    err = await fails({"url": edge.url.replace("http://", "http://user:hunter22@") + "/echo?status=404"})
    encoded = base64.b64encode(b"user:hunter22").decode()
    assert err.details[1]["body"]["headers"]["authorization"] == "Basic ***"
    for text in (str(err), json.dumps(err.details)):
        assert "hunter22" not in text and encoded not in text


# --- the mapper, without a network ----------------------------------------------------------------------


def _exported_exception_classes() -> list[type[BaseException]]:
    names = set(httpx.__all__) | {n for n in dir(httpx) if not n.startswith("_")}
    found = {getattr(httpx, n) for n in names}
    return sorted((c for c in found if isinstance(c, type) and issubclass(c, BaseException)),
                  key=lambda c: c.__name__)


def _instance(cls: type[BaseException]) -> BaseException:
    request = httpx.Request("GET", "http://api.example/x")
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("bad status", request=request, response=httpx.Response(418, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("provider text", request=request)
    try:
        return cls("provider text")  # type: ignore[call-arg]
    except TypeError:
        return cls()  # the stream errors take no argument


def test_every_exported_httpx_exception_is_mapped_on_purpose():
    classes = _exported_exception_classes()
    assert len(classes) >= 25
    missing = [c.__name__ for c in classes if c not in HTTPX_EXCEPTION_CODES]
    assert not missing, f"httpx exports exception classes with no code in HTTPX_EXCEPTION_CODES: {missing}"
    for cls in classes:
        failure = map_http_exception(_instance(cls))
        assert failure is not None and failure.code in TAXONOMY, cls
        assert TAXONOMY[failure.code].family in ("HTTP", "Core"), (cls, failure.code)


def _raised(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


def _conn(cause: BaseException) -> BaseException:
    return _raised(httpx.ConnectError("All connection attempts failed"), cause)


@pytest.mark.parametrize(("exc", "code", "text"), [
    (_conn(OSError("All connection attempts failed")), "HTTP_CONNECTION_FAILED", "All connection attempts failed"),
    (_conn(ConnectionRefusedError(111, "Connection refused")), "ECONNREFUSED", "Connection refused"),
    (_conn(ExceptionGroup("all", [ConnectionRefusedError(111, "Connect call failed")])), "ECONNREFUSED",
     "Connect call failed"),
    (_conn(socket.gaierror(socket.EAI_NONAME, "Name or service not known")), "ENOTFOUND", "Name or service"),
    (_conn(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")), "EAI_AGAIN", "Temporary failure"),
    (_conn(socket.gaierror(socket.EAI_FAIL, "Non-recoverable")), "HTTP_CONNECTION_FAILED", "Non-recoverable"),
    (_conn(OSError(errno.EHOSTUNREACH, "No route to host")), "HTTP_CONNECTION_FAILED", "No route to host"),
    (_raised(httpx.ReadError(""), ConnectionResetError(104, "Connection reset by peer")), "ECONNRESET",
     "Connection reset by peer"),
    (_raised(httpx.WriteError("x"), BrokenPipeError(32, "Broken pipe")), "ECONNRESET", "Broken pipe"),
    (httpx.ConnectTimeout("connect timed out"), "ETIMEDOUT", "connect timed out"),
    (httpx.ReadTimeout("read timed out"), "HTTP_TIMEOUT", "read timed out"),
    (httpx.WriteTimeout(""), "HTTP_TIMEOUT", "WriteTimeout"),
    (httpx.PoolTimeout("pool"), "HTTP_TIMEOUT", "pool"),
    (httpx.RemoteProtocolError("illegal status line"), "HTTP_PROTOCOL_ERROR", "illegal status line"),
    (httpx.LocalProtocolError("Illegal header value"), "HTTP_PROTOCOL_ERROR", "Illegal header value"),
    (httpx.TooManyRedirects("Exceeded maximum allowed redirects."), "HTTP_TOO_MANY_REDIRECTS", "Exceeded"),
    (httpx.InvalidURL("Invalid port: 'x'"), "HTTP_INVALID_REQUEST", "Invalid port"),
    (httpx.UnsupportedProtocol("unsupported protocol 'gopher://'"), "HTTP_INVALID_REQUEST", "gopher"),
    (httpx.DecodingError("Error -3 while decompressing"), "HTTP_INVALID_RESPONSE", "Error -3"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "ENOTFOUND", "Name or service"),
    (ConnectionRefusedError(111, "Connection refused"), "ECONNREFUSED", "Connection refused"),
    (TimeoutError("timed out"), "HTTP_TIMEOUT", "timed out"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "HTTP_CONNECTION_FAILED", "verify failed"),
    (UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range"), "HTTP_INVALID_REQUEST", "ordinal"),
])
def test_mapper_codes_keep_the_provider_text(exc, code, text):
    failure = map_http_exception(exc)
    assert failure is not None and failure.code == code
    assert text in failure.message


def test_mapper_marks_deterministic_failures_final():
    assert map_http_exception(httpx.LocalProtocolError("Illegal header value")).retryable is False
    cert = _raised(httpx.ConnectError("x"), ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert map_http_exception(cert).retryable is False
    assert map_http_exception(httpx.ReadTimeout("t")).retryable is None  # the preset decides
    assert map_http_exception(ValueError("not ours")) is None


def test_mapper_names_the_request_without_user_info():
    request = httpx.Request("POST", "http://u:pw@api.example/x")
    failure = map_http_exception(httpx.ReadTimeout("timed out", request=request))
    assert failure is not None and failure.message == "POST http://api.example/x: timed out"


@pytest.mark.parametrize(("value", "expected"), [
    ("5", 5.0), (" 1.5 ", 1.5), ("0", 0.0), ("-3", 0.0), ("86400", 3600.0), ("soon", None), ("", None),
    (None, None), ("nan", None), ("Wed, 01 Jan 2031 00:00:30 GMT", 30.0), ("Wed, 01 Jan 2031 00:00:00 GMT", 0.0),
    ("Tue, 31 Dec 2030 23:59:00 GMT", 0.0),
])
def test_retry_after_values(value, expected):
    now = datetime(2031, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(value, now=now) == expected
