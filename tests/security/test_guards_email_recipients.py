"""E-mail recipients with CR or LF are refused like the other header fields: by ``validate`` for literals, by
the step for rendered values (before any connection)."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.email import email_send
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language import parse_flow
from tests.support.activities import step_task

INJECTED = "victim@example.com\r\nBcc: everyone@example.com"


@pytest.mark.parametrize("key", ["to", "cc", "bcc", "replyTo", "from"])
def test_validate_refuses_a_literal_recipient_with_a_line_break(key: str) -> None:
    inp = {"host": "smtp.example.com", "from": "a@example.com", "to": "b@example.com", "subject": "s", "text": "t"}
    inp[key] = [INJECTED] if key in ("cc", "bcc") else INJECTED
    with pytest.raises(FlowValidationError) as info:
        parse_flow({"id": "mail", "steps": [{"stepId": "send", "stepType": "email.send", "input": inp}]}, source="t")
    assert f"steps[0].input.{key}" in str(info.value) and "CR, LF" in str(info.value)


@pytest.mark.parametrize("key", ["to", "cc", "bcc", "replyTo"])
async def test_the_step_refuses_a_rendered_recipient_with_a_line_break(key: str) -> None:
    inp = {"host": "192.0.2.1", "port": 9, "from": "a@example.com", "to": "b@example.com", "subject": "s",
           "text": "t", key: INJECTED}
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(email_send, step_task("email.send", inp, timeout=5))
    assert info.value.type == "VALIDATION_ERROR" and "CR, LF" in str(info.value)
