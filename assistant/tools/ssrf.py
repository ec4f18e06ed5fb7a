"""SSRF guard for URLs that come from the model, the user or a provider's response.

Where it applies: `http.get_json(..., untrusted=True)`, i.e. whenever a tool fetches a URL it
did not take from settings. Operator-configured endpoints (`PASTRA_WEATHER_*`,
`PASTRA_SEARCH_URL`) are trusted and not checked, so a compose-internal SearXNG or a local
test server keeps working; the weather and search tools only add query parameters to them.

What `check_url()` refuses (OWASP SSRF Prevention Cheat Sheet; perf-reliability-security 5.4):
- schemes other than http/https, credentials in the URL, hosts that do not parse;
- host names that are local by definition (`localhost`, `*.localhost`, `*.local`,
  `*.internal` incl. `metadata.google.internal`, `metadata`, `*.home.arpa`, ...);
- IPv4 literals in any spelling other than canonical dotted decimal (`2130706433`,
  `0x7f000001`, `017700000001`, `127.1`, `0x7f.0.0.1`): resolvers read them as addresses;
- any address, literal or resolved, that is not globally routable: loopback, RFC 1918,
  CGNAT, link-local (169.254.169.254 included), unique-local, multicast, reserved,
  unspecified, and IPv4 embedded in IPv6 (IPv4-mapped, 6to4, NAT64, Teredo).
The name is resolved with `loop.getaddrinfo` and **every** returned address must pass; the
caller then connects to the checked address (pinning, against DNS rebinding) and never
follows redirects.

MCP tool servers (`mcp_client.py`) pass through the same check: their URLs are staff-entered,
but a tool server is reached on every call, so a loopback, private or link-local address
(the metadata service included) is refused unless staff opted in for that server
(`allow_private=True`: then only the scheme, credential and spelling checks apply, and the
connection is still pinned to the addresses resolved here).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass

import httpx

from assistant.tools.base import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
BLOCKED_NAMES = frozenset(
    {"localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)
BLOCKED_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".home.arpa",
    ".intranet",
    ".lan",
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeURLError(ToolError):
    """The URL may not be fetched; the message is safe to give to the model."""


@dataclass(frozen=True)
class CheckedURL:
    url: httpx.URL
    hostname: str  # without brackets or trailing dot
    addresses: tuple[str, ...]  # every address the name resolved to, all public

    @property
    def port(self) -> int:
        return self.url.port or _DEFAULT_PORTS[self.url.scheme]

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host if self.url.port is None else f"{host}:{self.url.port}"

    @property
    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the first checked address."""
        return self.url.copy_with(host=self.addresses[0])


async def check_url(url: str, *, allow_private: bool = False) -> CheckedURL:
    """Return the URL and its checked addresses, or raise `UnsafeURLError`.

    `allow_private`: the explicit opt-in for a staff-listed private or loopback server."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise UnsafeURLError("that is not a usable URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise UnsafeURLError("that is not a valid URL") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURLError("only http and https URLs can be fetched")
    if parsed.userinfo:
        raise UnsafeURLError("URLs with credentials are not allowed")
    host = parsed.host.rstrip(".").lower()
    if not host:
        raise UnsafeURLError("that URL has no host")
    if not allow_private and (host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES)):
        raise UnsafeURLError("that address is local and not allowed")

    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        try:
            resolved = await _resolve(host, port)
        except (OSError, UnicodeError):
            raise UnsafeURLError(f"could not resolve {host}") from None
        if not resolved:
            raise UnsafeURLError(f"could not resolve {host}")
        addresses = [_parse_address(text) for text in resolved]

    for address in addresses:
        if not allow_private and not is_public_address(address):
            raise UnsafeURLError("that address is private or local and not allowed")
    unique = tuple(dict.fromkeys(str(a) for a in addresses))
    return CheckedURL(url=parsed, hostname=host, addresses=unique)


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (embedded IPv4 checked too)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public_address(address.sixtofour)
        if address.teredo is not None:
            return False
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _ip_literal(host: str) -> IPAddress | None:
    """The address a literal host denotes; refuses non-canonical IPv4 spellings."""
    if ":" in host:
        return _parse_address(host.strip("[]"))
    parts = host.split(".")
    if 1 <= len(parts) <= 4 and all(_NUMERIC_PART.match(p) for p in parts):
        try:
            canonical = ipaddress.IPv4Address(host)
        except ValueError:
            # inet_aton() still reads these (decimal, octal, hex, short forms) as addresses.
            raise UnsafeURLError("unusual IP address spellings are not allowed") from None
        return canonical
    return None


def _parse_address(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise UnsafeURLError("that address is not valid") from None


async def _resolve(host: str, port: int) -> list[str]:
    """Resolve `host` the way the connection will (tests replace this function)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
