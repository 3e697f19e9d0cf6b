"""Where forecasts come from: a small interface and the built-in provider.

The seed's proxy "terminals" invented a forecast per request; here that is a provider
behind `ForecastProvider`, chosen by settings.WEATHER_PROVIDER (a dotted path), so a real
weather API can replace it without touching the stream plumbing.
"""

import functools
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

CONDITIONS = (
    "Sunny",
    "Partly Cloudy",
    "Cloudy",
    "Overcast",
    "Light Rain",
    "Rain",
    "Thunderstorm",
    "Snow",
    "Fog",
    "Windy",
)


@dataclass(frozen=True)
class Forecast:
    city: str
    location: str
    forecast_time: datetime
    temperature: float  # °C
    condition: str
    humidity: int  # %
    wind_speed: float  # km/h


class ForecastProvider(Protocol):
    def forecast(self, *, city: str, location: str, at: datetime) -> Forecast: ...


class BuiltinForecastProvider:
    """Deterministic per city and hour: the same city asked within the same UTC hour gets
    the same forecast (from any process), so replies are checkable and cache-friendly.

    `delay_ms` (settings.WEATHER_PROCESSING_DELAY_MS) simulates a slow upstream.
    """

    def __init__(self, *, delay_ms: int | None = None):
        self.delay_ms = settings.WEATHER_PROCESSING_DELAY_MS if delay_ms is None else delay_ms

    def forecast(self, *, city: str, location: str, at: datetime) -> Forecast:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        hour = at.replace(minute=0, second=0, microsecond=0)
        temperature, condition, humidity, wind_speed = _weather_of(f"{city.strip().casefold()}|{hour.isoformat()}")
        return Forecast(
            city=city,
            location=location,
            forecast_time=hour + timedelta(hours=1),
            temperature=temperature,
            condition=condition,
            humidity=humidity,
            wind_speed=wind_speed,
        )


@functools.lru_cache(maxsize=4096)
def _weather_of(seed: str) -> tuple[float, str, int, float]:
    """Temperature, condition, humidity and wind for a "city|hour" seed. A str seed is
    hashed with SHA-512 by `random`: stable across processes and hosts. Remembered: the
    same cities are asked again and again within an hour, and seeding is most of the cost."""
    rng = random.Random(seed)
    return round(rng.uniform(-20, 40), 1), rng.choice(CONDITIONS), rng.randint(10, 100), round(rng.uniform(0, 80), 1)


@functools.cache
def _provider_class(path: str) -> type:
    return import_string(path)


def get_provider() -> ForecastProvider:
    return _provider_class(settings.WEATHER_PROVIDER)()
