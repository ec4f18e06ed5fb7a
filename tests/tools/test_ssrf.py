"""The SSRF guard for URLs from the model, the user or a provider's response."""

import asyncio
import ipaddress
import socket

import pytest

from assistant.tools import ssrf
from assistant.tools.ssrf import _resolve as real_resolve

REFUSED_LITERALS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8000/admin/",
    "http://127.255.255.254/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/computeMetadata/v1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://198.18.0.1/",  # benchmarking
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[fd00::1]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
]
REFUSED_SPELLINGS = [
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hex
    "http://0X7F000001/",
    "http://017700000001/",  # octal
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0/",
    "http://3232235777/",  # 192.168.1.1
    "http://2852039166/",  # 169.254.169.254
    "http://127.000.000.001/",
]
REFUSED_NAMES = [
    "http://localhost/",
    "http://LOCALHOST./",
    "http://localhost:6379/",
    "http://foo.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://db.internal/",
    "http://printer.local/",
    "http://router.home.arpa/",
]
REFUSED_SCHEMES = [
    "file:///etc/passwd",
    "ftp://example.com/",
    "gopher://127.0.0.1:6379/_INFO",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "ws://example.com/",
    "dict://127.0.0.1:11211/",
    "//example.com/",
    "example.com",
    "",
    "http://",
    "http://user:pass@example.com/",
    "http://example.com@127.0.0.1/",
]


@pytest.mark.parametrize(
    "url", REFUSED_LITERALS + REFUSED_SPELLINGS + REFUSED_NAMES + REFUSED_SCHEMES
)
async def test_refused_without_any_dns_lookup(url, resolver):
    with pytest.raises(ssrf.UnsafeURLError):
        await ssrf.check_url(url)
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["::1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["fd12:3456::1"],
        ["93.184.216.34", "192.168.0.10"],  # every address must be public
    ],
)
async def test_name_resolving_to_a_private_address_is_refused(resolver, addresses):
    resolver["innocent.example"] = addresses

    with pytest.raises(ssrf.UnsafeURLError, match="private or local"):
        await ssrf.check_url("https://innocent.example/page")

    assert resolver.lookups == ["innocent.example"]


async def test_the_resolved_address_is_checked_through_loop_getaddrinfo(monkeypatch):
    """With the real resolver: a name whose DNS answer is loopback is refused."""
    monkeypatch.setattr(ssrf, "_resolve", real_resolve)
    loop = asyncio.get_running_loop()
    asked = []

    async def getaddrinfo(host, port, *, type=0, **kwargs):
        asked.append((host, port, type))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)

    with pytest.raises(ssrf.UnsafeURLError):
        await ssrf.check_url("https://loopback.example:8443/")

    assert asked == [("loopback.example", 8443, socket.SOCK_STREAM)]


async def test_real_resolver_reads_numeric_hosts_without_dns():
    assert await real_resolve("127.0.0.1", 80) == ["127.0.0.1"]


async def test_unresolvable_name_is_refused(resolver):
    resolver["nxdomain.example"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ssrf.UnsafeURLError, match="could not resolve"):
        await ssrf.check_url("https://nxdomain.example/")


async def test_public_name_is_allowed(resolver):
    resolver["example.com"] = ["93.184.216.34", "93.184.216.34"]

    checked = await ssrf.check_url("https://Example.COM./a?b=c")

    assert checked.hostname == "example.com"
    assert checked.addresses == ("93.184.216.34",)
    assert checked.host_header == "example.com"
    assert str(checked.pinned_url) == "https://93.184.216.34/a?b=c"
    assert checked.port == 443


async def test_public_address_with_a_port(resolver):
    resolver["example.com"] = ["2606:2800:220:1:248:1893:25c8:1946"]

    checked = await ssrf.check_url("http://example.com:8080/x")

    assert checked.host_header == "example.com:8080"
    assert str(checked.pinned_url) == "http://[2606:2800:220:1:248:1893:25c8:1946]:8080/x"


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/", "https://[2606:2800:220:1:248:1893:25c8:1946]/"]
)
async def test_public_literals_are_allowed_without_dns(url, resolver):
    checked = await ssrf.check_url(url)

    assert checked.addresses
    assert resolver.lookups == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("172.20.0.1", False),
        ("192.0.2.1", False),  # documentation
        ("::ffff:192.168.0.1", False),
        ("fe80::1%eth0", False),
        ("2001:db8::1", False),  # documentation
    ],
)
def test_is_public_address(address, public):
    assert ssrf.is_public_address(ipaddress.ip_address(address)) is public
