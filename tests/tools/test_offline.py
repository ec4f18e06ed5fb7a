"""Tools with no internet, as in the offline demo: the upstream is the emulator and the
weather API cannot be reached. The tool card says so in one plain sentence and the model's
reply says the service could not be reached, not raw JSON."""

import httpx
import pytest

from tests.live.conftest import (  # noqa: F401 (fixtures)
    _close_thread_connections,
    emulator,
    live_settings,
    receive_until,
    start_emulator,
    start_web,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_unreachable_weather_service_is_said_plainly(
    alice,
    emulator,  # noqa: F811
    http_routes,
    live_settings,  # noqa: F811
):
    live_settings.PASTRA_WEATHER_GEOCODE_URL = "https://geocoding-api.open-meteo.com/v1/search"

    def offline(request):
        raise httpx.ConnectError("Temporary failure in name resolution", request=request)

    http_routes["GET", "geocoding-api.open-meteo.com", "/v1/search"] = offline
    comm = web_client(alice)
    await start_web(comm)
    got = await web_turn(comm, "what's the weather in Paris?")
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    _, finished = got.of("tool")
    assert (finished["phase"], finished["ok"]) == ("finished", False)
    assert finished["message"] == "The weather service could not be reached."
    assert got.finals("model")[-1] == (
        "get_weather failed: The weather service could not be reached."
    )
    await comm.disconnect()
