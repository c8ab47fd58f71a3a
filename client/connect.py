"""The one place that makes a Temporal client: address, namespace, TLS, data converter, search attributes."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError

DEFAULT_ADDRESS = "127.0.0.1:7233"
STARTING_WAIT_S = 10.0  # how long connect() waits for a server that is still starting



class TemporalUnreachable(Exception):  # noqa: N818 - the CLI turns it into exit code 3
    """Temporal cannot be reached at the configured address."""


@dataclass(frozen=True)
class Target:
    """Where to connect."""

    address: str
    namespace: str
    explicit: bool  # TEMPORAL_ADDRESS was set (never start an embedded server then)


def target_from_env() -> Target:
    addr = os.environ.get("TEMPORAL_ADDRESS")
    return Target(address=addr or DEFAULT_ADDRESS, namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
                  explicit=bool(addr))


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to Temporal; raise ``TemporalUnreachable`` with the address when it does not answer.

    TLS: set ``TEMPORAL_TLS=1`` (and ``TEMPORAL_API_KEY`` for Temporal Cloud). Payload encryption: set
    ``FLOWTIDE_CODEC_KEY`` (see ``client.codec``); workers built on this client use the same converter.
    """
    from flowtide.client.codec import data_converter
    t = target_from_env()
    converter = data_converter()  # before connecting: a malformed key is a configuration error, not "unreachable"
    addr = address or t.address
    tls = os.environ.get("TEMPORAL_TLS", "").lower() in ("1", "true", "yes")
    deadline = time.monotonic() + STARTING_WAIT_S
    while True:
        try:
            return await Client.connect(addr, namespace=namespace or t.namespace, tls=tls,
                                        api_key=os.environ.get("TEMPORAL_API_KEY") or None, data_converter=converter)
        except (RPCError, RuntimeError, OSError) as exc:
            # a server that has just opened its port answers "Frontend is not healthy yet" for a moment
            if "not healthy yet" in str(exc) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            raise TemporalUnreachable(f"cannot reach Temporal at {addr}: {exc}") from None
