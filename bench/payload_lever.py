"""A measured lever that did not pay: orjson or msgspec behind Temporal's JSON payload converter.

``pip install orjson msgspec`` (neither is a dependency of Flowtide), then ``python bench/payload_lever.py``.

1. Byte compatibility: every ``json/plain`` payload of the replay corpus (tests/histories) is decoded and
   encoded again by the SDK's way (``json.dumps(..., separators=(",", ":"), sort_keys=True)``, ASCII escapes),
   by orjson (``OPT_SORT_KEYS``) and by msgspec (``order="sorted"``), and compared byte for byte; then a few
   values where the three can differ (non-ASCII, DEL, NaN, infinity, exponents, ints over 64 bits).
2. CPU: encode (``to_payloads``) and decode (``from_payloads`` with the ``dict`` hint Flowtide's workflow and
   activities use) of an activity task, an activity result with the benchmark's ``{"ok": true}`` body, one
   with a ~2 KB JSON body and a 20-step run record, through the SDK's default converter and through the same
   composite with only ``json/plain`` swapped.
   Best of 7 repeats of 2,000 calls each, in microseconds per call.
"""
from __future__ import annotations

import base64
import json
import sys
import timeit
from pathlib import Path
from typing import Any

import msgspec
import orjson
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    value_to_type,
)

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] == str(ROOT / "bench"):  # `python bench/payload_lever.py`: the project first on the path
    sys.path[0] = str(ROOT)
from bench.scenarios import core_http_task  # noqa: E402
from flowtide.workflows.contracts import ActivityResult, error_record  # noqa: E402

JSON_PLAIN = base64.b64encode(b"json/plain").decode()


def py_dumps(v: Any) -> bytes:
    return json.dumps(v, separators=(",", ":"), sort_keys=True).encode()


def or_dumps(v: Any) -> bytes:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS)


ms_enc = msgspec.json.Encoder(order="sorted")
ms_dec = msgspec.json.Decoder()


class OrjsonConverter(JSONPlainPayloadConverter):
    def to_payload(self, value: Any) -> Payload | None:
        return Payload(metadata={"encoding": b"json/plain"}, data=orjson.dumps(value, option=orjson.OPT_SORT_KEYS))

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        obj = orjson.loads(payload.data)
        return value_to_type(type_hint, obj, []) if type_hint else obj


class MsgspecConverter(JSONPlainPayloadConverter):
    def to_payload(self, value: Any) -> Payload | None:
        return Payload(metadata={"encoding": b"json/plain"}, data=ms_enc.encode(value))

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        obj = ms_dec.decode(payload.data)
        return value_to_type(type_hint, obj, []) if type_hint else obj


