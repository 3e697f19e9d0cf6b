from django.apps import AppConfig


class WorkersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workers"

    def ready(self) -> None:
        from commsplatform.metrics import EXTRA_COLLECTORS

        from .collectors import KafkaLagCollector, RedisLossCollector

        for collector in (KafkaLagCollector, RedisLossCollector):
            if not any(isinstance(c, collector) for c in EXTRA_COLLECTORS):
                EXTRA_COLLECTORS.append(collector())
