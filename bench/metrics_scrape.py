"""What one /metrics scrape costs the web process: CPU milliseconds per scrape with 20
streams (each with a group that has lag, a pending entry and a dead letter) and 20
consumers' counters in a real Redis, next to the same scrape with 1 stream and 1 consumer
and to rendering an empty prometheus_client registry, in the same run. The figure is the
process's CPU time (time.process_time), not wall time: Redis's own CPU is not in it.
The Kafka lag query is off (no broker here; it is cached KAFKA_LAG_CACHE_S anyway).

    python -m bench.metrics_scrape [--scrapes 200]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from commsplatform.devservers import RedisServer

from .common import emit, log

STREAMS = 20
CONSUMER_COUNT = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    with RedisServer() as redis_server:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="commsplatform.settings.base",
            DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
            REDIS_URL=redis_server.url,
            KAFKA_LAG_METRICS="0",
            LOG_LEVEL="WARNING",
        )
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import RequestFactory
        from prometheus_client import CollectorRegistry, generate_latest

        from commsplatform.metrics import metrics_view
        from workers import keys
        from workers.registry import CONSUMERS, ConsumerSpec

        call_command("migrate", verbosity=0)
        client = redis_server.client()
        real_streams, real_consumers = dict(settings.STREAMS), dict(CONSUMERS)

        def stack(streams: int, consumers: int) -> None:
            """settings.STREAMS and the registry as a deployment with that many of each."""
            # The real keys stay (the weather figures look theirs up), mapped onto the bench's streams.
            keys = [*real_streams, *(f"s{i}" for i in range(len(real_streams), streams))]
            settings.STREAMS = {key: f"bench-stream-{i % streams}" for i, key in enumerate(keys)}
            CONSUMERS.clear()
            for i in range(consumers):
                name = f"bench-consumer-{i}"
                CONSUMERS[name] = ConsumerSpec(
                    name=name, stream=f"bench-stream-{i % streams}", group=f"g{i}", handler="x.y"
                )

        stack(STREAMS, CONSUMER_COUNT)
        for spec in CONSUMERS.values():
            stream = spec.stream_name
            if not client.exists(stream):
                for n in range(100):
                    client.xadd(stream, {"n": str(n)})
                client.xadd(keys.dead_letter_stream(stream), {"error": "bench"})
            client.xgroup_create(stream, spec.group_name, id="0")
            client.xreadgroup(spec.group_name, "c-0", {stream: ">"}, count=1)
            client.hset(keys.consumer_metrics(spec.name, stream), mapping={"processed": 1000, "failed": 3})

        request = RequestFactory().get("/metrics")
        empty = CollectorRegistry()

        def cpu_ms(scrape) -> float:
            started = time.process_time()
            for _ in range(args.scrapes):
                scrape()
            return (time.process_time() - started) * 1000 / args.scrapes

        def full() -> None:
            stack(STREAMS, CONSUMER_COUNT)
            metrics_view(request)

        def small() -> None:
            stack(1, 1)
            metrics_view(request)

        stack(STREAMS, CONSUMER_COUNT)
        body = metrics_view(request).content.decode()
        assert 'stream_group_lag{group="g19",stream="bench-stream-19"} 99.0' in body, "unexpected scrape"
        for scrape in (full, small):  # warm-up
            cpu_ms(scrape)
        log("measuring")
        runs = {"full": [], "small": [], "empty": []}
        for _ in range(3):
            runs["full"].append(cpu_ms(full))
            runs["small"].append(cpu_ms(small))
            runs["empty"].append(cpu_ms(lambda: generate_latest(empty)))
        median = {name: sorted(values)[1] for name, values in runs.items()}
        settings.STREAMS = real_streams
        CONSUMERS.clear()
        CONSUMERS.update(real_consumers)
        emit(
            {
                "benchmark": "metrics_scrape",
                "scrapes": args.scrapes,
                "streams": STREAMS,
                "consumers": CONSUMER_COUNT,
                "cpu_ms_per_scrape": round(median["full"], 3),
                "baseline_cpu_ms_per_scrape_1_stream_1_consumer": round(median["small"], 3),
                "baseline_cpu_ms_empty_registry": round(median["empty"], 4),
                "ratio_to_1_stream": round(median["full"] / median["small"], 2),
                "target_cpu_ms": 20,
                "scrape_bytes": len(body),
            }
        )


if __name__ == "__main__":
    main()
