"""A flow's webhook answer cannot set the service's own headers: ``validate`` names each refused header, and
the service drops what templates produced at answer time (defence in depth)."""

from __future__ import annotations

from typing import Any

import pytest

from flowtide.service.hooks import respond
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language import parse_flow

REFUSED = {"Set-Cookie": "session=evil", "Content-Security-Policy": "default-src *", "Location": "https://evil",
           "Access-Control-Allow-Origin": "*", "Transfer-Encoding": "chunked", "Proxy-Authenticate": "x",
           "Strict-Transport-Security": "max-age=0", "Cross-Origin-Opener-Policy": "unsafe-none",
           "X-Split": "a\r\nSet-Cookie: b=c", "bad name": "x"}


def answer(headers: dict[str, Any]) -> dict[str, Any]:
    return {"id": "hook", "steps": [{"stepId": "answer", "stepType": "core.return", "input": {
        "output": 1, "webhookResponse": {"status": 200, "headers": headers, "body": "ok"}}}]}


def test_validate_names_every_refused_header() -> None:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(answer({**REFUSED, "X-Fine": "yes", "Content-Type": "text/plain", "X-Later": "{{ initial.v }}"}),
                   source="t")
    paths = {p.path for p in info.value.problems}
    base = "steps[0].input.webhookResponse.headers"
    assert paths == {f"{base}.{n}" if " " not in n else f'{base}["{n}"]' for n in REFUSED}, paths


def test_the_answer_drops_headers_that_templates_produced() -> None:
    record = {"status": "completed", "output": 1,
              "webhookResponse": {"status": 200, "headers": {**REFUSED, "X-Fine": "yes"}, "body": "ok"}}
    response = respond(record)
    names = {k.decode().lower() for k, _ in response.raw_headers}
    assert "x-fine" in names
    assert not names & {n.lower() for n in REFUSED}, names
