"""web_search per backend, against recorded Wikipedia, SearXNG and Brave responses."""

import copy

import httpx
import pytest

from assistant.tools import registry, search
from tests.tools.conftest import load_fixture

WIKIPEDIA = "https://en.wikipedia.org/w/api.php"
BRAVE = "https://api.search.brave.com/res/v1/web/search"
SEARXNG = "http://searxng:8080"


@pytest.fixture
def searxng(settings):
    settings.PASTRA_SEARCH_BACKEND = "searxng"
    settings.PASTRA_SEARCH_URL = SEARXNG
    return settings


@pytest.fixture
def brave(settings):
    settings.PASTRA_SEARCH_BACKEND = "brave"
    settings.PASTRA_SEARCH_API_KEY = "brave-test-key"
    return settings


def assert_plain(results):
    for result in results:
        assert set(result) == {"title", "url", "snippet"}
        assert "<" not in result["title"] + result["snippet"]
        assert "&quot;" not in result["snippet"]
        assert result["url"].startswith("https://")


# --- Wikipedia (default) ---------------------------------------------------------------------


async def test_wikipedia_is_the_default_backend(http_routes):
    http_routes.json("GET", WIKIPEDIA, load_fixture("wikipedia-action-search.json"))

    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust programming"})

    assert result.ok
    answer = result.response
    assert answer["source"] == "Wikipedia"
    assert answer["query"] == "rust programming"
    assert answer["results"][0] == {
        "title": "Rust (programming language)",
        "url": "https://en.wikipedia.org/wiki/Rust_(programming_language)",
        "snippet": "Rust is a general-purpose programming language that emphasizes performance, "
        "type safety, concurrency, and memory safety. Rust supports multiple programming",
    }
    assert [r["title"] for r in answer["results"]] == [
        "Rust (programming language)",
        "Outline of the Rust programming language",
        "Rust syntax",
    ]
    assert_plain(answer["results"])
    (request,) = http_routes.requests
    assert request.url.params["srsearch"] == "rust programming"
    assert request.url.params["srlimit"] == "5"
    assert request.url.params["format"] == "json"


async def test_wikipedia_returns_at_most_five_results(http_routes):
    recorded = load_fixture("wikipedia-action-search.json")
    item = recorded["query"]["search"][0]
    recorded["query"]["search"] = [{**item, "title": f"Rust {n}"} for n in range(8)]
    http_routes.json("GET", WIKIPEDIA, recorded)

    answer = await search.web_search(query="rust")

    assert len(answer["results"]) == 5


async def test_wikipedia_rest_endpoint_override(http_routes, settings):
    settings.PASTRA_SEARCH_URL = "https://en.wikipedia.org/w/rest.php/v1/search/page"
    http_routes.json("GET", settings.PASTRA_SEARCH_URL, load_fixture("wikipedia-rest-search.json"))

    answer = await search.web_search(query="linksto:Shell_(computing)")

    assert answer["results"][0]["url"] == "https://en.wikipedia.org/wiki/North_Korea"
    assert answer["results"][2]["title"] == "Linux"
    assert_plain(answer["results"])
    (request,) = http_routes.requests
    assert dict(request.url.params) == {"q": "linksto:Shell_(computing)", "limit": "5"}


async def test_wikipedia_api_error_with_status_200(http_routes):
    http_routes.json(
        "GET",
        WIKIPEDIA,
        {"error": {"code": "nosrsearch", "info": 'The "search" parameter must be set.'}},
    )

    result = await registry.run(call_id="c1", name="web_search", args={"query": "x"})

    assert result.response == {
        "status": "error",
        "error": 'Wikipedia refused the search: The "search" parameter must be set.',
        "retryable": False,
    }


async def test_no_results_is_a_normal_answer(http_routes):
    http_routes.json("GET", WIKIPEDIA, {"batchcomplete": True, "query": {"search": []}})

    answer = await search.web_search(query="qwzxqwzx")

    assert answer == {
        "query": "qwzxqwzx",
        "source": "Wikipedia",
        "results": [],
        "note": "no results",
    }


