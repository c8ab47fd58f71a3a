"""OpenTelemetry traces (docs/tracing.md): one trace from an API request through the run and its steps to the
provider, with the SDK's in-memory exporter, a real Temporal server, the real API and a real loopback provider."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from flowtide.guards import tracing
from tests.support import parts
from tests.support.cli import flowtide_process
from tests.support.http_server import EdgeServer
from tests.support.service import new_id, running_api


def _installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except ModuleNotFoundError:
        return False


needs_otel = parts.needs(_installed(), "OpenTelemetry (the otel extra)", "pip install -e '.[otel]'")

ROOT = Path(__file__).resolve().parents[2]
CALLER_TRACE = uuid.uuid4().hex
CALLER_SPAN = uuid.uuid4().hex[:16]


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on in this process for one test, into an in-memory exporter; off again afterwards."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.stop()
    provider.shutdown()


def _ids(traceparent: str) -> tuple[str, str]:
    """(trace id, parent span id) of a W3C ``traceparent``, checked to be version 00 and sampled."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, traceparent  # flag 2: the SDK's trace ids are random
    return trace_id, span_id


def _flow(url: str) -> dict[str, Any]:
    return {"id": new_id("traced"), "steps": [
        {"stepId": "call", "stepType": "core.http", "input": {"url": url, "method": "POST", "body": {"n": 1}}},
        {"stepId": "done", "stepType": "core.return",
         "input": {"output": {"traceparent": "{{ call.body.headers.traceparent }}"}}}]}


async def _ended(exporter: Any, name: str) -> list[Any]:
    """The finished spans once one named ``name`` is among them (the API's span ends after its answer is sent)."""
    for _ in range(100):
        done = list(exporter.get_finished_spans())
        if any(s.name == name for s in done):
            return done
        await asyncio.sleep(0.05)
    raise AssertionError(f"no span {name!r} among {[s.name for s in exporter.get_finished_spans()]}")


