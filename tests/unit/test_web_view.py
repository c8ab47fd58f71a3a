"""The run page's view of a run record: downstream failures, error panels, and values cut to size, as HTML."""

from __future__ import annotations

from typing import Any

from flowtide.client.inspect import RunView
from flowtide.service.web.auth import templates
from flowtide.service.web.runview import CONSOLE_EMPTY, run_page
from flowtide.service.web.values import JSON_LIMIT, resolve, view

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def record() -> dict[str, Any]:
    err = {"code": "AUTH_MISSING", "message": HOSTILE, "providerStatus": 401, "retryable": False,
           "detail": "Action node 'Create contact' resolved no active connection."}
    steps = [{"stepId": "a", "stepType": "core.code", "title": "A", "status": "completed", "output": "x" * 1_000_000,
              "input": [{"id": 1, "name": HOSTILE}, {"id": 2, "name": "b"}]},
             {"stepId": "b", "stepType": "core.http", "title": "Create contact", "status": "failed", "error": err},
             {"stepId": "c", "stepType": "core.http", "title": "C", "status": "failed",
              "error": {"message": "after" + "y" * 1_000_000, "providerStatus": 429, "retryable": True}}]
    return {"runId": "01a2085d-cb33-7d4f-947b-722f35f6b285", "flowId": "crm", "flowVersion": 1, "status": "failed",
            "progress": {"done": 3, "total": 7}, "counts": {"completed": 1, "failed": 2}, "firstFailedStep": "b",
            "steps": steps, "error": None}


def test_first_failed_expanded_downstream_labelled_and_errors_shaped() -> None:
    ctx = run_page(RunView(record=record(), source="result", execution_status="failed", task_queue="q"), {"k": 1})
    a, b, c = ctx["steps"]
    assert (ctx["progress"], ctx["summary"], ctx["first_failed"]) == ("3 / 7 steps", "1 completed, 2 failed", "#step-2")
    assert b["open"] and not c["open"] and b["note"] == "First failed step"
    assert c["note"] == "Downstream of the first failed step (step 2)"
    assert b["error"]["title"] == "AUTH_MISSING" and b["error"]["provider"] == "Provider status: 401"
    assert c["error"]["title"] == "Error" and c["error"]["provider"] == "Provider status: 429 (retryable)"
    assert b["error"]["code_line"].startswith("Code: AUTH_MISSING") and a["input"]["table"]["columns"] == ["id", "name"]


def test_hostile_and_huge_values_render_as_escaped_text_with_a_link() -> None:
    ctx = run_page(RunView(record=record(), source="result", execution_status="failed", task_queue="q"), None)
    html = templates.get_template("run.html").render(**ctx, who=None, refresh=None, may_run=True,
                                                     console_empty=CONSOLE_EMPTY)
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;alert(1)" in html
    assert len(html) < 200_000 and "x" * (JSON_LIMIT + 1) not in html
    assert "show the whole value (1000000 characters) as JSON" in html
    assert "/runs/01a2085d-cb33-7d4f-947b-722f35f6b285/data?step=1&amp;part=output&amp;pointer=" in html
    assert "No output data available" in html and "No input data available" in html
    assert "Cut at 2000 of 1000005 characters" in html and "y" * 2001 not in html
    assert "data?step=3&amp;part=error&amp;pointer=/message" in html
    assert "Execution Steps" in html and "Jump to failed step" in html


def test_views_and_pointers() -> None:
    v = view({"a/b": [{"x": 1}], "s": "y" * 5000}, "/l?part=output")
    assert v is not None and v["tree"]["children"][1]["truncated"] and v["tree"]["children"][1]["pointer"] == "/s"
    assert resolve({"a/b": [{"x": 1}]}, v["tree"]["children"][0]["pointer"] + "/0/x") == 1
    assert view(None, "/l") is None and view({}, "/l") is None


def test_a_run_level_error_is_the_execution_error_banner() -> None:
    rec = dict(record(), steps=[], firstFailedStep=None, counts={},
               error={"code": "TEMPLATE_ERROR", "message": "settings.timeout: unknown name 'x'"})
    ctx = run_page(RunView(record=rec, source="failure", execution_status="failed", task_queue="q"), None)
    html = templates.get_template("run.html").render(**ctx, who=None, refresh=None, may_run=False,
                                                     console_empty=CONSOLE_EMPTY)
    banner = html[html.index('<section class="banner"'):html.index("</section>")]
    assert "Execution Error" in banner and "TEMPLATE_ERROR" in banner
    assert '<pre class="mono message">settings.timeout: unknown name &#39;x&#39;</pre>' in banner
    assert "No steps ran." in html and "Jump to failed step" not in html