# --- SearXNG ---------------------------------------------------------------------------------


async def test_searxng_results(http_routes, searxng):
    recorded = load_fixture("searxng-search.json")
    recorded["results"].append(load_fixture("searxng-result-item-legacy.json"))
    recorded["results"].append(
        {"url": "https://img.example/x.png", "title": "An image", "template": "images.html"}
    )
    http_routes.json("GET", f"{SEARXNG}/search", recorded)

    answer = await search.web_search(query="rust async runtime")

    assert answer["source"] == "SearXNG"
    assert answer["results"] == [
        {
            "title": "The Async Ecosystem - Asynchronous Programming in Rust",
            "url": "https://rust-lang.github.io/async-book/08_ecosystem/00_chapter.html",
            "snippet": "Learn about async runtimes, libraries, and traits.",
        },
        {
            "title": "Async in depth | Tokio",
            "url": "https://tokio.rs/tokio/tutorial/async",
            "snippet": "Tokio is a runtime for writing reliable applications.",
        },
        {
            "title": "Why Is the Sky Blue?",
            "url": "https://www.spectroscopyonline.com/view/why-sky-blue",
            "snippet": "1 apr 2013 — A detailed look at what makes the sky appear blue in color, "
            "using Rayleigh scattering, Maxwell's equations, and the Mie theory.",
        },
    ]
    (request,) = http_routes.requests
    assert request.url.params["q"] == "rust async runtime"
    assert request.url.params["format"] == "json"


async def test_searxng_url_may_already_end_in_search(http_routes, searxng):
    searxng.PASTRA_SEARCH_URL = f"{SEARXNG}/search/"
    http_routes.json("GET", f"{SEARXNG}/search", load_fixture("searxng-search.json"))

    answer = await search.web_search(query="rust")

    assert len(answer["results"]) == 2


async def test_searxng_at_most_five_and_html_stripped(http_routes, searxng):
    recorded = load_fixture("searxng-search.json")
    item = recorded["results"][0]
    recorded["results"] = [
        {**item, "url": f"{item['url']}?n={n}", "content": "<b>Tokio</b> &amp; <i>smol</i>"}
        for n in range(9)
    ]
    http_routes.json("GET", f"{SEARXNG}/search", recorded)

    answer = await search.web_search(query="rust")

    assert len(answer["results"]) == 5
    assert answer["results"][0]["snippet"] == "Tokio & smol"


async def test_searxng_error_json(http_routes, searxng):
    http_routes.json(
        "GET", f"{SEARXNG}/search", load_fixture("searxng-error-no-query.json"), status=400
    )

    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust"})

    assert result.response == {
        "status": "error",
        "error": "SearXNG refused the search: No query",
        "retryable": False,
    }


async def test_searxng_without_json_format_says_how_to_fix_it(http_routes, searxng):
    http_routes["GET", "searxng", "/search"] = lambda r: httpx.Response(
        403, html="<html><body>403 Forbidden</body></html>"
    )

    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust"})

    assert "search.formats" in result.response["error"]


async def test_searxng_engines_failing_is_not_no_results(http_routes, searxng):
    recorded = load_fixture("searxng-search.json")
    recorded["results"] = []
    http_routes.json("GET", f"{SEARXNG}/search", recorded)

    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust"})

    assert result.response == {
        "status": "error",
        "error": "the search engines did not respond; try again later",
        "retryable": True,
    }


# --- Brave -----------------------------------------------------------------------------------


