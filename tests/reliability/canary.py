"""Find a secret in text, also inside base64 blobs (Temporal's JSON history carries payloads base64-encoded)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from typing import Any

from flowtide.dev.server import temporal_binary

_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def encodings(secret: str) -> list[str]:
    """The secret as it would read inside standard or URL-safe base64, at each of the 3 byte alignments."""
    raw = secret.encode()
    out = []
    for pad in range(3):
        enc = base64.b64encode(b"\0" * pad + raw).decode()
        inner = enc[{0: 0, 1: 2, 2: 3}[pad]:]  # drop the characters the leading bytes touched
        inner = inner.rstrip("=")
        inner = inner[:len(inner) - 2]  # and the last ones, which depend on what follows the secret
        out += [inner, inner.replace("+", "-").replace("/", "_")]
    return [e for e in out if len(e) >= 8]


def _decoded(text: str) -> list[bytes]:
    blobs = []
    for m in _B64.finditer(text):
        chunk = m.group(0)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                blobs.append(decode(chunk + "=" * (-len(chunk) % 4)))
            except (binascii.Error, ValueError):
                continue
    return blobs


def hits(text: str, secret: str) -> list[str]:
    """Every way ``secret`` shows in ``text``: plain, base64-encoded, or inside a decoded base64 blob."""
    found = []
    if secret in text:
        found.append(f"plain x{text.count(secret)}")
    for enc in encodings(secret):
        if enc in text:
            found.append(f"base64 {enc}")
    for blob in _decoded(text):
        if secret.encode() in blob:
            found.append("inside a base64 blob")
    return found


def history_json(address: str, workflow_id: str, run_id: str | None = None) -> str:
    """The full history of a run as the ``temporal`` CLI prints it (``workflow show -o json``)."""
    cmd = [temporal_binary(), "workflow", "show", "-w", workflow_id, "-o", "json", "--address", address]
    if run_id:
        cmd += ["-r", run_id]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    json.loads(out)  # it is the whole history, not an error message
    return out


def payload_texts(history: str) -> list[str]:
    """The decoded payload data of every event (for positive checks: the payloads are really there)."""
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "metadata" in node and "data" in node and isinstance(node["data"], str):
                try:
                    texts.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
                except (binascii.Error, ValueError):
                    texts.append(node["data"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(history))
    return texts
