"""`get_weather(location, units?)`: current conditions and a 3-day forecast from Open-Meteo.

Keyless. Two requests to operator-configured endpoints (trusted; the model only supplies
query parameters): geocoding (`PASTRA_WEATHER_GEOCODE_URL`, "Paris" → coordinates) and
forecast (`PASTRA_WEATHER_FORECAST_URL`). The answer is a small dict for the model, not the
provider's JSON. "Springfield, Illinois" searches "Springfield" and prefers the result whose
country or region matches "Illinois" (Open-Meteo matches names only).

Expected failures raise `ToolError` with a sentence the model can say: an unknown place is
"place not found: ...", a provider error carries the provider's reason.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from assistant.tools import http
from assistant.tools.base import Behavior, Tool, ToolError
from assistant.tools.codes import describe

NAME = "get_weather"
SERVICE = "the weather service"
MAX_LOCATION_CHARS = 120
FORECAST_DAYS = 3
CURRENT_VARIABLES = (
    "temperature_2m",
    "relative_humidity_2m",
    "apparent_temperature",
    "is_day",
    "precipitation",
    "weather_code",
    "cloud_cover",
    "wind_speed_10m",
    "wind_direction_10m",
)
DAILY_VARIABLES = (
    "weather_code",
    "temperature_2m_max",
    "temperature_2m_min",
    "precipitation_sum",
    "precipitation_probability_max",
)
UNIT_PARAMS = {
    "metric": {"temperature_unit": "celsius", "wind_speed_unit": "kmh", "precipitation_unit": "mm"},
    "imperial": {
        "temperature_unit": "fahrenheit",
        "wind_speed_unit": "mph",
        "precipitation_unit": "inch",
    },
}
DEFAULT_UNIT_LABELS = {
    "metric": {"temperature": "°C", "wind_speed": "km/h", "precipitation": "mm"},
    "imperial": {"temperature": "°F", "wind_speed": "mp/h", "precipitation": "inch"},
}
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")

PARAMETERS = {
    "type": "OBJECT",
    "properties": {
        "location": {
            "type": "STRING",
            "description": (
                "Place name, optionally followed by a comma and the region or country, "
                "e.g. 'Paris' or 'Springfield, Illinois'."
            ),
        },
        "units": {
            "type": "STRING",
            "enum": ["metric", "imperial"],
            "description": "metric (°C, km/h, mm; the default) or imperial (°F, mph, inch).",
        },
    },
    "required": ["location"],
}


async def get_weather(*, location: str, units: str = "metric") -> dict:
    query = " ".join(location.split())
    if not query:
        raise ToolError("location is empty")
    if len(query) > MAX_LOCATION_CHARS:
        raise ToolError("location is too long")
    if units not in UNIT_PARAMS:
        raise ToolError("units must be metric or imperial")
    place = await _geocode(query)
    forecast = await _forecast(place, units)
    return _summarise(place, forecast, units)


async def _geocode(query: str) -> dict:
    name, _, qualifier = (part.strip() for part in query.partition(","))
    if len(name) < 2:  # Open-Meteo answers "no results" for names under 2 characters
        raise ToolError(f"place not found: {query}")
    data = await _get(
        settings.PASTRA_WEATHER_GEOCODE_URL,
        {"name": name, "count": 10 if qualifier else 1, "language": "en", "format": "json"},
    )
    # proto3 JSON omits an empty repeated field: no match means no "results" key at all.
    results = [r for r in (data.get("results") or []) if isinstance(r, dict)]
    if not results:
        raise ToolError(f"place not found: {query}. Try a nearby town or add the country.")
    place = _best_match(results, qualifier)
    if not all(_is_number(place.get(key)) for key in ("latitude", "longitude")):
        raise ToolError(f"{SERVICE} sent a place without coordinates")
    return place


def _best_match(results: list[dict], qualifier: str) -> dict:
    wanted = qualifier.lower()
    if wanted:
        for result in results:
            for key in ("country", "country_code", "admin1", "admin2", "admin3"):
                value = str(result.get(key) or "").lower()
                if value and (value == wanted or value.startswith(wanted)):
                    return result
    return results[0]


async def _forecast(place: dict, units: str) -> dict:
    return await _get(
        settings.PASTRA_WEATHER_FORECAST_URL,
        {
            "latitude": place["latitude"],
            "longitude": place["longitude"],
            "current": ",".join(CURRENT_VARIABLES),
            "daily": ",".join(DAILY_VARIABLES),
            "timezone": "auto",
            "forecast_days": FORECAST_DAYS,
            **UNIT_PARAMS[units],
        },
    )


async def _get(url: str, params: dict) -> dict:
    # `url` is an operator-configured endpoint (settings): trusted, so no SSRF guard; the
    # model's input only ever becomes query parameters.
    try:
        data = await http.get_json(url, params=params, service=SERVICE)
    except http.ProviderError as exc:
        raise ToolError(_provider_message(exc), retryable=exc.retryable) from None
    if not isinstance(data, dict):
        raise ToolError(f"{SERVICE} sent an unexpected answer")
    if data.get("error") is True:  # Open-Meteo's error shape, should it come with a 200
        raise ToolError(_reason(data) or f"{SERVICE} refused the request")
    return data


def _provider_message(exc: http.ProviderError) -> str:
    reason = _reason(exc.payload)
    if reason:
        return f"{SERVICE} refused the request: {reason}"
    if exc.status == 429:
        return f"{SERVICE} is rate limiting us; try again in a minute"
    return f"{SERVICE} is unavailable (HTTP {exc.status})"


def _reason(payload: Any) -> str:
    """Open-Meteo errors are `{"error": true, "reason": "..."}`; match the shape, not the text."""
    if isinstance(payload, dict) and isinstance(payload.get("reason"), str):
        return payload["reason"].strip()[:200]
    return ""


def _summarise(place: dict, data: dict, units: str) -> dict:
    current = data.get("current")
    if not isinstance(current, dict):
        raise ToolError(f"{SERVICE} sent no current conditions")
    current_units = data.get("current_units") or {}
    defaults = DEFAULT_UNIT_LABELS[units]
    return {
        "location": _label(place),
        "local_time": current.get("time"),
        "timezone": data.get("timezone") or place.get("timezone"),
        "units": {
            "temperature": current_units.get("temperature_2m") or defaults["temperature"],
            "wind_speed": current_units.get("wind_speed_10m") or defaults["wind_speed"],
            "precipitation": current_units.get("precipitation") or defaults["precipitation"],
        },
        "current": _without_none(
            {
                "conditions": describe(current.get("weather_code")),
                "temperature": current.get("temperature_2m"),
                "feels_like": current.get("apparent_temperature"),
                "humidity_percent": current.get("relative_humidity_2m"),
                "cloud_cover_percent": current.get("cloud_cover"),
                "precipitation": current.get("precipitation"),
                "wind_speed": current.get("wind_speed_10m"),
                "wind_from": _compass(current.get("wind_direction_10m")),
                "daytime": None if current.get("is_day") is None else bool(current["is_day"]),
            }
        ),
        "forecast": _daily(data.get("daily")),
        "source": "Open-Meteo.com",
    }


def _daily(daily: Any) -> list[dict]:
    if not isinstance(daily, dict) or not isinstance(daily.get("time"), list):
        return []

    def at(key: str, index: int) -> Any:
        values = daily.get(key)
        return values[index] if isinstance(values, list) and index < len(values) else None

    days = []
    for index, date in enumerate(daily["time"][:FORECAST_DAYS]):
        code = at("weather_code", index)
        days.append(
            _without_none(
                {
                    "date": date,
                    "conditions": None if code is None else describe(code),
                    "high": at("temperature_2m_max", index),
                    "low": at("temperature_2m_min", index),
                    "precipitation": at("precipitation_sum", index),
                    "precipitation_chance_percent": at("precipitation_probability_max", index),
                }
            )
        )
    return days


def _label(place: dict) -> str:
    parts: list[str] = []
    for key in ("name", "admin1", "country"):
        value = place.get(key)
        if isinstance(value, str) and value and value not in parts:
            parts.append(value)
    return ", ".join(parts)


def _compass(degrees: Any) -> str | None:
    if not _is_number(degrees):
        return None
    return COMPASS[round(float(degrees) % 360 / 45) % 8]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _without_none(values: dict) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def is_configured() -> bool:
    return bool(settings.PASTRA_WEATHER_GEOCODE_URL and settings.PASTRA_WEATHER_FORECAST_URL)


TOOL = Tool(
    name=NAME,
    description=(
        "Get the current weather and a 3-day forecast for a place. Use it whenever the user "
        "asks about weather, temperature, rain or wind somewhere."
    ),
    parameters=PARAMETERS,
    handler=get_weather,
    behavior=Behavior.BLOCKING,
    is_configured=is_configured,
)
