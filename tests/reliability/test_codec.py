"""The optional payload codec: history encrypted at rest, ``flowtide run --json`` unchanged, clear key errors."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from flowtide.client.codec import (
    ENCODING,
    KEY_ENV,
    KEY_ID,
    AesGcmCodec,
    CodecKeyError,
    data_converter,
    key_id,
    load_key,
)
from flowtide.dev.server import DevServer
from tests.reliability.canary import history_json, hits
from tests.reliability.procs import WorkerProcess
from tests.support.cli import flowtide_process


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_round_trip_key_id_and_key_errors() -> None:
    key = load_key(k := new_key())
    codec = AesGcmCodec(key)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"card": "4111"}')
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == key_id(key).encode()
    assert b"4111" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain]
    [again] = await codec.encode([plain])
    assert again.data != sealed.data  # a fresh nonce every time
    with pytest.raises(CodecKeyError, match=f"set {KEY_ENV}"):
        await AesGcmCodec(None).decode([sealed])
    with pytest.raises(CodecKeyError, match=f"encrypted with key id {key_id(key)}"):
        await AesGcmCodec(load_key(new_key())).decode([sealed])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(CodecKeyError, match="does not decrypt"):
        await codec.decode([tampered])
    with pytest.raises(CodecKeyError, match="not valid base64"):
        load_key("not base64!")
    with pytest.raises(CodecKeyError, match="16 bytes"):
        load_key(base64.b64encode(os.urandom(16)).decode())
    assert await AesGcmCodec(None).decode([plain]) == [plain]  # unencrypted history still reads
    assert data_converter({KEY_ENV: k}).payload_codec is not None


FLOW = {"id": "secret-orders", "steps": [
    {"stepId": "lookup", "stepType": "core.http", "continueOnError": True, "retryPolicy": {"maxRetries": 0},
     "input": {"url": "{{ initial.base }}/customers/404?m={{ initial.marker }}"}},
    {"stepId": "compute", "stepType": "core.code",
     "input": {"script": "return {'note': 'order for ' + input['marker']}"}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {
        "note": "{{ compute.note }}", "failed": "{{ $errors[0].message }}"}}}]}


async def test_history_is_encrypted_at_rest_and_the_cli_still_reads_it(
        dev_server: DevServer, client: Client, service: Any, task_queue: str, tmp_path: Path) -> None:
    key, marker = new_key(), "mrk" + secrets.token_hex(10)
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    env = {KEY_ENV: key, "TEMPORAL_ADDRESS": dev_server.address}
    with WorkerProcess(dev_server.address, task_queue, tmp_path / "worker.log", env={KEY_ENV: key}):
        code, out, err = await flowtide_process(
            "run", str(flow_file), "--input", json.dumps({"marker": marker, "base": service.url}), "--json",
            "--no-worker", "--task-queue", task_queue, env=env)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["status"] == "completed_with_errors"
    assert rec["output"]["note"] == f"order for {marker}"  # the CLI decrypts
    assert marker in rec["output"]["failed"]  # an error message with the marker, encrypted below

    history = history_json(dev_server.address, rec["workflowId"])
    assert hits(history, marker) == []  # not in any payload, failure message or base64 blob
    shown = json.loads(history)["events"]
    encrypted = [p for p in _payloads(shown)
                 if base64.b64decode(p["metadata"].get("encoding", "")) == ENCODING]
    clear = [base64.b64decode(p["data"] or "") for p in _payloads(shown) if p not in encrypted]
    # only the search attributes (FlowId, FlowVersion, FlowStatus, TemporalChangeVersion) stay readable, since
    # the server indexes them, and Temporal's own marker metadata (a patch's id; a local activity's seq,
    # attempt, step id and type, as a regular activity's scheduled event shows them): never a value of the run
    assert [c[:60] for c in clear if not _temporal_own(c)] == [], clear
    # and each of those shapes only with the values Temporal's own records give it
    loaded = [json.loads(c) for c in clear]
    patches = {v["id"] for v in loaded if isinstance(v, dict) and "id" in v}
    assert {v for v in loaded if isinstance(v, str)} <= {"secret-orders", "running", "completed_with_errors"}, clear
    assert {v for v in loaded if isinstance(v, int)} <= {1}, clear  # FlowVersion
    assert all(set(v) <= patches for v in loaded if isinstance(v, list)), clear  # TemporalChangeVersion
    assert {v["activity_id"] for v in loaded if isinstance(v, dict) and "activity_id" in v} <= {"lookup"}, clear
    assert len(encrypted) >= 5, clear  # input, step results, activity inputs, the record, failures

    print("\nnot encrypted:", clear)
    # Without the key, or with another one, reading the result says what is wrong.
    with pytest.raises(CodecKeyError, match=f"set {KEY_ENV}"):
        await client.get_workflow_handle(rec["workflowId"]).result()
    code, out, err = await flowtide_process("runs", "show", rec["workflowId"],
                                            env={"TEMPORAL_ADDRESS": dev_server.address})
    assert code == 2 and f"set {KEY_ENV}" in err, (code, out, err[-2000:])
    other = await Client.connect(dev_server.address, data_converter=data_converter({KEY_ENV: new_key()}))
    with pytest.raises(CodecKeyError, match="encrypted with key id"):
        await other.get_workflow_handle(rec["workflowId"]).result()


_MARKER_KEYS = {"seq", "attempt", "activity_id", "activity_type", "complete_time", "backoff", "original_schedule_time",
                "activation_index"}


def _temporal_own(raw: bytes) -> bool:
    """A search attribute's value or the metadata Temporal keeps in the clear (patch and local-activity markers)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    if isinstance(value, (str, int)):
        return True  # a search attribute (FlowId, FlowVersion, FlowStatus): indexed by the server
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)  # TemporalChangeVersion: the patches' ids
    if isinstance(value, dict):
        return set(value) <= {"id", "deprecated"} or set(value) <= _MARKER_KEYS
    return False


def _payloads(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("metadata"), dict) and "data" in node else []
        return found + [p for v in node.values() for p in _payloads(v)]
    if isinstance(node, list):
        return [p for v in node for p in _payloads(v)]
    return []
