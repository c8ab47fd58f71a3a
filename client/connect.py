"""The one place that makes a Temporal client: address, namespace, TLS, API key, profile, data converter.

Configuration follows the ``temporal`` CLI: a TOML profile file (``TEMPORAL_CONFIG_FILE``, default
``~/.config/temporalio/temporal.toml``, profile ``TEMPORAL_PROFILE`` or ``default``), then the environment
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``,
``TEMPORAL_TLS_SERVER_CA_CERT_PATH``, ``TEMPORAL_TLS_CLIENT_CERT_PATH``, ``TEMPORAL_TLS_CLIENT_KEY_PATH``,
``TEMPORAL_TLS_SERVER_NAME``), then explicit options (the CLI's flags), each overriding the one before.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, TLSConfig

DEFAULT_ADDRESS = "127.0.0.1:7233"
STARTING_WAIT_S = 10.0  # how long connect() waits for a server that is still starting


class TemporalUnreachable(Exception):  # noqa: N818 - the CLI turns it into exit code 3
    """Temporal cannot be reached at the configured address."""


# what the transport's own text says, in words (the raw text only with FLOWTIDE_DEBUG): first match wins
_REASONS = (
    (("certificate", "unknownissuer", "invalidcertificate"), "the server's TLS certificate is not trusted"),
    (("connectionrefused", "connection refused"), "nothing is listening there (connection refused)"),
    (("dns error", "failed to lookup", "name or service not known", "nodename nor servname"),
     "the host name does not resolve"),
    (("timed out", "timedout", "deadline"), "no answer in time (connection timed out)"),
    (("unreachable",), "the network cannot reach that address"),
    (("handshake", "tls", "invalidcontenttype", "corrupt message"),
     "the TLS handshake failed (is the server plain text, or TLS where --tls is off?)"),
)


def unreachable_reason(text: str) -> str:
    """Why a connection failed, in a few words, from the transport error's text."""
    low = text.lower()
    reason = next((words for keys, words in _REASONS if any(k in low for k in keys)), "the connection failed")
    if os.environ.get("FLOWTIDE_DEBUG"):
        reason += f" [{' '.join(text.split())}]"
    return reason


class ConnectConfigError(Exception):
    """The connection settings themselves are wrong (unreadable profile file, missing certificate)."""


@dataclass(frozen=True)
class ConnectOptions:
    """Explicit connection settings; ``None`` leaves a setting to the profile file and environment."""

    address: str | None = None
    namespace: str | None = None
    profile: str | None = None
    tls: bool | None = None
    tls_ca_path: str | None = None
    tls_cert_path: str | None = None
    tls_key_path: str | None = None
    tls_server_name: str | None = None
    api_key: str | None = None
    config_file: str | None = None


@dataclass(frozen=True)
class Target:
    """Where and how to connect."""

    address: str
    namespace: str
    explicit: bool  # an address was configured (never start an embedded server then)
    tls: bool | TLSConfig = False
    api_key: str | None = None
    rpc_metadata: dict[str, str] | None = None


def _profile(options: ConnectOptions) -> dict[str, Any]:
    from temporalio.envconfig import ClientConfig
    try:
        return dict(ClientConfig.load_client_connect_config(options.profile, config_file=options.config_file))
    except Exception as exc:  # the SDK's Rust loader raises plain RuntimeError/ValueError with its reason
        raise ConnectConfigError(f"cannot load the Temporal client profile: {' '.join(str(exc).split())}") from None


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConnectConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _tls(options: ConnectOptions, base: bool | TLSConfig) -> bool | TLSConfig:
    files = (options.tls_ca_path, options.tls_cert_path, options.tls_key_path, options.tls_server_name)
    if options.tls is False:
        return False
    if not any(files):
        return True if options.tls else base
    prev = base if isinstance(base, TLSConfig) else TLSConfig()
    return TLSConfig(server_root_ca_cert=_read(options.tls_ca_path, "TLS CA certificate") or prev.server_root_ca_cert,
                     client_cert=_read(options.tls_cert_path, "TLS client certificate") or prev.client_cert,
                     client_private_key=_read(options.tls_key_path, "TLS client key") or prev.client_private_key,
                     domain=options.tls_server_name or prev.domain)


def resolve_target(options: ConnectOptions | None = None) -> Target:
    """The address, namespace and credentials to use: profile file, then environment, then ``options``."""
    options = options or ConnectOptions()
    prof = _profile(options)
    address = options.address or prof.get("target_host")
    api_key = options.api_key or prof.get("api_key")
    tls = _tls(options, prof.get("tls", False))
    if options.api_key and tls is False and options.tls is None:
        tls = True  # an API key is only ever sent over TLS (Temporal Cloud)
    return Target(address=address or DEFAULT_ADDRESS, namespace=options.namespace or prof.get("namespace") or
                  "default", explicit=bool(address), tls=tls, api_key=api_key,
                  rpc_metadata=dict(prof.get("rpc_metadata") or {}) or None)


def target_from_env() -> Target:
    """The target configured by the profile file and environment alone."""
    return resolve_target(ConnectOptions())


async def connect(address: str | None = None, namespace: str | None = None, *,
                  options: ConnectOptions | None = None) -> Client:
    """Connect to Temporal; raise ``TemporalUnreachable`` with the address when it does not answer.

    Payload encryption: set ``FLOWTIDE_CODEC_KEY`` (see ``client.codec``); workers built on this client use
    the same converter.

    Raises:
        TemporalUnreachable: nothing answers at the address, or the TLS handshake fails.
        ConnectConfigError: the profile file or a certificate file cannot be read.
        TracingConfigError: the environment asks for traces without the ``otel`` extra (``guards.tracing``).
    """
    from flowtide.client.codec import data_converter
    from flowtide.worker.telemetry import tracing_interceptors
    options = options or ConnectOptions()
    t = resolve_target(options)
    converter = data_converter()  # before connecting: a malformed key is a configuration error, not "unreachable"
    interceptors = tracing_interceptors()  # a trace from a client call into the workflow (docs/tracing.md)
    addr = address or t.address
    deadline = time.monotonic() + STARTING_WAIT_S
    while True:
        try:
            return await Client.connect(addr, namespace=namespace or t.namespace, tls=t.tls, api_key=t.api_key,
                                        rpc_metadata=t.rpc_metadata or {}, data_converter=converter,
                                        interceptors=interceptors)
        except (RPCError, RuntimeError, OSError) as exc:
            # a server that has just opened its port answers "Frontend is not healthy yet" for a moment
            if "not healthy yet" in str(exc) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            raise TemporalUnreachable(f"cannot reach Temporal at {addr}: {unreachable_reason(str(exc))}") from None

