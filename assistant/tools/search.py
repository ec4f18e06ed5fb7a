"""`web_search(query)`: a few results (title, url, snippet) from the configured backend.

`PASTRA_SEARCH_BACKEND` chooses the provider:

- `wikipedia` (default, keyless): MediaWiki's Action API search
  (`https://en.wikipedia.org/w/api.php`). `PASTRA_SEARCH_URL` may point at another wiki's
  `api.php`, a bare wiki origin, or the REST endpoint `.../w/rest.php/v1/search/page`.
- `searxng` (self-hosted, e.g. the compose stack's instance): `PASTRA_SEARCH_URL` is the
  instance's base URL; its `settings.yml` must allow the `json` format. Without a URL the
  tool is disabled.
- `brave`: Brave Search API with `PASTRA_SEARCH_API_KEY` sent as `X-Subscription-Token`;
  `PASTRA_SEARCH_URL` optionally overrides the endpoint. Without a key the tool is disabled.

All endpoints come from settings and are trusted; the query is only ever a parameter. Result
URLs are handed to the model, never fetched. Snippets are plain text (HTML stripped), and at
most `MAX_RESULTS` results are returned. Search results are untrusted text: the model sees
them as data inside a structured result, and the UI must render them as text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from assistant.tools import http
from assistant.tools.base import Behavior, Tool, ToolError

NAME = "web_search"
MAX_RESULTS = 5
MAX_QUERY_CHARS = 300
MAX_TITLE_CHARS = 150
MAX_SNIPPET_CHARS = 300
WIKIPEDIA_URL = "https://en.wikipedia.org/w/api.php"
BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"

PARAMETERS = {
    "type": "OBJECT",
    "properties": {
        "query": {
            "type": "STRING",
            "description": "What to search for, in a few keywords.",
        },
    },
    "required": ["query"],
}

Result = dict[str, str]


async def web_search(*, query: str) -> dict:
    text = " ".join(query.split())
    if not text:
        raise ToolError("query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise ToolError("query is too long; use a few keywords")
    name = backend()
    search = BACKENDS.get(name)
    if search is None or not is_configured():
        raise ToolError("web search is not configured on this server")
    source, results = await search(text)
    unique: dict[str, Result] = {}
    for result in results:
        if result["url"] not in unique and result["title"]:
            unique[result["url"]] = result
    answer: dict[str, Any] = {
        "query": text,
        "source": source,
        "results": list(unique.values())[:MAX_RESULTS],
    }
    if not answer["results"]:
        answer["note"] = "no results"
    return answer


def backend() -> str:
    return (settings.PASTRA_SEARCH_BACKEND or "wikipedia").strip().lower()


def is_configured() -> bool:
    name = backend()
    if name == "wikipedia":
        return True
    if name == "searxng":
        return bool(settings.PASTRA_SEARCH_URL)
    if name == "brave":
        return bool(settings.PASTRA_SEARCH_API_KEY)
    return False


# --- Wikipedia -------------------------------------------------------------------------------


async def _wikipedia(query: str) -> tuple[str, list[Result]]:
    url = httpx.URL(settings.PASTRA_SEARCH_URL or WIKIPEDIA_URL)
    if url.path in ("", "/"):
        url = url.copy_with(path="/w/api.php")
    origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
    rest = url.path.rstrip("/").endswith("/search/page")
    if rest:
        params: dict = {"q": query, "limit": MAX_RESULTS}
    else:
        params = {
            "action": "query",
            "list": "search",
            "srsearch": query,
            "srlimit": MAX_RESULTS,
            "srprop": "snippet",
            "format": "json",
            "formatversion": 2,
        }
    data = await _get("Wikipedia", url, params=params)
    if isinstance(data.get("error"), dict):  # the Action API reports errors with HTTP 200
        info = plain_text(str(data["error"].get("info") or ""), MAX_SNIPPET_CHARS)
        raise ToolError(f"Wikipedia refused the search: {info or 'unknown error'}")
    if rest:
        items = data.get("pages")
        results = [
            _result(
                item.get("title"),
                _article_url(origin, item.get("key") or item.get("title")),
                item.get("excerpt") or item.get("description"),
            )
            for item in _dicts(items)
        ]
    else:
        items = (data.get("query") or {}).get("search")
        results = [
            _result(
                item.get("title"),
                _article_url(origin, item.get("title")),
                item.get("snippet"),
            )
            for item in _dicts(items)
        ]
    return "Wikipedia", [r for r in results if r]


def _article_url(origin: str, title: Any) -> str | None:
    if not isinstance(title, str) or not title:
        return None
    return f"{origin}/wiki/{quote(title.replace(' ', '_'), safe='()_,:')}"


# --- SearXNG ---------------------------------------------------------------------------------


async def _searxng(query: str) -> tuple[str, list[Result]]:
    url = httpx.URL(settings.PASTRA_SEARCH_URL)
    path = url.path.rstrip("/")
    url = url.copy_with(path=path if path.endswith("/search") else f"{path}/search")
    data = await _get(
        "SearXNG",
        url,
        params={"q": query, "format": "json", "categories": "general", "safesearch": 1},
    )
    items = [
        item
        for item in _dicts(data.get("results"))
        if item.get("template") in (None, "default.html")  # web pages, not images/videos
    ]
    results = [_result(i.get("title"), i.get("url"), i.get("content")) for i in items]
    results = [r for r in results if r]
    if not results and data.get("unresponsive_engines"):
        # An empty list with failing engines means "could not search", not "nothing found".
        raise ToolError("the search engines did not respond; try again later", retryable=True)
    return "SearXNG", results


# --- Brave -----------------------------------------------------------------------------------


async def _brave(query: str) -> tuple[str, list[Result]]:
    data = await _get(
        "Brave Search",
        httpx.URL(settings.PASTRA_SEARCH_URL or BRAVE_URL),
        params={"q": query, "count": MAX_RESULTS, "text_decorations": "false"},
        headers={"X-Subscription-Token": settings.PASTRA_SEARCH_API_KEY},
    )
    items = (data.get("web") or {}).get("results")
    results = [_result(i.get("title"), i.get("url"), i.get("description")) for i in _dicts(items)]
    return "Brave Search", [r for r in results if r]


# --- shared ----------------------------------------------------------------------------------


async def _get(source: str, url: httpx.URL, *, params: dict, headers: dict | None = None) -> dict:
    # `url` is an operator-configured endpoint (settings): trusted, so no SSRF guard (a
    # compose-internal SearXNG must work); the query only ever becomes a parameter.
    try:
        data = await http.get_json(url, params=params, headers=headers, service=source)
    except http.ProviderError as exc:
        raise ToolError(_provider_message(source, exc), retryable=exc.retryable) from None
    if not isinstance(data, dict):
        raise ToolError(f"{source} sent an unexpected answer")
    return data


def _provider_message(source: str, exc: http.ProviderError) -> str:
    payload = exc.payload
    detail = ""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, str):  # SearXNG: {"error": "No query"}
            detail = error
        elif isinstance(error, dict):  # Brave: {"type": "ErrorResponse", "error": {...}}
            detail = str(error.get("detail") or error.get("code") or "")
    if exc.status == 429:
        return f"{source} is rate limiting us; try again in a minute"
    if source == "SearXNG" and exc.status == 403 and payload is None:
        return "the SearXNG instance does not allow JSON output (add json to search.formats)"
    if detail:
        return f"{source} refused the search: {plain_text(detail, MAX_SNIPPET_CHARS)}"
    return f"{source} is unavailable (HTTP {exc.status})"


def _result(title: Any, url: Any, snippet: Any) -> Result | None:
    if not isinstance(title, str) or not isinstance(url, str):
        return None
    if not url.startswith(("https://", "http://")):
        return None
    return {
        "title": plain_text(title, MAX_TITLE_CHARS),
        "url": url,
        "snippet": plain_text(snippet if isinstance(snippet, str) else "", MAX_SNIPPET_CHARS),
    }


def _dicts(items: Any) -> list[dict]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(html: str, limit: int) -> str:
    """Strip tags, decode entities, collapse whitespace, cut at a word boundary."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = " ".join("".join(parser.parts).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut.rstrip(" ,;:") + "…"


BACKENDS: dict[str, Callable[[str], Awaitable[tuple[str, list[Result]]]]] = {
    "wikipedia": _wikipedia,
    "searxng": _searxng,
    "brave": _brave,
}

TOOL = Tool(
    name=NAME,
    description=(
        "Search the web for current or factual information. Returns a few results with a "
        "title, URL and short snippet. Use it when you need facts you are unsure of."
    ),
    parameters=PARAMETERS,
    handler=web_search,
    behavior=Behavior.BLOCKING,
    is_configured=is_configured,
)
