"""``flowtide worker --metrics-port``: after real runs, one scrape has the SDK's metrics and Flowtide's counters."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from flowtide.dev.server import free_port, port_open
from tests.support.cli import ROOT, until
from tests.support.flows import run_flow

LINE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of ``name`` as (labels, value)."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m and m.group(1) == name:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out.append((labels, float(m.group(3))))
    return out


def value(text: str, name: str, **want: str) -> float:
    return sum(v for labels, v in samples(text, name) if all(labels.get(k) == x for k, x in want.items()))


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text


@pytest.fixture
async def metrics_worker(dev_server, task_queue, tmp_path):
    """A ``flowtide worker`` process with metrics; its stderr (every line must be JSON) is checked at the end."""
    port = free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "FLOWTIDE_METRICS_HOST": "127.0.0.1"}
    log_file = (tmp_path / "worker.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowtide.client.cli.main", "worker", "--metrics-port", str(port), "--task-queue",
        task_queue, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)

    async def up() -> bool:
        return port_open("127.0.0.1", port)
    assert await until(up, timeout=30), "the worker's metrics endpoint did not open"
    yield port
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 30)
    log_file.close()
    lines = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines() if line.strip()]
    events = {e["event"] for e in lines}
    assert "flowtide worker polling task queue" in events, events  # ours
    assert any("shutdown" in e for e in events), events  # the SDK's, through logging
    failed = [e for e in lines if e["event"] == "step attempt failed"]
    assert failed and all(e["workflow_id"] and e["run_id"] and e["step_id"] for e in failed), failed


async def test_worker_metrics_after_runs(client, task_queue, metrics_worker, service, key):
    fid = f"metrics-{uuid.uuid4().hex[:6]}"
    flaky = {"stepId": "reserve", "stepType": "core.http", "retryPolicy": {"maxRetries": 3, "delayMs": 100},
             "input": {"url": f"{service.url}/flaky?fail=1&key={key}"}}
    rec = await run_flow(client, task_queue, {"id": fid, "steps": [flaky]})
    assert rec["status"] == "completed"
    missing = {"stepId": "get", "stepType": "core.http", "input": {"url": f"{service.url}/status/404"}}
    rec = await run_flow(client, task_queue, {"id": fid, "steps": [missing]})
    assert rec["status"] == "failed"

    async def counted() -> str:
        text = await scrape(metrics_worker)
        return text if value(text, "flowtide_runs_total", flow=fid) >= 2 else ""
    text = await until(counted)
    assert value(text, "flowtide_runs_total", flow=fid, status="completed") == 1
    assert value(text, "flowtide_runs_total", flow=fid, status="failed") == 1
    assert value(text, "flowtide_step_attempts_total", kind="core.http") >= 3
    assert value(text, "flowtide_step_attempt_retries_total", kind="core.http") >= 1
    assert value(text, "flowtide_step_attempt_failures_total", kind="core.http", code="HTTP_SERVER_ERROR",
                 retryable="true") >= 1
    assert value(text, "flowtide_step_attempt_failures_total", kind="core.http", code="HTTP_CLIENT_ERROR",
                 retryable="false", **{"class": "permanent"}) >= 1
    assert "temporal_workflow_completed" in text  # the SDK's own metrics on the same endpoint


@workflow.defn(sandboxed=False)
class StepMetricsProbe:
    """Calls the workflow-side helpers the interpreter uses, as the interpreter would."""

    @workflow.run
    async def run(self) -> None:
        from flowtide.workflows.engine import metrics
        metrics.step_finished("core.http", "failed", "HTTP_TIMEOUT", attempts=3)
        metrics.step_finished("core.set-variable", "completed")
        metrics.loop_items("core.for-each", 5)


async def test_workflow_side_helpers_record_labels_and_values(dev_server):
    port = free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))
    client = await Client.connect(dev_server.address, runtime=runtime)
    tq = f"probe-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=tq, workflows=[StepMetricsProbe]):
        await client.execute_workflow(StepMetricsProbe.run, id=tq, task_queue=tq)
    text: Any = await scrape(port)
    assert value(text, "flowtide_steps_total", kind="core.http", status="failed") == 1
    assert value(text, "flowtide_steps_total", kind="core.set-variable", status="completed") == 1
    assert value(text, "flowtide_step_failures_total", kind="core.http", code="HTTP_TIMEOUT",
                 **{"class": "transient"}) == 1
    assert value(text, "flowtide_step_retries_total", kind="core.http") == 2
    assert value(text, "flowtide_loop_items_total", kind="core.for-each") == 5


async def test_flowtide_server_lines_are_json_too(tmp_path):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowtide.client.cli.main", "server", "--port", str(port), "--ui-port", str(free_port()),
        "--db-file", str(tmp_path / "t.db"), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def up() -> bool:
        return port_open("127.0.0.1", port)
    assert await until(up, timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = [line for line in (out + err).decode().splitlines() if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines), lines
