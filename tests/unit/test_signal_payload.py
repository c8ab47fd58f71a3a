"""The runs page's signal payload (a form field) is read like a REST body: every malformed shape is a 400 that
says where, never a 500."""

from __future__ import annotations

import pytest

from flowtide.service.errors import ApiError
from flowtide.service.web.waiting import payload_of


def test_an_empty_payload_is_an_empty_object_and_json_is_read() -> None:
    assert payload_of("  ") == {} and payload_of('{"approved": true}') == {"approved": True}


@pytest.mark.parametrize(("text", "said"), [
    ('{"approved": tru}', "line 1, column"),
    ("[" * 100_000, "nested too deeply"),
    ("1" * 5000, "digits"),
])
def test_hostile_payloads_are_400(text: str, said: str) -> None:
    with pytest.raises(ApiError) as err:
        payload_of(text)
    assert err.value.status == 400 and err.value.message.startswith("payload") and said in err.value.message
