from confluent_kafka import KafkaException
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telemetry.simulation import BrokerUnreachable, telemetry_simulate


class Command(BaseCommand):
    help = "Produce realistic battery readings to the telemetry Kafka topic (seed 000's simulator)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000, help="readings to produce (default 1000)")
        parser.add_argument("--batteries", type=int, default=10, help="distinct batteries, ids 1..N (default 10)")
        parser.add_argument("--rate", type=float, help="readings per second (default: as fast as possible)")
        parser.add_argument("--topic", default=None, help="default settings.KAFKA_TOPIC")
        parser.add_argument("--partitions", type=int, default=1, help="partitions if the topic is created")
        parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same readings)")

    def handle(self, *args, count, batteries, rate, topic, partitions, seed, **options):
        if count < 0 or batteries < 1 or (rate is not None and rate <= 0):
            raise CommandError("--count must be ≥ 0, --batteries ≥ 1 and --rate > 0")
        topic = topic or settings.KAFKA_TOPIC
        self.stdout.write(f"producing {count} readings for {batteries} batteries to {topic}")

        def progress(sent: int) -> None:
            self.stdout.write(f"  {sent}/{count} ({sent * 100 // max(count, 1)}%)")

        servers = settings.KAFKA_BOOTSTRAP_SERVERS
        try:
            delivered = telemetry_simulate(
                bootstrap_servers=servers,
                topic=topic,
                count=count,
                batteries=batteries,
                rate=rate,
                partitions=partitions,
                seed=seed,
                progress=progress,
            )
        except BrokerUnreachable as exc:
            raise CommandError(
                f"cannot reach the Kafka broker at {servers} ({exc}); start `make run`, or set KAFKA_BOOTSTRAP_SERVERS"
            ) from exc
        except (KafkaException, TimeoutError) as exc:
            raise CommandError(f"Kafka at {servers}: {exc or type(exc).__name__}") from exc
        self.stdout.write(self.style.SUCCESS(f"delivered {delivered} readings to {topic}"))
