"""Tool-test settings: known tool configuration, whatever the environment says.

The deny-all HTTP and DNS seams (`http_routes`, `resolver`) are autouse for every test, from
tests/conftest.py; their helpers live in tests/http_seam.py.
"""

import pytest

from tests.http_seam import FIXTURES, HttpRoutes, Resolver, load_fixture

__all__ = ["FIXTURES", "HttpRoutes", "Resolver", "load_fixture"]


@pytest.fixture(autouse=True)
def _tool_settings(settings):
    settings.PASTRA_TOOLS = ["get_weather", "web_search"]
    settings.PASTRA_CODE_EXECUTION = True
    settings.PASTRA_GOOGLE_SEARCH = False
    settings.PASTRA_URL_CONTEXT = False
    settings.PASTRA_TOOL_TIMEOUT_SECONDS = 8.0
    settings.PASTRA_HTTP_TIMEOUT_SECONDS = 6.0
    settings.PASTRA_WEATHER_GEOCODE_URL = "https://geocoding-api.open-meteo.com/v1/search"
    settings.PASTRA_WEATHER_FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
    settings.PASTRA_SEARCH_BACKEND = "wikipedia"
    settings.PASTRA_SEARCH_URL = ""
    settings.PASTRA_SEARCH_API_KEY = ""
    return settings
