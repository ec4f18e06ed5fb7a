"""get_weather against recorded Open-Meteo responses (tests/fixtures/external-apis/)."""

import copy

import httpx
import pytest

from assistant.tools import registry, weather
from assistant.tools.base import ToolError
from assistant.tools.codes import WMO_CODES, describe
from tests.tools.conftest import load_fixture

GEOCODE = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST = "https://api.open-meteo.com/v1/forecast"


@pytest.fixture
def paris(http_routes):
    """Geocoding answers with the recorded Paris results, forecast with the recorded forecast."""
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-paris.json"))
    http_routes.json("GET", FORECAST, load_fixture("open-meteo-forecast.json"))
    return http_routes


async def test_weather_summarises_recorded_responses(paris):
    result = await weather.get_weather(location="Paris")

    assert result == {
        "location": "Paris, Île-de-France, France",
        "local_time": "2026-10-03T12:30",
        "timezone": "Europe/Amsterdam",  # from the (Enschede) forecast recording
        "units": {"temperature": "°C", "wind_speed": "km/h", "precipitation": "mm"},
        "current": {
            "conditions": "partly cloudy",
            "temperature": 17.7,
            "feels_like": 17.6,
            "humidity_percent": 66,
            "cloud_cover_percent": 73,
            "precipitation": 0.0,
            "wind_speed": 3.6,
            "wind_from": "W",
            "daytime": True,
        },
        "forecast": [
            {
                "date": "2026-10-03",
                "conditions": "overcast",
                "high": 20.6,
                "low": 8.4,
                "precipitation": 0.0,
                "precipitation_chance_percent": 0,
            },
            {
                "date": "2026-10-04",
                "conditions": "fog",
                "high": 20.2,
                "low": 10.8,
                "precipitation": 0.0,
                "precipitation_chance_percent": 8,
            },
            {
                "date": "2026-10-05",
                "conditions": "overcast",
                "high": 22.2,
                "low": 11.6,
                "precipitation": 0.0,
                "precipitation_chance_percent": 0,
            },
        ],
        "source": "Open-Meteo.com",
    }


async def test_weather_sends_the_expected_open_meteo_queries(paris):
    await weather.get_weather(location="  Paris ")

    (geo,) = paris.sent("geocoding-api.open-meteo.com")
    assert dict(geo.url.params) == {
        "name": "Paris",
        "count": "1",
        "language": "en",
        "format": "json",
    }
    (forecast,) = paris.sent("api.open-meteo.com")
    params = forecast.url.params
    assert (params["latitude"], params["longitude"]) == ("48.85341", "2.3488")
    assert params["timezone"] == "auto"
    assert params["forecast_days"] == "3"
    assert set(params["current"].split(",")) >= {"temperature_2m", "weather_code"}
    assert set(params["daily"].split(",")) >= {"temperature_2m_max", "temperature_2m_min"}
    assert (params["temperature_unit"], params["wind_speed_unit"]) == ("celsius", "kmh")
    assert params["precipitation_unit"] == "mm"


async def test_imperial_units_are_passed_to_open_meteo_and_reported(http_routes):
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-paris.json"))
    recorded = load_fixture("open-meteo-forecast.json")
    recorded["current_units"].update(
        {"temperature_2m": "°F", "wind_speed_10m": "mp/h", "precipitation": "inch"}
    )
    http_routes.json("GET", FORECAST, recorded)

    result = await registry.run(
        call_id="c1", name="get_weather", args={"location": "Paris", "units": "Imperial"}
    )

    assert result.ok, result.response
    (forecast,) = http_routes.sent("api.open-meteo.com")
    assert forecast.url.params["temperature_unit"] == "fahrenheit"
    assert forecast.url.params["wind_speed_unit"] == "mph"
    assert forecast.url.params["precipitation_unit"] == "inch"
    assert result.response["units"] == {
        "temperature": "°F",
        "wind_speed": "mp/h",
        "precipitation": "inch",
    }


async def test_region_after_a_comma_picks_the_matching_place(paris):
    result = await weather.get_weather(location="Paris, Texas")

    (geo,) = paris.sent("geocoding-api.open-meteo.com")
    assert geo.url.params["name"] == "Paris"
    assert geo.url.params["count"] == "10"
    (forecast,) = paris.sent("api.open-meteo.com")
    assert forecast.url.params["latitude"] == "33.66094"
    assert result["location"] == "Paris, Texas, United States"


