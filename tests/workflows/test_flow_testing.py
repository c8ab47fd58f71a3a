"""`flowtide.testing`: the real engine with mocked steps on the time-skipping server (docs/testing.md)."""

from __future__ import annotations

import time

import pytest

from flowtide import testing
from flowtide.client.runs import run_error
from flowtide.testing import make_case, run_case

flow_test, flowtide_env = testing.flow_test, testing.flowtide_env  # the plugin's fixtures, as a user's conftest has

ORDER = {"id": "order", "steps": [
    {"stepId": "customer", "stepType": "core.http", "input": {"url": "https://crm.example.test/c/{{ initial.id }}"}},
    {"stepId": "charge", "stepType": "core.http", "retryPolicy": {"maxRetries": 3, "delayMs": 3_600_000},
     "input": {"url": "https://pay.example.test/charges", "method": "PUT"}},
    {"stepId": "approve", "stepType": "core.wait-for-signal", "input": {"signal": "approve", "timeout": 86_400}},
    {"stepId": "ship", "stepType": "core.http", "input": {"url": "https://pay.example.test/ship", "method": "POST"}},
    {"stepId": "done", "stepType": "core.return",
     "input": {"output": {"name": "{{ customer.body.name }}", "charge": "{{ charge.body.id }}",
                          "ok": "{{ approve.data.ok }}"}}}]}
MOCKS = {"customer": {"status": 200, "body": {"name": "Ada"}},
         "charge": [{"status": 503}, {"status": 200, "body": {"id": "ch_1"}}],
         "POST https://pay.example.test/*": {"status": 200}}


async def test_hours_of_backoff_and_a_signal_after_3h_take_seconds(flow_test):
    t0 = time.monotonic()
    result = await flow_test(ORDER, input={"id": 7}, mocks=MOCKS,
                             signals=[{"name": "approve", "payload": {"ok": True}, "after": "3h"}],
                             expect={"status": "completed", "output": {"name": "Ada", "charge": "ch_1", "ok": True},
                                     "steps": {"charge": {"calls": 2, "status": "completed"}}, "errors": []})
    assert time.monotonic() - t0 < 20
    rows = {r["stepId"]: r for r in result.record["steps"]}
    # an hour of backoff, then the approval three hours in: virtual time, as in production
    assert rows["approve"]["completedAt"] > rows["charge"]["completedAt"]


async def test_a_signal_that_never_comes_times_out_in_virtual_time(flow_test):
    await flow_test(ORDER, input={"id": 7}, mocks=MOCKS, expect={
        "status": "failed", "steps": {"approve": {"error": "SIGNAL_TIMEOUT"}, "ship": {"calls": 0}}})


async def test_a_step_without_a_mock_fails_with_mock_missing_naming_it(flowtide_env):
    case = make_case(ORDER, {"input": {"id": 7}, "mocks": {"customer": {"status": 200, "body": {}}}})
    result = await run_case(flowtide_env, case)
    error = run_error(result.record) or {}
    assert (result.record["status"], error["code"], error["stepId"]) == ("failed", "MOCK_MISSING", "charge")
    assert "step 'charge' (core.http) has no mock" in error["message"]
    assert result.record["steps"][1]["attempts"] == 1  # never retried


async def test_an_error_by_code_is_retried_and_routed_as_in_production(flow_test):
    flow = {"id": "codes", "steps": [
        {"stepId": "ask", "stepType": "llm.chat", "retryPolicy": {"maxRetries": 2, "delayMs": 600_000},
         "input": {"prompt": "hi"}},
        {"stepId": "rows", "stepType": "datastore.query", "input": {"query": "select 1"}},
        {"stepId": "calc", "stepType": "core.code", "input": {"script": "result = 1"}},
        {"stepId": "mail", "stepType": "email.send", "continueOnError": True,
         "input": {"to": "a@example.test", "subject": "s"}},
        {"stepId": "done", "stepType": "core.return",
         "input": {"output": {"answer": "{{ ask.text }}", "mail": "{{ mail.$meta.error.code }}",
                              "rows": "{{ rows.rows }}", "calc": "{{ calc.output }}"}}}]}
    result = await flow_test(flow, mocks={
        "ask": [{"error": "LLM_RATE_LIMIT"}, {"output": {"text": "hello"}}],
        "mail": {"error": "SMTP_AUTH_FAILED", "message": "refused"},
        "rows": {"output": {"rows": [{"n": 1}]}}, "calc": {"output": 42}},
        expect={"status": "completed_with_errors", "output": {"answer": "hello", "mail": "SMTP_AUTH_FAILED",
                                                              "rows": [{"n": 1}], "calc": 42},
                "steps": {"ask": {"calls": 2}, "mail": {"calls": 1, "status": "failed"}},
                "errors": [{"code": "SMTP_AUTH_FAILED", "stepId": "mail"}]})
    assert result.passed


