"""WMO weather interpretation codes (WW) as Open-Meteo documents them, in words for speech.

Source: the "WMO Weather interpretation codes (WW)" table on https://open-meteo.com/en/docs
(tests/fixtures/external-apis/wmo-weather-codes.json). Open-Meteo publishes grouped rows
("Rain: Slight, moderate and heavy intensity"); each code below takes its word from that row.
"""

WMO_CODES: dict[int, str] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snow fall",
    73: "moderate snow fall",
    75: "heavy snow fall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


def describe(code: object) -> str:
    """Words for a WMO code; "unknown conditions" for missing or undocumented codes."""
    if isinstance(code, bool) or not isinstance(code, int | float):
        return "unknown conditions"
    return WMO_CODES.get(int(code), "unknown conditions")
