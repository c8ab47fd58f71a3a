"""The SSRF policy: which addresses and names HTTP steps may reach, and the ``FLOWTIDE_HTTP_ALLOW`` list.

Pure functions, no I/O: ``guards.network`` applies them to the addresses it is about to connect to.

Refused unless allowed: loopback, RFC 1918 private, link-local, CGNAT (100.64.0.0/10), unspecified,
multicast, reserved, documentation and benchmarking ranges, IPv6 unique-local (fc00::/7), site-local and
link-local (fe80::/10), every IPv4 address embedded in IPv6 (mapped, translated, compatible, 6to4, NAT64)
judged by the IPv4 inside, and cloud metadata endpoints. Metadata addresses and names are special: only an
entry naming them exactly (``169.254.169.254``, ``metadata.google.internal``) allows them, never a covering
CIDR, so allowing ``169.254.0.0/16`` for a device does not hand out cloud credentials.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
    "169.254.170.2",  # AWS ECS task metadata
    "169.254.169.253",  # AWS VPC DNS
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
    "fd00:ec2::254",  # AWS IMDS over IPv6
))
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.internal"})

_V4_BLOCKED: tuple[tuple[IPv4Network, str], ...] = tuple((IPv4Network(n), label) for n, label in (
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private (RFC 1918) address"),
    ("100.64.0.0/10", "a shared (CGNAT, RFC 6598) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private (RFC 1918) address"),
    ("192.0.0.0/24", "an IETF protocol-assignment address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a reserved (6to4 relay) address"),
    ("192.168.0.0/16", "a private (RFC 1918) address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
))
_V6_BLOCKED: tuple[tuple[IPv6Network, str], ...] = tuple((IPv6Network(n), label) for n, label in (
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
    ("2001:db8::/32", "a documentation address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an IETF protocol-assignment address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("::/8", "a reserved address"),
))
_NAT64 = IPv6Network("64:ff9b::/96")
_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_COMPAT = IPv6Network("::/96")
# Legacy IPv4 spellings that inet_aton accepts: 2130706433, 0x7f.1, 017700000001, 127.1.
_LEGACY_V4 = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")


@dataclass(frozen=True)
class Verdict:
    """A decision; ``addresses`` are the ones a name stands for without asking DNS."""

    blocked: bool
    reason: str = ""
    addresses: tuple[IPAddress, ...] = ()


@dataclass(frozen=True)
class AllowList:
    """Parsed ``FLOWTIDE_HTTP_ALLOW``: host names, ``*.suffix`` wildcards, IPs and CIDRs."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    def allows_name(self, name: str) -> bool:
        """Whether ``name`` (normalised) is listed, exactly or under a ``*.`` wildcard."""
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def allows_address(self, addr: IPAddress, *, exact: bool = False) -> bool:
        """Whether ``addr`` is inside a listed network (``exact``: listed as a single address)."""
        for net in self.networks:
            if net.version != addr.version:
                continue
            if exact and net.prefixlen != net.max_prefixlen:
                continue
            if addr in net:
                return True
        return False


def parse_allow(text: str) -> AllowList:
    """Parse a comma-separated allow list; blanks and unparsable entries are ignored.

    Args:
        text: e.g. ``"127.0.0.1, 10.0.0.0/8, [::1], api.internal, *.corp.example"``.

    Returns:
        The parsed list.
    """
    names: set[str] = set()
    suffixes: list[str] = []
    networks: list[IPNetwork] = []
    for raw in text.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if entry.startswith("*."):
            suffixes.append(normalise_host(entry[1:]))
        else:
            names.add(normalise_host(entry))
    return AllowList(frozenset(names), tuple(suffixes), tuple(networks))


def normalise_host(host: str) -> str:
    """Lower-case, without IPv6 brackets, zone id or trailing dots (``LocalHost.`` -> ``localhost``)."""
    host = host.strip().lower().strip("[]")
    host = host.split("%", 1)[0]  # fe80::1%eth0 and its URL spelling fe80::1%25eth0
    return host.rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The IP a host stands for by its spelling alone, including legacy IPv4 forms, else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def hostname_verdict(name: str, allow: AllowList) -> Verdict:
    """Decide what can be decided from the (normalised) host name before any DNS query.

    Metadata names are refused outright; literal addresses and ``localhost`` names (RFC 6761) get their
    addresses without DNS, so a resolver cannot disagree; other names need DNS (``addresses`` empty).
    """
    if name in METADATA_NAMES and name not in allow.names:
        return Verdict(True, "a cloud metadata host name")
    lit = literal_address(name)
    if lit is not None:
        return Verdict(False, addresses=(lit,))
    if name == "localhost" or name.endswith(".localhost"):
        return Verdict(False, addresses=(IPv4Address("127.0.0.1"), IPv6Address("::1")))
    return Verdict(False)


def embedded_ipv4(addr: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, compatible, NAT64, 6to4), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped, "IPv4-mapped"
    low = IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _TRANSLATED:
        return low, "IPv4-translated"
    if addr in _NAT64:
        return low, "NAT64"
    if addr in _COMPAT and int(addr) > 1:
        return low, "IPv4-compatible"
    if addr.sixtofour is not None:
        return addr.sixtofour, "6to4"
    return None


def blocked_category(addr: IPAddress) -> str | None:
    """Why ``addr`` is not a public destination (``"a loopback address"``), or ``None`` when it is."""
    if addr in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(addr, IPv6Address):
        inner = embedded_ipv4(addr)
        if inner is not None:
            why = blocked_category(inner[0])
            return f"the {inner[1]} form of {why} ({inner[0]})" if why else None
    table = _V4_BLOCKED if isinstance(addr, IPv4Address) else _V6_BLOCKED
    for net, label in table:
        if addr in net:
            return label
    if not addr.is_global or addr.is_multicast:
        return "a non-public address"
    return None


def check_address(addr: IPAddress, name: str, allow: AllowList) -> Verdict:
    """Whether connecting to ``addr`` (resolved from ``name``) is refused, and why.

    Args:
        addr: a candidate address of the destination.
        name: the normalised host name of the URL (an allowed name allows its non-metadata addresses).
        allow: the parsed ``FLOWTIDE_HTTP_ALLOW``.
    """
    why = blocked_category(addr)
    if why is None:
        return Verdict(False)
    inner = embedded_ipv4(addr) if isinstance(addr, IPv6Address) else None
    forms = [addr] + ([inner[0]] if inner else [])
    if any(f in METADATA_ADDRESSES for f in forms):
        if any(allow.allows_address(f, exact=True) for f in forms):
            return Verdict(False)
        return Verdict(True, why)
    if allow.allows_name(name) or any(allow.allows_address(f) for f in forms):
        return Verdict(False)
    return Verdict(True, why)