async def test_a_failed_expectation_fails_with_a_readable_diff(flowtide_env):
    case = make_case(ORDER, {"input": {"id": 7}, "mocks": MOCKS, "signals": [{"name": "approve", "after": 60}],
                             "expect": {"output": {"name": "Bob", "charge": "ch_1", "ok": None},
                                        "steps": {"charge": {"calls": 1}}}})
    result = await run_case(flowtide_env, case)
    assert not result.passed
    text = result.explain()
    assert '-  "name": "Bob"' in text and '+  "name": "Ada"' in text
    assert "steps.charge.calls: expected 1, got 2" in text


async def test_allow_network_lets_an_unmocked_step_reach_the_real_service(flowtide_env, service):
    flow = {"id": "net", "steps": [{"stepId": "get", "stepType": "core.http",
                                    "input": {"url": f"{service.url}/customers/7"}}]}
    blocked = await run_case(flowtide_env, make_case(flow, {"expect": {"status": "completed"}}))
    assert (run_error(blocked.record) or {}).get("code") == "MOCK_MISSING"
    real = await run_case(flowtide_env, make_case(flow, {"expect": {"status": "completed"}}), allow_network=True)
    assert real.passed, real.explain()
    assert real.record["steps"][0]["output"]["status"] == 200


def test_a_bad_case_says_what_and_where():
    from flowtide.testing import TestFileError
    with pytest.raises(TestFileError) as err:
        make_case(ORDER, {"input": {"id": 7}, "mocks": {"charge": [{"status": 9999}, {"error": "NOPE"}]},
                          "signals": [{"name": "approve", "after": "soon"}], "expect": {"outptu": 1}})
    text = "\n".join(err.value.problems)
    for part in ("tests[0].mocks.charge[0].status: an HTTP status from 100 to 599, got 9999",
                 "mocks.charge[1].error: 'NOPE' is not a taxonomy code",
                 "signals[0].after: 'soon' is not a duration", "expect: unknown key(s) outptu"):
        assert part in text


async def test_a_mocked_code_output_is_the_scripts_return_so_its_own_error_codes_act(flow_test):
    """custom mode: the script's `$error` code decides, as in production (seed 003-call-partner-api)."""
    flow = {"id": "partner", "steps": [
        {"stepId": "call", "stepType": "core.code", "input": {"script": "return 1"},
         "retryPolicy": {"mode": "custom", "maxRetries": 5, "delayMs": 2000, "nonRetryableErrorCodes": ["NOPE"]}},
        {"stepId": "warn", "stepType": "core.code", "input": {"script": "return 1"}}]}
    result = await flow_test(flow, mocks={
        "call": [{"output": {"$error": {"code": "PARTNER_DOWN", "message": "503"}}}, {"output": {"id": 1}}],
        "warn": {"output": {"v": 2, "$warning": {"code": "STALE", "message": "old"}}}},
        expect={"status": "completed_with_errors", "steps": {"call": {"calls": 2, "output": {"id": 1}},
                                                  "warn": {"output": {"v": 2}}}})
    assert [(e["code"], e["severity"]) for e in result.record["errors"]] == [("STALE", "warning")]
    await flow_test(flow, mocks={"call": {"output": {"$error": {"code": "NOPE", "message": "rejected"}}}},
                    expect={"status": "failed", "steps": {"call": {"calls": 1, "error": "NOPE"}, "warn": {"calls": 0}}})


def test_coverage_counts_the_branch_of_an_if_whose_branch_ended_the_run():
    """A branch ending in core.return leaves the if row without output; its input still says the result."""
    from flowtide.client.testing.report import Coverage
    cov = Coverage.of({"steps": [{"id": "check", "kind": "core.if", "blocks": {
        "then": [{"id": "bad", "kind": "core.return"}], "else": [{"id": "ok", "kind": "core.return"}]}}]})
    cov.add({"steps": [{"stepId": "check", "stepType": "core.if", "status": "completed", "output": None,
                        "input": {"condition": True, "result": True}}]})
    cov.add({"steps": [{"stepId": "check", "stepType": "core.if", "status": "completed",
                        "output": {"result": False, "branch": "else"}}]})
    assert cov.lines()[1] == "branches taken: 2/2"
