"""`make bench`: run every benchmark, one after the other, each printing its JSON."""

import subprocess
import sys

BENCHMARKS = [
    "bench.ingest",
    "bench.consume",
    "bench.outbox",
    "bench.seed_users",
    "bench.campaign_100k",
    "bench.weather",
    "bench.orders_saga",
    "bench.kafka_ingest",
    "bench.metrics_scrape",
]


def main() -> int:
    failed = []
    for module in sys.argv[1:] or BENCHMARKS:
        print(f"== {module}", file=sys.stderr, flush=True)
        if subprocess.run([sys.executable, "-m", module]).returncode != 0:
            failed.append(module)
    if failed:
        print(f"benchmarks that did not run to the end: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