def corpus_payloads() -> list[bytes]:
    out: list[bytes] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if x.get("metadata", {}).get("encoding") == JSON_PLAIN and "data" in x:
                out.append(base64.b64decode(x["data"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for f in sorted((ROOT / "tests/histories").glob("*.json")):
        walk(json.loads(f.read_text()))
    return out


def compat() -> None:
    data = corpus_payloads()
    py_same = or_same = ms_same = dec_same = 0
    diffs: list[tuple[bytes, bytes]] = []
    for d in data:
        obj = json.loads(d)
        if py_dumps(obj) != d:  # not written by the SDK's converter (core's local-activity markers, ...)
            diffs.append((d, or_dumps(obj)))
            continue
        py_same += 1
        or_same += or_dumps(obj) == d
        ms_same += ms_enc.encode(obj) == d
        dec_same += orjson.loads(d) == obj
    print(f"corpus: {len(data)} json/plain payloads, {py_same} of them as the SDK's json.dumps writes them; "
          f"of those, byte-identical from orjson {or_same}, from msgspec {ms_same}; orjson.loads equal {dec_same}")
    for d, _ in diffs[:3]:
        print("  not from the SDK's converter:", d[:48])
    for label, v in [("non-ASCII", {"name": "Zoë ✓"}), ("NaN", float("nan")), ("inf", float("inf")),
                     ("1e16", 1e16), ("1e-7", 1e-7), ("0.1", 0.1), ("-0.0", -0.0), ("2**70", 2**70),
                     ("int keys", {1: "a"}), ("tuple", (1, 2)), ("control", "a\x1fb\x7f")]:
        try:
            o = or_dumps(v)
        except (TypeError, ValueError, orjson.JSONEncodeError) as e:
            o = f"error: {type(e).__name__}".encode()
        try:
            m = ms_enc.encode(v)
        except (TypeError, ValueError, orjson.JSONEncodeError) as e:
            m = f"error: {type(e).__name__}".encode()
        p = py_dumps(v)
        print(f"  {label:10} json {p!r:32} orjson {o!r:32} msgspec {m!r}")

    for raw in (b"NaN", b"Infinity", b"1180591620717411303424"):  # what json.dumps writes, read back
        got = []
        for loads in (orjson.loads, ms_dec.decode):
            try:
                got.append(repr(loads(raw)))
            except (orjson.JSONDecodeError, msgspec.DecodeError) as e:
                got.append(f"error: {type(e).__name__}")
        print(f"  decode {raw.decode():24} json {json.loads(raw)!r:26} orjson {got[0]:26} msgspec {got[1]}")

def payloads() -> dict[str, tuple[Any, Any]]:
    task = core_http_task("http://127.0.0.1:8080/ok")
    items = [{"id": i, "name": f"item {i}", "price": 12.5 + i, "tags": ["a", "b"], "active": i % 2 == 0}
             for i in range(26)]
    body = {"items": items, "total": len(items), "next": None}
    result: ActivityResult = {"output": {"status": 200, "headers": {"content-type": "application/json",
                                                                     "content-length": "2048", "date": "Thu"},
                                         "body": body}, "warnings": [], "console": [], "attempt": 1}
    rows = [{"stepId": f"s{i}", "stepType": "core.http", "title": f"s{i}", "iteration": None,
             "status": "succeeded", "attempts": 1, "startedAt": "2026-12-03T04:00:00.000000Z",
             "completedAt": "2026-12-03T04:00:00.004000Z", "durationMs": 4,
             "input": {"url": "http://127.0.0.1:8080/ok", "method": "GET"},
             "output": {"status": 200, "headers": {"content-type": "application/json"}, "body": {"ok": True, "n": i}},
             "console": [], "error": None, "warnings": []} for i in range(20)]
    err = error_record(step_id="s3", step_type="core.http", code="HTTP_5XX", message="upstream said 503",
                       provider_status=503)
    record = {"runId": "r1", "workflowId": "w1", "flowId": "f", "flowVersion": 1, "status": "succeeded",
              "startedAt": "2026-12-03T04:00:00Z", "completedAt": "2026-12-03T04:00:01Z", "durationMs": 1000,
              "progress": {"done": 20, "total": 20}, "counts": {"succeeded": 20}, "firstFailedStep": None,
              "error": None, "errors": [err], "output": {"ok": True}, "webhookResponse": None, "steps": rows,
              "loops": [], "attempt": 1, "rerunOf": None}
    small: ActivityResult = {"output": {"status": 200, "headers": {"content-type": "application/json",
                                                                    "content-length": "11"}, "body": {"ok": True}},
                             "warnings": [], "console": [], "attempt": 1}
    return {"activity task": (task, dict), "activity result, {\"ok\": true}": (small, dict),
            "activity result (2 KB body)": (result, dict),
            "run record, 20 steps": (record, dict)}


def bench() -> None:
    default = DefaultPayloadConverter()
    conv: dict[str, Any] = {"SDK default (json)": default}
    for name, cls in (("orjson", OrjsonConverter), ("msgspec", MsgspecConverter)):  # swap only json/plain
        conv[name] = CompositePayloadConverter(*[
            cls() if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters])
    for label, (value, hint) in payloads().items():
        size = len(default.to_payloads([value])[0].data)
        line = f"{label:28} {size:6} B"
        for name, c in conv.items():
            p = c.to_payloads([value])
            assert c.from_payloads(p, [hint])[0] == json.loads(json.dumps(value))
            n = 2000
            enc = min(timeit.repeat(lambda c=c, v=value: c.to_payloads([v]), number=n, repeat=7)) / n * 1e6
            dec = min(timeit.repeat(lambda c=c, p=p, h=hint: c.from_payloads(p, [h]), number=n, repeat=7)) / n * 1e6
            line += f" | {name}: enc {enc:6.1f} us dec {dec:6.1f} us"
        print(line)


if __name__ == "__main__":
    compat()
    bench()
