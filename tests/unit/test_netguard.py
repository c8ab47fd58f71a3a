"""The SSRF guard: a matrix of refused destinations, redirects, DNS answers, the allow list and TLS names.

Every connection the guard lets through is recorded by a spy on httpcore's AnyIO backend, which fails the
test if it is ever asked to connect to anything but a loopback IP (or to a name: the guard must connect to
the address it checked). So no test here can touch a non-loopback network, even when the guard is broken.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import flowtide.guards.network as netguard
from flowtide.activities.http import http_request
from flowtide.guards.netpolicy import check_address, embedded_ipv4, hostname_verdict, literal_address, parse_allow
from flowtide.guards.network import DestinationBlocked, GuardedBackend, close_pools, guarded_client
from tests.support.activities import step_task

BLOCKED = "HTTP_DESTINATION_BLOCKED"


@pytest.fixture(autouse=True)
async def connections(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """Every address the guard connected to; only loopback IPs may ever get here.

    Kept-alive connections of earlier tests are closed first, so every call of the test connects anew."""
    await close_pools()
    seen: list[str] = []
    original = httpcore.AnyIOBackend.connect_tcp

    async def spy(self: Any, host: str, port: int, *args: Any, **kw: Any) -> Any:
        seen.append(host)
        if not ipaddress.ip_address(host).is_loopback:  # a name raises ValueError: also a failure
            raise AssertionError(f"the guard let a connection to {host} through")
        return await original(self, host, port, *args, **kw)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", spy)
    yield seen
    assert all(ipaddress.ip_address(h).is_loopback for h in seen), seen


@pytest.fixture
def no_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWTIDE_HTTP_ALLOW", raising=False)


DNS: dict[str, list[str]] = {
    "evil.example": ["127.0.0.1"],
    "v6-loopback.example": ["::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "rebind.example": ["10.0.0.1", "169.254.169.254"],
    "private-mix.example": ["10.0.0.5", "127.0.0.1"],
    "api.internal": ["127.0.0.1"],
    "svc.corp.internal": ["127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "api.flowtide.test": ["127.0.0.1"],
}


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answers from ``DNS`` instead of the system resolver; returns the list of names asked."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        asked.append(host)
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out: list[tuple[Any, ...]] = []
        for ip in DNS[host]:
            v6 = ":" in ip
            out.append((socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                        (ip, port, 0, 0) if v6 else (ip, port)))
        return out

    monkeypatch.setattr(netguard, "_system_resolve", resolve)
    return asked


def task(inp: dict[str, Any]) -> dict[str, Any]:
    return step_task("core.http", inp, step_id="fetch", title="Fetch")


async def refused(url: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(http_request, task({"url": url}))
    return info.value


async def fetch(url: str) -> dict[str, Any]:
    return (await ActivityEnvironment().run(http_request, task({"url": url})))["output"]


# Direct vectors. {p} is the demo service's port: were the guard to let a loopback vector through, the
# request would reach the real service and the call counters would show it.
DIRECT = [
    "http://127.0.0.1:{p}/ok", "http://127.1:{p}/ok", "http://127.0.1.3:{p}/ok", "http://2130706433:{p}/ok",
    "http://0x7f000001:{p}/ok", "http://0x7f.1:{p}/ok", "http://017700000001:{p}/ok",
    "http://127.0.0.1.:{p}/ok", "http://0.0.0.0:{p}/ok", "http://0:{p}/ok", "http://[::1]:{p}/ok",
    "http://[::]:{p}/ok", "http://[::ffff:127.0.0.1]:{p}/ok", "http://[0:0:0:0:0:ffff:7f00:1]:{p}/ok",
    "http://[::ffff:7f00:1]:{p}/ok", "http://[::127.0.0.1]:{p}/ok", "http://[64:ff9b::127.0.0.1]:{p}/ok",
    "http://[2002:7f00:1::1]:{p}/ok", "http://[::ffff:0:7f00:1]:{p}/ok", "http://localhost:{p}/ok",
    "http://localhost.:{p}/ok", "http://LocalHost:{p}/ok", "http://api.localhost:{p}/ok",
    "http://allowed@127.0.0.1:{p}/ok", "http://allowed.example.com@127.0.0.1:{p}/ok",
    "http://user:pass@[::1]:{p}/ok", "https://127.0.0.1:{p}/ok",
    "http://10.0.0.1/", "http://10.255.255.254:8080/admin", "http://172.16.0.1/", "http://172.31.255.254/",
    "http://192.168.0.1/", "http://192.168.1.1:8080/admin", "http://100.64.0.1/", "http://100.127.255.254/",
    "http://169.254.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/", "http://0xa9fea9fe/", "http://2852039166/", "http://0xa9.0xfe.0xa9.0xfe/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.GOOGLE.INTERNAL./",
    "http://metadata/", "http://100.100.100.200/latest/meta-data/", "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/", "http://[fc00::1]/", "http://[fd12:3456:789a::1]/", "http://[fec0::1]/",
    "http://224.0.0.1/", "http://[ff02::1]/", "http://255.255.255.255/", "http://240.0.0.1/", "http://192.0.2.1/",
    "http://198.18.0.1/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:192.168.1.1]/", "http://[2001:db8::1]/",
    "file:///etc/passwd", "file://localhost/etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:11211/stats", "ws://127.0.0.1/", "jar:http://127.0.0.1/!/",
]
# httpx refuses these spellings itself (an invalid URL): refused too, with the documented code.
INVALID = ["http://127.000.000.001/", "http://0177.0.0.1/", "http://0251.0376.0251.0376/", "http://[::1/",
           "http://①②⑦.0.0.1/"]
# Names whose DNS answers are private (modelled by ``fake_dns``).
RESOLVED = ["http://evil.example:{p}/ok", "http://v6-loopback.example:{p}/ok", "http://mapped.example:{p}/ok",
            "http://rebind.example/", "http://private-mix.example:{p}/ok"]


@pytest.mark.usefixtures("no_allow", "fake_dns")
@pytest.mark.parametrize("url", DIRECT + RESOLVED)
async def test_refused(service, url, connections):
    before = sum(service.calls.values())
    err = await refused(url.format(p=service.port))
    assert err.type == BLOCKED, str(err)
    assert err.non_retryable and err.details[0]["retryable"] is False
    assert sum(service.calls.values()) == before and connections == []


@pytest.mark.usefixtures("no_allow")
@pytest.mark.parametrize("url", INVALID)
async def test_unparsable_urls_are_refused(url, connections):
    err = await refused(url)
    assert err.type == "HTTP_INVALID_REQUEST" and err.non_retryable and connections == []


REDIRECTS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "http://10.0.0.1/", "http://192.168.0.1/",
    "http://[::1]:{p}/ok", "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/",
    "http://2852039166/", "http://0.0.0.0:{p}/ok", "http://[fd00:ec2::254]/", "file:///etc/passwd",
    "gopher://127.0.0.1:{p}/_x", "/redirect?to=http%3A%2F%2F10.0.0.1%2F",
]


@pytest.mark.parametrize("target", REDIRECTS)
async def test_redirects_are_checked_at_every_hop(service, monkeypatch, target, connections):
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")
    before = service.calls["/redirect"]
    target = target.format(p=service.port)
    url = f"{service.url}/redirect?to={target if target.startswith('/') else quote(target, safe='')}"
    err = await refused(url)
    assert err.type == BLOCKED and err.non_retryable, str(err)
    assert service.calls["/redirect"] > before  # the allowed first hop was served
    assert set(connections) == {"127.0.0.1"}


def test_the_matrix_is_large_enough():
    assert len(DIRECT) + len(RESOLVED) + len(INVALID) + len(REDIRECTS) >= 40


# --- what the allow list lets through -------------------------------------------------------------------


@pytest.mark.usefixtures("fake_dns")
@pytest.mark.parametrize(("allow", "url"), [
    ("127.0.0.1", "http://127.0.0.1:{p}/ok"), ("127.0.0.0/8", "http://127.0.0.1:{p}/ok"),
    ("localhost", "http://localhost:{p}/ok"), ("127.0.0.1", "http://localhost:{p}/ok"),
    ("127.0.0.1", "http://2130706433:{p}/ok"), (" 10.0.0.0/8 , 127.0.0.1 ", "http://127.1:{p}/ok"),
    ("api.internal", "http://api.internal:{p}/ok"), ("*.corp.internal", "http://svc.corp.internal:{p}/ok"),
    ("127.0.0.1", "http://private-mix.example:{p}/ok"), ("127.0.0.1", "http://evil.example:{p}/redirect?to=/ok"),
])
async def test_allowed_destinations_are_reachable(service, monkeypatch, allow, url, connections):
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", allow)
    out = await fetch(url.format(p=service.port))
    assert out["status"] == 200 and out["body"] == {"ok": True}
    assert connections and set(connections) == {"127.0.0.1"}  # never the private address of the mix


async def test_the_allow_list_is_read_at_call_time(service, monkeypatch):
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")
    assert (await fetch(service.url + "/ok"))["status"] == 200
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "10.0.0.0/8")
    assert (await refused(service.url + "/ok")).type == BLOCKED


@pytest.mark.usefixtures("fake_dns")
@pytest.mark.parametrize("allow", ["169.254.0.0/16", "0.0.0.0/0,::/0", "metadata.google.internal"])
@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://[fd00:ec2::254]/",
                                 "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/"])
async def test_metadata_needs_an_exact_entry(monkeypatch, allow, url, connections):
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", allow)
    assert (await refused(url)).type == BLOCKED and connections == []


async def test_names_are_resolved_once_per_connection(service, monkeypatch, fake_dns):
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")
    await fetch(f"http://evil.example:{service.port}/ok")
    assert fake_dns == ["evil.example"]


async def test_slow_resolution_is_a_connect_timeout(monkeypatch):
    monkeypatch.setattr(netguard, "_system_resolve", lambda host, port: time.sleep(2) or [])
    t0 = time.monotonic()
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(http_request, task({"url": "http://slow-dns.example/", "timeout": 0.3}))
    assert info.value.type == "ETIMEDOUT" and time.monotonic() - t0 < 1.5


async def test_a_name_without_addresses_is_a_connection_failure(monkeypatch):
    monkeypatch.setattr(netguard, "_system_resolve", lambda host, port: [])
    err = await refused("http://empty.example/")
    assert err.type == "HTTP_CONNECTION_FAILED" and "resolved to no address" in str(err)


async def test_unix_sockets_are_refused():
    with pytest.raises(DestinationBlocked):
        await GuardedBackend().connect_unix_socket("/var/run/docker.sock")


# --- TLS: the checked IP is connected, the name stays the name ------------------------------------------


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.usefixtures("fake_dns")
async def test_tls_keeps_sni_and_host_while_connecting_to_the_checked_ip(tmp_path, connections):
    name = "api.flowtide.test"
    cert, key = _certificate(tmp_path, name)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    seen: dict[str, Any] = {}
    server_ctx.sni_callback = lambda sock, sni, ctx: seen.__setitem__("sni", sni)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        seen["host"] = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                            if line.lower().startswith("host:"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        async with guarded_client(verify=client_ctx, allow="127.0.0.1") as client:
            response = await client.get(f"https://{name}:{port}/")
        assert response.status_code == 200 and response.text == "hi"
    finally:
        server.close()
        await server.wait_closed()
    assert seen == {"sni": name, "host": f"{name}:{port}"}
    assert connections == ["127.0.0.1"]


# --- the policy, as pure functions (no connection at all) ----------------------------------------------


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111",
                                  "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass_the_policy(addr):
    assert not check_address(ipaddress.ip_address(addr), "example.com", parse_allow("")).blocked


@pytest.mark.parametrize(("addr", "words"), [
    ("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("100.64.0.1", "CGNAT"), ("169.254.1.1", "link-local"),
    ("169.254.169.254", "metadata"), ("0.0.0.0", "unspecified"), ("224.0.0.251", "multicast"),
    ("::1", "loopback"), ("fe80::1", "link-local"), ("fd00::1", "unique-local"), ("::ffff:10.0.0.1", "IPv4-mapped"),
    ("64:ff9b::7f00:1", "NAT64"), ("2002:a9fe:a9fe::", "6to4"), ("::a00:1", "IPv4-compatible"),
    ("::ffff:0:a00:1", "IPv4-translated"),
])
def test_refusals_say_why(addr, words):
    verdict = check_address(ipaddress.ip_address(addr), "", parse_allow(""))
    assert verdict.blocked and words in verdict.reason


def test_allow_list_parsing():
    allow = parse_allow(" [::1], 10.0.0.0/8 ,Host.Example., *.corp.test, , 192.168.1.5, not a host!")
    assert "host.example" in allow.names and allow.suffixes == (".corp.test",)
    assert allow.allows_name("a.corp.test") and not allow.allows_name("corp.test.evil")
    assert allow.allows_address(ipaddress.ip_address("10.9.8.7"))
    assert allow.allows_address(ipaddress.ip_address("192.168.1.5"), exact=True)
    assert not allow.allows_address(ipaddress.ip_address("10.9.8.7"), exact=True)
    assert allow.allows_address(ipaddress.ip_address("::1"))


@pytest.mark.parametrize(("host", "ip"), [
    ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("017700000001", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("0", "0.0.0.0"), ("::1", "::1"), ("example.com", None), ("1.2.3.4.5", None), ("0x", None), ("08", None),
])
def test_literal_addresses_in_every_spelling(host, ip):
    got = literal_address(host)
    assert (str(got) if got else None) == ip


def test_hostname_verdicts():
    none = parse_allow("")
    assert hostname_verdict("metadata.google.internal", none).blocked
    assert not hostname_verdict("metadata.google.internal", parse_allow("metadata.google.internal")).blocked
    assert {str(a) for a in hostname_verdict("x.localhost", none).addresses} == {"127.0.0.1", "::1"}
    assert hostname_verdict("example.com", none).addresses == ()
    v4 = embedded_ipv4(ipaddress.IPv6Address("::ffff:1.2.3.4"))
    assert v4 is not None and str(v4[0]) == "1.2.3.4"


# --- kept-alive connections ------------------------------------------------------------------------------


async def test_steps_reuse_checked_connections_but_never_across_allow_lists(service, monkeypatch, connections):
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")
    for _ in range(3):
        assert (await fetch(f"{service.url}/ok"))["status"] == 200
    assert connections == ["127.0.0.1"]  # one handshake for three steps
    monkeypatch.setenv("FLOWTIDE_HTTP_ALLOW", "10.0.0.0/8")  # the open connection was checked under another list
    assert (await refused(f"{service.url}/ok")).type == BLOCKED
    assert connections == ["127.0.0.1"]
