from django.apps import AppConfig


class WeatherConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "weather"

    def ready(self) -> None:
        from commsplatform.metrics import EXTRA_COLLECTORS

        from .metrics import WeatherCollector

        if not any(isinstance(c, WeatherCollector) for c in EXTRA_COLLECTORS):
            EXTRA_COLLECTORS.append(WeatherCollector())