async def test_brave_results_and_key_header(http_routes, brave):
    http_routes.json("GET", BRAVE, load_fixture("brave-web-search.json"))

    answer = await search.web_search(query="state farm texas")

    assert answer["source"] == "Brave Search"
    (result,) = answer["results"]
    assert result["title"] == "State Farm in California"
    assert result["url"].startswith("https://newsroom.statefarm.com/")
    assert result["snippet"].startswith("In a detailed letter to the CDI in March 2024")
    assert len(result["snippet"]) <= search.MAX_SNIPPET_CHARS
    (request,) = http_routes.requests
    assert request.headers["X-Subscription-Token"] == "brave-test-key"
    assert request.url.params["q"] == "state farm texas"
    assert request.url.params["count"] == "5"


async def test_brave_at_most_five_html_stripped_and_bad_urls_dropped(http_routes, brave):
    recorded = copy.deepcopy(load_fixture("brave-web-search.json"))
    item = recorded["web"]["results"][0]
    recorded["web"]["results"] = [{**item, "url": "javascript:alert(1)"}] + [
        {**item, "url": f"https://example.com/{n}", "description": "a <strong>bold</strong> claim"}
        for n in range(7)
    ]
    http_routes.json("GET", BRAVE, recorded)

    answer = await search.web_search(query="claims")

    assert [r["url"] for r in answer["results"]] == [f"https://example.com/{n}" for n in range(5)]
    assert answer["results"][0]["snippet"] == "a bold claim"


async def test_brave_error_is_explained_without_the_key(http_routes, brave):
    error = {
        "type": "ErrorResponse",
        "error": {
            "id": "b9a6a9b1",
            "status": 422,
            "code": "SUBSCRIPTION_TOKEN_INVALID",
            "detail": "The provided subscription token is invalid.",
            "meta": {"component": "authentication"},
        },
        "time": 1700000000,
    }
    http_routes.json("GET", BRAVE, error, status=422)

    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust"})

    assert result.response == {
        "status": "error",
        "error": "Brave Search refused the search: The provided subscription token is invalid.",
        "retryable": False,
    }
    assert "brave-test-key" not in result.summary(1000)


async def test_brave_rate_limit(http_routes, brave):
    http_routes["GET", "api.search.brave.com", "/res/v1/web/search"] = lambda r: httpx.Response(
        429, text="Too Many Requests"
    )

    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust"})

    assert "rate limiting" in result.response["error"]
    assert (result.response["status"], result.response["retryable"]) == ("error", True)


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "url", "key"),
    [("brave", "", ""), ("searxng", "", "a-key"), ("bing", "https://x.test", "k")],
)
async def test_misconfigured_search_is_never_declared(settings, backend, url, key):
    settings.PASTRA_SEARCH_BACKEND = backend
    settings.PASTRA_SEARCH_URL = url
    settings.PASTRA_SEARCH_API_KEY = key

    assert "web_search" not in registry.server_function_names()
    declared = [d["name"] for d in registry.gemini_tools()[0]["functionDeclarations"]]
    assert declared == ["get_weather"]
    result = await registry.run(call_id="c1", name="web_search", args={"query": "rust"})
    assert result.response == {
        "status": "error",
        "error": "unknown tool: web_search",
        "retryable": False,
    }


@pytest.mark.parametrize(
    ("backend", "url", "key"),
    [("wikipedia", "", ""), ("searxng", SEARXNG, ""), ("brave", "", "k"), (" Brave ", "", "k")],
)
def test_configured_search_is_declared(settings, backend, url, key):
    settings.PASTRA_SEARCH_BACKEND = backend
    settings.PASTRA_SEARCH_URL = url
    settings.PASTRA_SEARCH_API_KEY = key

    assert "web_search" in registry.server_function_names()


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ('<span class="searchmatch">Rust</span> is', "Rust is"),
        ("fish &amp; chips &quot;to go&quot;", 'fish & chips "to go"'),
        ("a<script>alert(1)</script>b", "ab"),
        ("  many \n\t spaces ", "many spaces"),
    ],
)
def test_plain_text(html, text):
    assert search.plain_text(html, 100) == text


def test_plain_text_cuts_at_a_word_boundary():
    assert search.plain_text("alpha beta gamma delta", 14) == "alpha beta…"