@needs_otel
async def test_one_trace_from_the_api_request_to_the_providers_traceparent(dev_server, spans, tmp_path):
    from flowtide.client.connect import connect
    client = await connect(dev_server.address)  # tracing is on: the client carries the Temporal interceptor
    tq = f"tq-trace-{uuid.uuid4().hex[:8]}"
    with EdgeServer() as edge:
        # sandboxed, as the rest of the suite: the interceptor's workflow half runs inside the sandbox
        async with running_api(client, f"sqlite:///{tmp_path / 'f.db'}", tq, sandbox=True) as api, \
                httpx.AsyncClient(timeout=60) as http:
            doc = _flow(f"{edge.url}/echo")
            await api.deploy(http, doc)
            r = await http.post(api.url(f"/v1/flows/{doc['id']}/runs?wait=30"), json={"input": {}},
                                headers={**api.headers("run"), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
            received = r.json()["output"]["traceparent"]  # what the provider was sent, echoed back
            bad = await http.get(api.url("/v1/flows"), headers={**api.headers("read"), "traceparent": "00-zz-?-1"})
            assert bad.status_code == 200, bad.text  # a malformed traceparent starts a new trace, nothing else
    route = "POST /v1/flows/{flowId}/runs"
    trace = [s for s in await _ended(spans, route) if format(s.context.trace_id, "032x") == CALLER_TRACE]
    by_name = {s.name: s for s in trace}
    assert {route, "StartWorkflow:FlowWorkflow", "RunWorkflow:FlowWorkflow", "StartActivity:core.http",
            "RunActivity:core.http", "HTTP POST"} <= set(by_name), sorted(by_name)
    # one tree: the API's span continues the caller's, every other span's parent is in the same trace
    ids = {s.context.span_id for s in trace}
    api_span = by_name[route]
    assert format(api_span.parent.span_id, "016x") == CALLER_SPAN and api_span.parent.is_remote
    assert all(s.parent is not None and s.parent.span_id in ids for s in trace if s is not api_span)
    assert by_name["StartWorkflow:FlowWorkflow"].parent.span_id == api_span.context.span_id
    assert by_name["HTTP POST"].parent.span_id == by_name["RunActivity:core.http"].context.span_id
    # the provider got the W3C traceparent of the outbound call's own span
    call = by_name["HTTP POST"]
    assert received == f"00-{CALLER_TRACE}-{format(call.context.span_id, '016x')}-01"
    assert api_span.kind.name == "SERVER" and call.kind.name == "CLIENT"
    assert api_span.attributes["http.route"] == "/v1/flows/{flowId}/runs"
    assert api_span.attributes["http.response.status_code"] == 200
    assert call.attributes["server.address"] == "127.0.0.1" and call.attributes["http.response.status_code"] == 200
    assert not any("/echo" in str(v) for v in call.attributes.values())  # paths and queries may hold secrets
    assert by_name["RunActivity:core.http"].attributes["temporalActivityID"] == "call"
    listed = next(s for s in await _ended(spans, "GET /v1/flows") if s.name == "GET /v1/flows")
    assert listed.parent is None and format(listed.context.trace_id, "032x") != CALLER_TRACE


@needs_otel
def test_the_blocking_client_of_token_refreshes_sends_a_traceparent_too(spans):
    from flowtide.guards.connect import guarded_sync_client
    with EdgeServer() as edge, tracing.span("refresh") as outer, guarded_sync_client(10) as http:
        r = http.get(f"{edge.url}/echo?status=404", headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    call = next(s for s in spans.get_finished_spans() if s.name == "HTTP GET")
    assert call.parent.span_id == outer.get_span_context().span_id and call.status.status_code.name == "ERROR"
    sent = _ids(r.json()["headers"]["traceparent"])  # the request's own header was replaced
    assert sent == (format(call.context.trace_id, "032x"), format(call.context.span_id, "016x"))


@needs_otel
async def test_log_lines_carry_the_trace_and_span_ids(spans):
    from flowtide.client.cli.logs import configure
    out, root = io.StringIO(), logging.getLogger()
    level = root.level
    configure("INFO", stream=out)
    try:
        with tracing.span("work") as current:
            structlog.get_logger("flowtide.test").info("inside")
            logging.getLogger("some.library").warning("stdlib inside")
        structlog.get_logger("flowtide.test").info("outside")
    finally:
        root.removeHandler(next(h for h in root.handlers if h.get_name() == "flowtide"))
        root.setLevel(level)
    inside, stdlib, outside = (json.loads(line) for line in out.getvalue().splitlines())
    ctx = current.get_span_context()
    for line in (inside, stdlib):
        assert line["trace_id"] == format(ctx.trace_id, "032x") and line["span_id"] == format(ctx.span_id, "016x")
    assert "trace_id" not in outside


def test_a_bad_switch_or_a_missing_extra_is_a_clear_error(monkeypatch, caplog):
    monkeypatch.setattr(tracing, "_declined", [])
    monkeypatch.setenv(tracing.ENV_FLAG, "maybe")
    with pytest.raises(tracing.TracingConfigError, match="FLOWTIDE_OTEL='maybe'"):
        tracing.setup()
    monkeypatch.setenv(tracing.ENV_FLAG, "1")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(tracing.TracingConfigError, match=r"pip install 'flowtide\[otel\]'"):
        tracing.setup()
    assert not tracing.enabled()
    monkeypatch.delenv(tracing.ENV_FLAG)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # maybe meant for other programs
    with caplog.at_level(logging.WARNING, logger="flowtide.guards.tracing"):
        assert tracing.setup() is False and tracing.setup() is False
    assert len(caplog.records) == 1 and "runs without traces" in caplog.records[0].getMessage()  # warned once
    assert not tracing.enabled()
    monkeypatch.setenv(tracing.ENV_FLAG, "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert not tracing.wanted()  # the switch wins over an endpoint set for other programs


OFF_PROBE = """
import sys, logging, asyncio
from flowtide.client.cli.logs import configure
from flowtide.service.app import build_service, create_app
from flowtide.worker.telemetry import tracing_interceptors
from flowtide.guards.network import pooled_client
configure("INFO")
logging.getLogger("probe").info("a line")
create_app(build_service(database_url=sys.argv[1]))
assert tracing_interceptors() == []
async def main():
    async with pooled_client() as c:
        pass
asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


def test_off_by_default_and_then_nothing_imports_opentelemetry(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != tracing.ENV_FLAG and not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", OFF_PROBE, f"sqlite:///{tmp_path / 'f.db'}"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


class _Collector(ThreadingHTTPServer):
    """An OTLP/HTTP receiver on 127.0.0.1: keeps the spans of every ``POST /v1/traces``."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []  # (service.name, span)
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
                body = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
                for rs in body.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    collector.spans += [(service, s) for ss in rs.scope_spans for s in ss.spans]
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)


@needs_otel
async def test_the_environment_alone_exports_a_run_over_otlp(dev_server, tmp_path):
    """``flowtide run`` as a real process, configured only by OTEL_* variables: its spans reach the collector."""
    collector = _Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        with EdgeServer() as edge:
            flow = tmp_path / "flow.json"
            flow.write_text(json.dumps(_flow(f"{edge.url}/echo")))
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
                   "OTEL_SERVICE_NAME": "flowtide-probe", "FLOWTIDE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}"}
            code, out, err = await flowtide_process("run", str(flow), "--json", "--address", dev_server.address,
                                                    "--task-queue", f"tq-otlp-{uuid.uuid4().hex[:8]}", env=env)
        assert code == 0, err
        received = json.loads(out)["output"]["traceparent"]
    finally:
        collector.shutdown()
        collector.server_close()
    # the process flushed its spans on exit: one trace from the client's start to the provider's header
    by_name = {s.name: (service, s) for service, s in collector.spans}
    assert {"StartWorkflow:FlowWorkflow", "RunWorkflow:FlowWorkflow", "RunActivity:core.http", "HTTP POST"} <= set(
        by_name), sorted(by_name)
    assert {service for service, _ in collector.spans} == {"flowtide-probe"}
    assert len({s.trace_id for _, s in collector.spans if s.name in by_name}) == 1
    call = by_name["HTTP POST"][1]
    assert _ids(received) == (call.trace_id.hex(), call.span_id.hex())


@needs_otel
async def test_turning_tracing_on_keeps_every_recorded_run_replaying(spans):
    """The interceptor only adds headers and spans, never commands: a worker that starts tracing takes over the
    runs recorded without it (the whole replay corpus, sandboxed)."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    from flowtide.client.replay import build_replayer, load_history
    corpus = sorted((ROOT / "tests" / "histories").glob("*.json"))

    given: list[str] = []

    async def histories() -> Any:
        for path in corpus:
            if path.name != "index.json":
                given.append(path.stem)
                yield load_history(path.read_text(encoding="utf-8"), path.stem)

    replayer = build_replayer(interceptors=[TracingInterceptor(tracing.tracer())])
    results = await asyncio.wait_for(replayer.replay_workflows(histories(), raise_on_replay_failure=False), 300)
    assert len(given) >= 40 and not results.replay_failures, results.replay_failures
    assert not [s.name for s in spans.get_finished_spans() if "Workflow" in s.name]  # replays make no spans
