"""The HTTP seam: one client factory, no redirects, clear errors, SSRF on untrusted URLs."""

import httpx
import pytest

from assistant.tools import http, ssrf
from assistant.tools.base import ToolError


def test_client_settings(settings):
    settings.PASTRA_HTTP_TIMEOUT_SECONDS = 2.5

    client = http.client()

    assert client.follow_redirects is False
    assert client.timeout.read == 2.5
    assert client.timeout.connect == 2.5
    assert client.headers["User-Agent"] == "Pastra/1.0 (+self-hosted assistant)"


async def test_user_agent_is_sent(http_routes):
    http_routes.json("GET", "https://api.test/v1", {"ok": True})

    assert await http.get_json("https://api.test/v1") == {"ok": True}

    (request,) = http_routes.requests
    assert request.headers["User-Agent"] == http.USER_AGENT
    assert request.headers["Accept"] == "application/json"


async def test_redirects_are_not_followed(http_routes):
    http_routes["GET", "api.test", "/old"] = lambda r: httpx.Response(
        302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )

    with pytest.raises(ToolError, match="redirect"):
        await http.get_json("https://api.test/old", service="the test API")

    assert [str(r.url) for r in http_routes.requests] == ["https://api.test/old"]


async def test_timeout_is_a_tool_error(http_routes):
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    http_routes["GET", "api.test", "/slow"] = timeout

    with pytest.raises(ToolError, match="the test API did not answer in time") as caught:
        await http.get_json("https://api.test/slow", service="the test API")
    assert caught.value.retryable  # the same call may work a moment later


async def test_network_failure_is_a_tool_error(http_routes):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    http_routes["GET", "api.test", "/down"] = refuse

    with pytest.raises(ToolError, match="the test API could not be reached") as caught:
        await http.get_json("https://api.test/down", service="the test API")
    assert caught.value.retryable


async def test_non_json_answer_is_a_tool_error(http_routes):
    http_routes["GET", "api.test", "/html"] = lambda r: httpx.Response(200, html="<p>hi</p>")

    with pytest.raises(ToolError, match="not JSON"):
        await http.get_json("https://api.test/html", service="the test API")


async def test_error_status_keeps_the_json_body(http_routes):
    http_routes.json("GET", "https://api.test/bad", {"error": "No query"}, status=400)

    with pytest.raises(http.ProviderError) as caught:
        await http.get_json("https://api.test/bad")

    assert caught.value.status == 400
    assert caught.value.payload == {"error": "No query"}
    assert not caught.value.retryable  # a 4xx fails again as sent


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (404, False)]
)
async def test_overload_and_outage_statuses_are_retryable(http_routes, status, retryable):
    http_routes.json("GET", "https://api.test/busy", {}, status=status)

    with pytest.raises(http.ProviderError) as caught:
        await http.get_json("https://api.test/busy")

    assert caught.value.retryable is retryable


async def test_oversized_body_is_refused(http_routes, monkeypatch):
    monkeypatch.setattr(http, "MAX_BODY_BYTES", 1000)
    http_routes["GET", "api.test", "/big"] = lambda r: httpx.Response(
        200, content=b"[" + b"1," * 2000 + b"1]"
    )

    with pytest.raises(ToolError, match="too much data"):
        await http.get_json("https://api.test/big", service="the test API")


async def test_params_are_merged_into_a_configured_query(http_routes):
    http_routes.json("GET", "https://api.test/search", [])

    await http.get_json("https://api.test/search?language=de", params={"q": "Köln", "x": None})

    (request,) = http_routes.requests
    assert dict(request.url.params) == {"language": "de", "q": "Köln"}


async def test_trusted_configured_endpoints_skip_the_ssrf_guard(http_routes, resolver):
    http_routes.json("GET", "http://127.0.0.1:8888/search", {"results": []})
    http_routes.json("GET", "http://searxng:8080/search", {"results": []})

    await http.get_json("http://127.0.0.1:8888/search")
    await http.get_json("http://searxng:8080/search")

    assert resolver.lookups == []


async def test_untrusted_url_is_checked_and_pinned(http_routes, resolver):
    resolver["example.org"] = ["93.184.216.34"]
    http_routes.json("GET", "https://93.184.216.34/page", {"ok": True})

    assert await http.get_json("https://example.org/page?a=1", untrusted=True) == {"ok": True}

    (request,) = http_routes.requests
    assert request.url.host == "93.184.216.34"  # connects to the address that was checked
    assert request.url.params["a"] == "1"
    assert request.headers["Host"] == "example.org"
    assert request.extensions["sni_hostname"] == "example.org"


async def test_untrusted_url_to_a_private_address_is_never_requested(http_routes, resolver):
    resolver["rebind.example"] = ["127.0.0.1"]

    with pytest.raises(ssrf.UnsafeURLError):
        await http.get_json("http://rebind.example/admin", untrusted=True)
    with pytest.raises(ssrf.UnsafeURLError):
        await http.get_json("http://169.254.169.254/latest/meta-data/", untrusted=True)

    assert http_routes.requests == []


async def test_unsafe_url_error_is_a_tool_error():
    """So a tool that fetches an untrusted URL reports the refusal to the model."""
    assert issubclass(ssrf.UnsafeURLError, ToolError)
