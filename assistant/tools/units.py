"""The units `calculate` converts between: each name, its dimension and its factor to the
dimension's base unit (temperatures are affine: an offset as well)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    dimension: str
    factor: float  # base units per one of this unit
    offset: float = 0.0  # base = value * factor + offset (temperatures)


def _many(dimension: str, factor: float, *names: str) -> dict[str, Unit]:
    return dict.fromkeys(names, Unit(dimension, factor))


UNITS: dict[str, Unit] = {
    # length (metre)
    **_many("length", 1.0, "m", "meter", "meters", "metre", "metres"),
    **_many("length", 1000.0, "km", "kilometer", "kilometers", "kilometre", "kilometres"),
    **_many("length", 0.01, "cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    **_many("length", 0.001, "mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    **_many("length", 1609.344, "mi", "mile", "miles"),
    **_many("length", 0.3048, "ft", "foot", "feet"),
    **_many("length", 0.0254, "in", "inch", "inches"),
    **_many("length", 0.9144, "yd", "yard", "yards"),
    **_many("length", 1852.0, "nmi", "nautical mile", "nautical miles"),
    # mass (kilogram)
    **_many("mass", 1.0, "kg", "kilogram", "kilograms", "kilo", "kilos"),
    **_many("mass", 0.001, "g", "gram", "grams"),
    **_many("mass", 0.45359237, "lb", "lbs", "pound", "pounds"),
    **_many("mass", 0.028349523125, "oz", "ounce", "ounces"),
    **_many("mass", 6.35029318, "st", "stone", "stones"),
    **_many("mass", 1000.0, "t", "tonne", "tonnes"),
    # volume (litre)
    **_many("volume", 1.0, "l", "liter", "liters", "litre", "litres"),
    **_many("volume", 0.001, "ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    **_many("volume", 3.785411784, "gal", "gallon", "gallons"),
    **_many("volume", 0.2365882365, "cup", "cups"),
    **_many("volume", 0.0295735295625, "fl oz", "fluid ounce", "fluid ounces"),
    # time (second)
    **_many("time", 1.0, "s", "sec", "second", "seconds"),
    **_many("time", 60.0, "min", "minute", "minutes"),
    **_many("time", 3600.0, "h", "hr", "hour", "hours"),
    **_many("time", 86400.0, "day", "days"),
    **_many("time", 604800.0, "week", "weeks"),
    # speed (metre per second)
    **_many("speed", 1.0, "m/s"),
    **_many("speed", 1000.0 / 3600.0, "km/h", "kph", "kmh"),
    **_many("speed", 1609.344 / 3600.0, "mph"),
    **_many("speed", 1852.0 / 3600.0, "kn", "knot", "knots"),
    # area (square metre)
    **_many("area", 1.0, "m2", "sq m", "square meter", "square meters", "square metre"),
    **_many("area", 1e6, "km2", "sq km", "square kilometer", "square kilometers"),
    **_many("area", 4046.8564224, "acre", "acres"),
    **_many("area", 10000.0, "ha", "hectare", "hectares"),
    **_many("area", 0.09290304, "sq ft", "square foot", "square feet"),
    # temperature (kelvin)
    **dict.fromkeys(("c", "°c", "celsius"), Unit("temperature", 1.0, 273.15)),
    **dict.fromkeys(("f", "°f", "fahrenheit"), Unit("temperature", 5 / 9, 273.15 - 32 * 5 / 9)),
    **dict.fromkeys(("k", "kelvin"), Unit("temperature", 1.0)),
}


def find(name: str) -> Unit | None:
    return UNITS.get(" ".join(name.lower().split()).removeprefix("degrees "))


def convert(value: float, source: Unit, target: Unit) -> float:
    return (value * source.factor + source.offset - target.offset) / target.factor
