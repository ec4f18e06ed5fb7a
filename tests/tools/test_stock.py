"""get_stock_price: Finnhub's quote through the httpx seam, the key in a header only, the
unknown-symbol answer, bad keys and outages as plain sentences, declared only with a key."""

import httpx
import pytest

from assistant.tools import registry
from tests.http_seam import load_fixture

QUOTE = ("GET", "finnhub.io", "/api/v1/quote")


@pytest.fixture
def stock_settings(settings):
    settings.PASTRA_TOOLS = ["get_weather", "web_search", "get_stock_price"]
    settings.PASTRA_STOCK_API_KEY = "fh-test-key"
    return settings


def quote(http_routes, name: str, status: int = 200):
    http_routes.json("GET", "https://finnhub.io/api/v1/quote", load_fixture(name), status=status)


async def run(symbol: str):
    return await registry.run(call_id="c1", name="get_stock_price", args={"symbol": symbol})


async def test_a_quote_for_a_symbol(stock_settings, http_routes):
    quote(http_routes, "finnhub-quote-aapl.json")
    result = await run("aapl")
    assert result.ok
    assert result.response == {
        "symbol": "AAPL",
        "price": 261.74,
        "change": 2.28,
        "change_percent": 0.8788,
        "high": 263.31,
        "low": 260.68,
        "open": 261.07,
        "previous_close": 259.46,
        "as_of": "2025-12-02T21:00Z",
        "source": "Finnhub",
    }
    (request,) = http_routes.sent("finnhub.io")
    assert request.url.params["symbol"] == "AAPL"
    # The key goes as a header, never in the URL (which access logs keep).
    assert request.headers["X-Finnhub-Token"] == "fh-test-key"
    assert "fh-test-key" not in str(request.url)


async def test_c_h_and_l_all_zero_is_no_such_symbol(stock_settings, http_routes):
    quote(http_routes, "finnhub-quote-unknown.json")
    result = await run("ZZZZQ")
    assert result.response == {
        "status": "error",
        "error": "no such symbol: ZZZZQ",
        "retryable": False,
    }


@pytest.mark.parametrize(
    ("fixture", "status", "error", "retryable"),
    [
        (
            "finnhub-error-bad-key.json",
            401,
            "the stock price service refused Pastra's API key",
            False,
        ),
        (
            "finnhub-error-rate-limit.json",
            429,
            "the stock price service is busy: try again in a minute",
            True,
        ),
    ],
)
async def test_a_refusal_is_a_sentence(
    stock_settings, http_routes, fixture, status, error, retryable
):
    quote(http_routes, fixture, status=status)
    result = await run("AAPL")
    assert result.response == {"status": "error", "error": error, "retryable": retryable}


async def test_an_unreachable_service_says_so_plainly(stock_settings, http_routes):
    def down(request):
        raise httpx.ConnectError("no route to host", request=request)

    http_routes[QUOTE] = down
    result = await run("AAPL")
    assert result.response["error"] == "the stock price service could not be reached"
    assert result.message() == "The stock price service could not be reached."


async def test_not_a_symbol_is_refused_before_any_request(stock_settings, http_routes):
    result = await run("DROP TABLE; --")
    assert result.response["error"] == "that is not a stock symbol: use a ticker such as AAPL"
    assert http_routes.requests == []


async def test_a_deployment_points_the_tool_at_its_own_url(stock_settings, http_routes):
    stock_settings.PASTRA_STOCK_URL = "http://quotes.internal:8080/api/v1/quote"
    http_routes.json(
        "GET", "http://quotes.internal:8080/api/v1/quote", load_fixture("finnhub-quote-aapl.json")
    )
    assert (await run("AAPL")).ok


def test_declared_only_when_a_key_is_set(stock_settings):
    names = lambda: [d["name"] for d in registry.function_declarations()]  # noqa: E731
    assert "get_stock_price" in names()
    assert "get_stock_price" in registry.server_function_names()
    stock_settings.PASTRA_STOCK_API_KEY = ""
    assert "get_stock_price" not in names()
    assert "get_stock_price" not in registry.server_function_names()
