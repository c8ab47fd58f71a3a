"""The ``flowtide`` command as a user runs it: a real process, a real server, exit codes and output."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.support.cli import flowtide_process as flowtide

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server_env(dev_server) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": dev_server.address, "FLOWTIDE_TASK_QUEUE": f"cli-{os.getpid()}"}


async def test_demo_shows_success_retry_and_first_failed_step(server_env):
    code, out, err = await flowtide("demo", env=server_env)
    assert code == 0, err
    assert "Status: FAILED" in out
    assert "First failed step: Charge the card" in out
    assert "HTTP_SERVER_ERROR" in out and "Provider status: 500" in out
    assert "2 attempts" in out  # reserve-stock failed once and was retried
    assert "Fatal Python error" not in err


async def test_run_json_prints_the_run_record(server_env, service):
    flow = ROOT / "examples" / "demo.yaml"
    payload = json.dumps({"baseUrl": service.url, "customerId": "7"})
    code, out, err = await flowtide("run", str(flow), "--input", payload, "--json", env=server_env)
    assert code == 1, err  # the demo flow fails on purpose
    rec = json.loads(out)
    for key in ("runId", "workflowId", "flowId", "status", "steps", "errors", "output", "progress",
                "firstFailedStep", "counts"):
        assert key in rec
    assert rec["flowId"] == "demo-order" and rec["status"] == "failed"
    assert rec["firstFailedStep"] == "charge"
    assert rec["workflowId"].startswith("demo-order-")


async def test_bad_input_is_one_clear_line_and_exit_2(server_env, tmp_path):
    code, _, err = await flowtide("run", str(tmp_path / "missing.yaml"), env=server_env)
    assert code == 2 and "missing.yaml" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", "steps": [')
    code, _, err = await flowtide("run", str(bad), env=server_env)
    assert code == 2 and "Traceback" not in err and "bad.json" in err
    code, _, err = await flowtide("run", str(ROOT / "examples" / "demo.yaml"), "--input", "{nope", env=server_env)
    assert code == 2 and "--input" in err and "Traceback" not in err
    code, _, err = await flowtide("run", str(ROOT / "examples" / "demo.yaml"), "--input", '{"customerId": 7}',
                                  env=server_env)
    assert code == 2 and "baseUrl" in err and "Traceback" not in err


async def test_unknown_step_kind_is_reported_with_its_path(server_env, tmp_path):
    flow = tmp_path / "unknown.yaml"
    flow.write_text("id: u\nsteps:\n  - stepId: a\n    stepType: core.htp\n    input: {url: 'http://x'}\n")
    code, _, err = await flowtide("run", str(flow), env=server_env)
    assert code == 2
    assert "steps[0]" in err and "core.htp" in err and "Traceback" not in err


async def test_unreachable_temporal_exits_3(tmp_path):
    code, _, err = await flowtide("run", str(ROOT / "examples" / "hello.yaml"), "--input", '{"customerId": "1"}',
                                  env={"TEMPORAL_ADDRESS": "127.0.0.1:1"}, timeout=60)
    assert code == 3, err
    assert "127.0.0.1:1" in err and "Traceback" not in err


async def test_validate_and_codes():
    flows = [str(p) for p in sorted((ROOT / "examples").glob("*.yaml")) if ".test." not in p.name]  # not test cases
    code, out, _ = await flowtide("validate", *flows)
    assert code == 0, out
    code, out, _ = await flowtide("codes", "--json")
    rows = json.loads(out)
    assert {"code": "HTTP_RATE_LIMITED", "family": "HTTP", "class": "rate-limit"}.items() <= next(
        r for r in rows if r["code"] == "HTTP_RATE_LIMITED").items()
    code, out, _ = await flowtide("codes", "--permanent")
    assert "FILE_NOT_FOUND" in out.split() and "HTTP_RATE_LIMITED" not in out.split()


async def test_a_namespace_without_the_search_attributes_is_one_clear_error(client, dev_server):
    from datetime import timedelta

    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
    from temporalio.service import RPCError
    try:
        await client.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace="bare", workflow_execution_retention_period=timedelta(days=1)))
    except RPCError as exc:  # already registered by an earlier run of this test on the same server
        assert "already" in exc.message.lower(), exc.message
    for _ in range(20):  # a new namespace takes a moment to reach the frontend's cache
        code, _, err = await flowtide("run", str(ROOT / "examples" / "hello.yaml"), "--input",
                                      '{"customerId": "1"}', "--no-worker",
                                      env={"TEMPORAL_ADDRESS": dev_server.address, "TEMPORAL_NAMESPACE": "bare"},
                                      timeout=60)
        if "not found" not in err:
            break
        await asyncio.sleep(0.5)
    assert code == 2, err  # a refusal (INVALID_ARGUMENT), not "unreachable" (3)
    assert "search attribute" in err and "docs/operations.md" in err and "Traceback" not in err
