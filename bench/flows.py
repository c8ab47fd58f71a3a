"""The flow documents the benchmark runs (user-facing list spelling, parsed by ``workflows.language.dsl``)."""

from __future__ import annotations

from typing import Any

# Items whose GET fails on the demo service: /customers/404 answers 404 (permanent, not retried) and
# /customers/500 answers 500 (transient: retried twice, then failed). A loop over range(N) with N > 500
# therefore has exactly two failed iterations, which makes "exact counts" checkable.
FAILING_ITEMS = (404, 500)


def sequential(url: str, steps: int, execution: str | None) -> dict[str, Any]:
    """``steps`` HTTP GETs in a row, the flow-wide ``execution`` mode (``remote`` or ``local``); ``None``: no
    setting at all, Flowtide's defaults (what a user who sets nothing gets)."""
    doc: dict[str, Any] = {
        "id": f"bench-seq-{execution or 'default'}",
        "steps": [{"stepId": f"get-{i}", "stepType": "core.http", "input": {"url": f"{url}/ok"}}
                  for i in range(steps)],
    }
    if execution:
        doc["settings"] = {"execution": execution}
    return doc


def pure(steps: int) -> dict[str, Any]:
    """``steps`` pure steps: set-variable and if, alternating; none of them may touch an activity."""
    body: list[dict[str, Any]] = [{"stepId": "init", "stepType": "core.set-variable", "input": {"n": 0}}]
    for i in range(1, steps):
        if i % 2:
            body.append({"stepId": f"set-{i}", "stepType": "core.set-variable",
                         "input": {"n": "{{ vars.n | plus: 1 }}", "label": f"step {i} of {{{{ $run.flowId }}}}"}})
        else:
            body.append({"stepId": f"if-{i}", "stepType": "core.if",
                         "input": {"condition": {">=": ["{{ vars.n }}", 0]}, "then": [], "else": []}})
    return {"id": "bench-pure", "steps": body}


def loop(url: str, items: int, concurrency: int, execution: str) -> dict[str, Any]:
    """A for-each over ``range(items)`` (``items`` given as an integer) with one HTTP GET per item.

    The run's step budget is raised to fit: each item is one step execution, and the default budget
    (``maxStepExecutions`` 10,000) would fail every item past it with STEP_BUDGET_EXCEEDED."""
    return {
        "id": f"bench-loop-{execution}",
        "settings": {"execution": execution, "limits": {"maxStepExecutions": max(10_000, 2 * items + 10)}},
        "steps": [{
            "stepId": "each-customer", "stepType": "core.for-each",
            "input": {"items": items, "concurrency": concurrency, "continueOnError": True,
                      "steps": [{"stepId": "fetch", "stepType": "core.http",
                                 "input": {"url": url + "/customers/{{ $item }}"}}]},
        }],
    }