async def test_unknown_place_is_a_not_found_result_the_model_can_say(http_routes):
    # Open-Meteo omits "results" entirely when nothing matches (proto3 JSON).
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-notfound.json"))

    result = await registry.run(call_id="c1", name="get_weather", args={"location": "Xqzzyville"})

    assert not result.ok
    assert "not found" in result.response["error"]
    assert "Xqzzyville" in result.response["error"]
    assert not http_routes.sent("api.open-meteo.com")


async def test_one_letter_place_is_not_found_without_asking(http_routes):
    with pytest.raises(ToolError, match="not found"):
        await weather.get_weather(location="X")
    assert http_routes.requests == []


async def test_geocoding_error_json_becomes_a_clear_error(http_routes):
    recorded = load_fixture("open-meteo-geocoding-error.json")
    http_routes.json("GET", GEOCODE, recorded, status=400)

    result = await registry.run(call_id="c1", name="get_weather", args={"location": "Paris"})

    assert result.response == {
        "status": "error",
        "error": "the weather service refused the request: "
        "Parameter count must be between 1 and 100.",
        "retryable": False,  # the same request fails again: say so, do not retry
    }


async def test_forecast_error_json_becomes_a_clear_error(http_routes):
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-paris.json"))
    http_routes.json("GET", FORECAST, load_fixture("open-meteo-error.json"), status=400)

    result = await registry.run(call_id="c1", name="get_weather", args={"location": "Paris"})

    assert not result.ok
    assert result.response["error"].startswith("the weather service refused the request: ")
    assert "Cannot initialize" in result.response["error"]


async def test_provider_outage_is_an_error_not_a_crash(http_routes):
    http_routes["GET", "geocoding-api.open-meteo.com", "/v1/search"] = lambda r: httpx.Response(
        503, text="<html>Service Unavailable</html>"
    )

    result = await registry.run(call_id="c1", name="get_weather", args={"location": "Paris"})

    assert result.response == {
        "status": "error",
        "error": "the weather service is unavailable (HTTP 503)",
        "retryable": True,
    }


async def test_missing_daily_values_are_left_out(http_routes):
    http_routes.json("GET", GEOCODE, load_fixture("open-meteo-geocoding-paris.json"))
    recorded = copy.deepcopy(load_fixture("open-meteo-forecast.json"))
    recorded["daily"]["precipitation_probability_max"] = [0, None]
    del recorded["daily"]["weather_code"]
    http_routes.json("GET", FORECAST, recorded)

    result = await weather.get_weather(location="Paris")

    assert result["forecast"][1] == {
        "date": "2026-10-04",
        "high": 20.2,
        "low": 10.8,
        "precipitation": 0.0,
    }
    assert "precipitation_chance_percent" not in result["forecast"][2]


async def test_empty_location_is_refused(http_routes):
    result = await registry.run(call_id="c1", name="get_weather", args={"location": "   "})
    assert result.response == {"status": "error", "error": "location is empty", "retryable": False}


async def test_configured_local_endpoints_are_trusted(http_routes, settings, resolver):
    """A self-hoster's local Open-Meteo is operator configuration, not SSRF."""
    settings.PASTRA_WEATHER_GEOCODE_URL = "http://127.0.0.1:8089/v1/search"
    settings.PASTRA_WEATHER_FORECAST_URL = "http://localhost:8089/v1/forecast"
    http_routes.json(
        "GET", settings.PASTRA_WEATHER_GEOCODE_URL, load_fixture("open-meteo-geocoding-paris.json")
    )
    http_routes.json(
        "GET", settings.PASTRA_WEATHER_FORECAST_URL, load_fixture("open-meteo-forecast.json")
    )

    result = await weather.get_weather(location="Paris")

    assert result["current"]["conditions"] == "partly cloudy"
    assert resolver.lookups == []


def test_every_documented_wmo_code_has_words():
    table = load_fixture("wmo-weather-codes.json")
    documented = {code for row in table["documented_rows"] for code in row["codes"]}
    assert set(WMO_CODES) == documented
    for code, derived in table["per_code_DERIVED"].items():
        words = set(WMO_CODES[int(code)].split())
        assert words <= set(derived.lower().replace(":", "").split()), code


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "clear sky"),
        (2, "partly cloudy"),
        (63.0, "moderate rain"),
        (4, "unknown conditions"),
        (None, "unknown conditions"),
        (True, "unknown conditions"),
    ],
)
def test_describe(code, words):
    assert describe(code) == words
