"""bench/profile.py reads py-spy's raw (collapsed) stacks into own and inclusive shares."""

from __future__ import annotations

from bench.profile import parse_raw, summarise

RAW = """\
<module> (bench/profile.py);run (asyncio/runners.py);to_payloads (temporalio/converter/_payload_converter.py);\
iterencode (json/encoder.py) 3
Thread.run (threading.py);execute (flowtide/activities/_boundary.py);urlparse (httpx/_urlparse.py) 5
Thread.run (threading.py);start (temporalio/client.py);to_payloads (temporalio/converter/_payload_converter.py) 2
not a stack line
"""


def test_top_functions_and_group_shares() -> None:
    stacks = parse_raw(RAW)
    assert len(stacks) == 3
    summary = summarise(stacks, top=2)
    assert summary["samples"] == 10
    assert summary["top"] == [{"function": "urlparse", "file": "httpx/_urlparse.py", "own_pct": 50.0},
                              {"function": "iterencode", "file": "json/encoder.py", "own_pct": 30.0}]
    groups = summary["groups"]
    assert groups["payload conversion (temporalio/converter/)"] == {"inclusive_pct": 50.0, "own_pct": 20.0}
    # the client's conversion is left out of the worker-side share
    assert groups["payload conversion, worker side (not under the client)"]["inclusive_pct"] == 30.0
    assert groups["Flowtide (flowtide/)"] == {"inclusive_pct": 50.0, "own_pct": 0.0}
    assert groups["json module (json/)"] == {"inclusive_pct": 30.0, "own_pct": 30.0}
