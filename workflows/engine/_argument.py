"""What ``FlowWorkflow`` accepts as its argument, checked inside the workflow (pure, deterministic, bounded).

Any Temporal client may start a run: ``{"flow": <the document as written, either spelling, or the canonical
wire form>, "input": <payload>, "options": {...}}``. Whatever arrives, ``accept`` returns the canonical flow
or raises ``FlowValidationError`` with every problem and its path; the interpreter turns that into a failed
run with ``VALIDATION_ERROR`` at once. Nothing here may raise anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow

from flowtide.workflows.engine._continue_as_new import check_resume
from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language import NEWER_RULES, without_newer_rules
from flowtide.workflows.language.dsl import parse_flow, validate_payload
from flowtide.workflows.language.json_values import json_problem

ARGUMENT_KEYS = frozenset({"flow", "input", "options"})
# resume: a continued run's state (workflows.engine._continue_as_new)
OPTION_KEYS = frozenset({"reuse", "rerunOf", "resume", "project"})
MAX_PROBLEMS_IN_DETAILS = 100


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else type(value).__name__


def accept(params: Any) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """Check the workflow argument; return ``(wire flow, payload, options)``.

    Raises:
        FlowValidationError: the argument, the flow document or the payload is invalid.
    """
    if not isinstance(params, dict):
        raise FlowValidationError([Problem("", 'the workflow argument must be an object {"flow": ..., '
                                               f'"input": ...}}, not {_json_type(params)}')])
    problems = [Problem(str(k), "unknown key of the workflow argument (expected flow, input, options)")
                for k in params if k not in ARGUMENT_KEYS]
    options = params.get("options") or {}
    if not isinstance(options, dict):
        problems.append(Problem("options", f"must be an object, not {_json_type(options)}"))
    if "flow" not in params:
        problems.append(Problem("flow", "missing: the flow document (either spelling) to run"))
    if problems:
        raise FlowValidationError(problems)
    if isinstance(params["flow"], int | float | bool | str) or params["flow"] is None:
        raise FlowValidationError([Problem("flow", "must be a flow document (an object with id and steps, or a "
                                                   f"list of steps), not {_json_type(params['flow'])}")])
    flow = parse_flow(params["flow"])
    payload = params.get("input")
    problems = validate_payload(flow, payload)
    if problems:
        raise FlowValidationError([Problem(f"input{p.path[1:]}" if p.path.startswith("$") else "input", p.message)
                                   for p in problems], source="input")
    wire = flow.to_wire()
    if options.get("resume") is not None:
        problems = check_resume(options["resume"], wire)
        if problems:
            raise FlowValidationError(problems)
    return wire, payload, {k: v for k, v in options.items() if k in OPTION_KEYS}


def check_input(payload: Any, bounded: Callable[[], bool]) -> None:
    """Any client may start a run: its input must be plain JSON (``language.json_problem``); ``bounded``
    says whether the judge applies (not in a run recorded before it)."""
    problem = json_problem(payload, "input")
    if problem is not None and bounded():
        raise FlowValidationError([Problem("input", problem)], source="input")


def accept_as_recorded(params: Any) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """``accept`` with every rule; a run recorded before the newer rules checks again without them.

    The patch is asked only when the check fails, so a valid flow records no marker (see
    ``flowtide.workflows.language._rules``).
    """
    try:
        return accept(params)
    except FlowValidationError:
        if workflow.patched(NEWER_RULES):
            raise
    with without_newer_rules():
        return accept(params)


def problem_list(err: FlowValidationError) -> list[dict[str, str]]:
    """The errors of ``err`` as ``{"path", "message"}`` for the run's error details (bounded)."""
    return [{"path": p.path, "message": p.message} for p in err.problems
            if p.severity == "error"][:MAX_PROBLEMS_IN_DETAILS]
