"""`get_stock_price(symbol)`: the latest quote for a stock symbol, from Finnhub.

Declared only when `PASTRA_STOCK_API_KEY` (or `_FILE`) is set. One GET to the operator-configured
`PASTRA_STOCK_URL` (Finnhub's quote endpoint by default, `https://finnhub.io/api/v1/quote`)
through the one httpx seam, with the symbol as the only query parameter. The key goes in the
`X-Finnhub-Token` header, which Finnhub's API reference offers beside the `token` query
parameter (finnhub.io/docs/api/authentication, 2026): a key in a URL ends up in access logs, as
it did in the tutorial's console logs.

Finnhub's quote (finnhub.io/docs/api/quote, 2026): `c` current price, `d` change, `dp` percent
change, `h` and `l` the day's high and low, `o` open, `pc` previous close, `t` the quote's Unix
time. For a symbol it does not know, Finnhub answers 200 with `c`, `h` and `l` all 0: that is
"no such symbol", never a price of 0. A bad key is answered 401 with `{"error": "..."}`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from assistant.tools import http
from assistant.tools.base import Behavior, Tool, ToolError

NAME = "get_stock_price"
SERVICE = "the stock price service"
DEFAULT_URL = "https://finnhub.io/api/v1/quote"
SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.:\-^=]{0,19}$")

PARAMETERS = {
    "type": "OBJECT",
    "properties": {
        "symbol": {
            "type": "STRING",
            "description": "The stock's ticker symbol, e.g. AAPL or GOOGL.",
        }
    },
    "required": ["symbol"],
}


async def get_stock_price(*, symbol: str) -> dict:
    wanted = symbol.strip().upper()
    if not SYMBOL.match(wanted):
        raise ToolError("that is not a stock symbol: use a ticker such as AAPL")
    try:
        quote = await http.get_json(
            settings.PASTRA_STOCK_URL or DEFAULT_URL,
            params={"symbol": wanted},
            headers={"X-Finnhub-Token": settings.PASTRA_STOCK_API_KEY},
            service=SERVICE,
        )
    except http.ProviderError as exc:
        if exc.status in (401, 403):
            raise ToolError(f"{SERVICE} refused Pastra's API key") from None
        if exc.status == 429:
            raise ToolError(f"{SERVICE} is busy: try again in a minute", retryable=True) from None
        raise
    if not isinstance(quote, dict) or not _is_number(quote.get("c")):
        raise ToolError(f"{SERVICE} sent an answer Pastra cannot read")
    if all(quote.get(key) in (0, None) for key in ("c", "h", "l")):
        raise ToolError(f"no such symbol: {wanted}")
    answer = {
        "symbol": wanted,
        "price": quote["c"],
        "change": _number(quote.get("d")),
        "change_percent": _number(quote.get("dp")),
        "high": _number(quote.get("h")),
        "low": _number(quote.get("l")),
        "open": _number(quote.get("o")),
        "previous_close": _number(quote.get("pc")),
        "as_of": _time(quote.get("t")),
        "source": "Finnhub",
    }
    return {key: value for key, value in answer.items() if value is not None}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float | int | None:
    return value if _is_number(value) else None


def _time(value: Any) -> str | None:
    if not _is_number(value) or value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def is_configured() -> bool:
    return bool(getattr(settings, "PASTRA_STOCK_API_KEY", ""))


TOOL = Tool(
    name=NAME,
    description=(
        "Get the latest price of a stock and its change today, by ticker symbol. Use it "
        "whenever the user asks about a share price or how a stock is doing."
    ),
    parameters=PARAMETERS,
    handler=get_stock_price,
    behavior=Behavior.BLOCKING,
    is_configured=is_configured,
)
