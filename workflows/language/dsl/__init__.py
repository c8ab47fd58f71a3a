"""The flow language: load and validate flow documents (both spellings), produce the canonical wire dict.

Public API::

    parse_flow(doc, source="") -> Flow            # dict, or a bare list of steps (id = slug of the file stem)
    load_flow_text(text, source) -> Flow          # JSON or YAML text
    validate_payload(flow, payload) -> list[Problem]
    flow_json_schema() -> dict                    # JSON Schema of flow documents, for editors
    Flow.to_wire() -> dict                        # exactly the shape of docs/internals.md

Validation reports every problem at once, each a ``Problem`` with its JSON path (``steps[3].input.url``):
errors raise ``FlowValidationError``; warnings (unreachable steps, references that read null, runLimit
conflicts, cycles without runLimit) are kept on ``flow.warnings``. The rules are listed in
``docs/flow-language.md``. Documents are capped (1 MiB, 160 levels of nesting, 5000 steps, steps nested 32
deep) so that validation cost stays bounded; only ``FlowValidationError`` ever escapes.

Nothing here runs inside the workflow: the interpreter reads ``to_wire()`` dicts. ``load_flow_file`` is the
one function that reads a file (the CLI uses it).
"""

from __future__ import annotations

from typing import Any

from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language._schemas import SchemaWorkExceeded, safe_validator, schema_errors
from flowtide.workflows.language.dsl.flow import Document, build_flow
from flowtide.workflows.language.dsl.locate import locate
from flowtide.workflows.language.dsl.models import Condition, Flow, Limits, OnError, RetryPolicy, Settings, Step
from flowtide.workflows.language.dsl.raw import parse_text, slug_from_source, to_json_data
from flowtide.workflows.language.dsl.schema import flow_json_schema
from flowtide.workflows.language.templates import join_path

__all__ = ["Condition", "Flow", "Limits", "OnError", "RetryPolicy", "Settings", "Step", "flow_json_schema",
           "load_flow_text", "parse_flow", "validate_payload"]

MAX_PAYLOAD_PROBLEMS = 100


def parse_flow(doc: Any, source: str = "") -> Flow:
    """Validate a flow document and build its ``Flow``.

    Args:
        doc: the parsed document: an object with ``id`` and ``steps``, or a bare list of steps.
        source: where it came from (a file path); names a bare list's flow and prefixes error messages.

    Returns:
        The flow; its ``warnings`` list the non-fatal findings.

    Raises:
        FlowValidationError: the document has errors; ``problems`` lists all of them (and the warnings).
    """
    try:
        data, problems = to_json_data(doc)
        if problems:
            raise FlowValidationError(problems, source)
        document = Document()
        flow = build_flow(document, data, "", 0, slug_from_source(source) if isinstance(data, list) else None)
    except FlowValidationError:
        raise
    except RecursionError:
        raise FlowValidationError([Problem("", "the document nests too deeply")], source) from None
    except Exception as exc:  # a bug must still come out as a validation failure, never as a crash
        raise FlowValidationError([Problem("", f"internal validation error: {type(exc).__name__}: {exc}")],
                                  source) from exc
    if flow is None:
        raise FlowValidationError(_ordered(document.problems), source)
    flow.warnings = _ordered([p for p in document.problems if p.severity == "warning"])
    flow.source = source
    return flow


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Errors first, then warnings, each in the order found; duplicates dropped."""
    seen: set[Problem] = set()
    out = []
    for p in sorted(problems, key=lambda p: p.severity != "error"):
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def load_flow_text(text: str, source: str = "") -> Flow:
    """Parse JSON (``*.json``, or text starting with ``{``/``[``) or YAML text, then ``parse_flow`` it.

    Raises:
        FlowValidationError: a syntax error (with line and column) or any validation error.
    """
    doc = parse_text(text, source)
    try:
        flow = parse_flow(doc, source)
    except FlowValidationError as err:
        raise FlowValidationError(locate(err.problems, text), source) from None
    flow.warnings = locate(flow.warnings, text)
    return flow


def validate_payload(flow: Flow, payload: Any) -> list[Problem]:
    """Check a trigger payload against the flow's ``input`` JSON Schema.

    Args:
        flow: the flow.
        payload: the trigger payload.

    Returns:
        Every mismatch (at most 100), each with the JSON path of the payload part (``$.items[2].id``);
        an empty list when the payload is valid or the flow declares no input schema.
    """
    schema = flow.input_schema
    if schema is None:
        return []
    try:
        validator = safe_validator(schema, formats=True, check=False)  # checked when the flow was parsed
        errors = schema_errors(validator, payload, MAX_PAYLOAD_PROBLEMS)
    except SchemaWorkExceeded as exc:
        return [Problem("$", str(exc))]
    except RecursionError:
        return [Problem("$", "the payload nests too deeply to be checked")]
    except Exception as exc:  # e.g. a $ref that cannot be resolved (no network access, by design)
        return [Problem("$", f"the payload cannot be checked against the input schema: {str(exc)[:300]}")]
    problems = []
    for err in sorted(errors, key=lambda e: ([str(p) for p in e.absolute_path], e.message)):
        where = "$"
        for part in err.absolute_path:
            where = join_path(where, part if isinstance(part, int) else str(part))
        problems.append(Problem(where, err.message if len(err.message) <= 300 else err.message[:297] + "..."))
    return problems
