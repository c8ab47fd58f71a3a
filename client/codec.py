"""Optional encryption at rest of every Temporal payload: AES-256-GCM, key from ``FLOWTIDE_CODEC_KEY``.

Set ``FLOWTIDE_CODEC_KEY`` to the base64 of 32 random bytes (``python -c "import os, base64;
print(base64.b64encode(os.urandom(32)).decode())"``) on every worker and every ``flowtide`` command: the
server then stores flow documents, inputs, step inputs and outputs, run records, signal data and error
messages only as ciphertext. Each payload carries ``encryption-key-id`` (the first 8 bytes of the key's
SHA-256, in hex: it names the key without revealing it), so a process with another key, or none, fails with
a clear message instead of garbage. Not encrypted: workflow ids, step ids (activity ids), activity types
(step kinds), timer and activity summaries, and the search attributes (``FlowId``, ``FlowStatus``,
``FailedStepId``, ``ErrorCode``), which the server must read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    PayloadCodec,
    PayloadConverter,
)

from flowtide.workflows.errors import TAXONOMY

KEY_ENV = "FLOWTIDE_CODEC_KEY"
ENCODING = b"binary/flowtide-aes-gcm"
KEY_ID = "encryption-key-id"
DEBUG_ENV = "FLOWTIDE_DEBUG"
NONCE_BYTES = 12


class CodecKeyError(Exception):
    """The key is malformed, missing, or not the one the payload was encrypted with."""


def load_key(text: str) -> bytes:
    """The 32-byte key from its base64 text; ``CodecKeyError`` when it is not that."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(f"{KEY_ENV} is not valid base64 (expected the base64 of 32 random bytes)") from None
    if len(key) != 32:
        raise CodecKeyError(f"{KEY_ENV} decodes to {len(key)} bytes; AES-256-GCM needs exactly 32")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class AesGcmCodec(PayloadCodec):
    """Encrypts each payload (its whole serialized form, metadata included) with a fresh 96-bit nonce.

    With ``key=None`` it encrypts nothing, and decoding an encrypted payload fails with a message that says
    which key is needed.
    """

    def __init__(self, key: bytes | None) -> None:
        self._aead = AESGCM(key) if key is not None else None
        self.key_id = key_id(key) if key is not None else None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._aead is None or self.key_id is None:
            return list(payloads)
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._aead.encrypt(nonce, p.SerializeToString(), self.key_id.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)  # written before encryption was turned on, or by a process without a key
                continue
            wanted = p.metadata.get(KEY_ID, b"?").decode(errors="replace")
            if self._aead is None:
                raise CodecKeyError(f"this payload is encrypted (key id {wanted}): set {KEY_ENV} to that key")
            if wanted != self.key_id:
                raise CodecKeyError(f"this payload is encrypted with key id {wanted}, but {KEY_ENV} is the key "
                                    f"with id {self.key_id}")
            try:
                plain = self._aead.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], wanted.encode())
            except InvalidTag:
                raise CodecKeyError(f"a payload with key id {wanted} does not decrypt: it was altered, or "
                                    "another key has the same id") from None
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


def data_converter(env: Mapping[str, str] | None = None) -> DataConverter:
    """The data converter for ``client.connect``: encrypting when ``FLOWTIDE_CODEC_KEY`` is set.

    With a key, failure messages and stack traces are moved into the (encrypted) payloads too. Without one,
    the default converter plus a codec that only explains encrypted payloads it meets.
    """
    text = (env if env is not None else os.environ).get(KEY_ENV, "")
    if not text.strip():
        return DataConverter(payload_codec=AesGcmCodec(None), failure_converter_class=FailureConverter)
    return DataConverter(payload_codec=AesGcmCodec(load_key(text)),
                         failure_converter_class=EncodedFailureConverter)


class FailureConverter(DefaultFailureConverter):
    """The SDK's converter, without the Python stack of a failure Flowtide raises on purpose.

    A failed run's failure (and a step attempt's) is an ``ApplicationError`` whose type is a taxonomy code:
    its code, message and step say what happened, and the interpreter's or the step boundary's stack would
    only bury them in ``temporal workflow show`` and the Web UI. ``FLOWTIDE_DEBUG`` (set on the worker) keeps
    the stacks. Other failures (an SDK error, a bug's own exception type) keep theirs.
    """

    encode = False

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=False)

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)  # calls back here for each cause
        if failure.application_failure_info.type in TAXONOMY and not os.environ.get(DEBUG_ENV):
            failure.stack_trace = ""
        if self.encode:  # what DefaultFailureConverterWithEncodedAttributes does: into the encrypted payload
            failure.encoded_attributes.CopyFrom(payload_converter.to_payloads(
                [{"message": failure.message, "stack_trace": failure.stack_trace}])[0])
            failure.message = "Encoded failure"
            failure.stack_trace = ""


class EncodedFailureConverter(FailureConverter):
    """``FailureConverter`` that moves each failure's message and stack into its (encrypted) payload."""

    encode = True
