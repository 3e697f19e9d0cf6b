"""Weather request/reply under load: `POST /WeatherForecast/city` (XADD, a terminal answers
on weather-responses, the web process's listener wakes the caller) next to the
fire-and-forget `POST /event` (XADD only), same gunicorn, same run.

    python -m bench.weather [--duration 8] [--concurrency 32] [--rounds 3] [--terminals 4] [--batch 1]

gunicorn runs gthread workers (request/reply holds a thread while it waits, so threads ×
workers ≥ concurrency); the `weather` worker runs with --terminals consumer threads and no
simulated delay (the shipped defaults: 4 terminals taking one request each; with a
CPU-only provider `--terminals 1 --batch 16` is cheaper per request). Rounds alternate the two routes so drift on the shared machine hits both;
figures are medians over rounds. Target: ratio ≥ 0.6 of fire-and-forget, p99 ≤ 50 ms.
"""

import argparse
import json
import statistics
import subprocess

from weather.loadtest import CITY_LOCATIONS as CITIES

from .common import PYTHON, ROOT, Gunicorn, emit, http_load, log, start_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--terminals", type=int, default=4, help="WEATHER_TERMINALS of the worker")
    parser.add_argument("--batch", type=int, default=1, help="WEATHER_BATCH_SIZE: requests a terminal takes at once")
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()

    stack = start_stack(extra_env={"WEATHER_TERMINALS": str(args.terminals), "WEATHER_PROCESSING_DELAY_MS": "0"})
    threads = -(-args.concurrency // args.web_workers)
    server = Gunicorn(stack, workers=args.web_workers, threads=threads)
    worker = subprocess.Popen(
        [PYTHON, "manage.py", "runworker", "weather"],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=open(stack.tmp / "worker.log", "ab"),
    )
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Token {stack.token}"}

        def event_body(n: int) -> bytes:
            return json.dumps({"description": f"bench event {n}"}).encode()

        def weather_body(n: int) -> bytes:
            city, location = CITIES[n % len(CITIES)]
            return json.dumps({"city": city, "location": location}).encode()

        def run(path: str, body, seconds: float):
            return http_load(
                port=server.port, method="POST", path=path, body=body, headers=headers,
                concurrency=args.concurrency, duration_s=seconds,
            )  # fmt: skip

        log(
            f"gunicorn {args.web_workers}×{threads} threads; weather worker: {args.terminals} terminals, batch {args.batch}"
        )
        log("warm-up")
        run("/event", event_body, 2)
        run("/WeatherForecast/city", weather_body, 2)
        baseline, subject = [], []
        for round_ in range(1, args.rounds + 1):
            baseline.append(run("/event", event_body, args.duration))
            subject.append(run("/WeatherForecast/city", weather_body, args.duration))
            log(
                f"round {round_}: POST /event {baseline[-1].rps:.0f} req/s "
                f"(p50 {baseline[-1].percentile(0.5):.1f} ms, p99 {baseline[-1].percentile(0.99):.1f} ms); "
                f"POST /WeatherForecast/city {subject[-1].rps:.0f} req/s "
                f"(p50 {subject[-1].percentile(0.5):.1f} ms, p99 {subject[-1].percentile(0.99):.1f} ms, "
                f"{subject[-1].errors} errors)"
            )
        base_rps = statistics.median(r.rps for r in baseline)
        subject_rps = statistics.median(r.rps for r in subject)
        client = stack.redis.client()
        emit(
            {
                "benchmark": "weather",
                "subject": "POST /WeatherForecast/city (request/reply over weather-requests/weather-responses)",
                "baseline": "POST /event (fire-and-forget XADD), same server, same run",
                "concurrency": args.concurrency,
                "gunicorn": f"{args.web_workers} gthread workers x {threads} threads",
                "terminals": args.terminals,
                "terminal_batch_size": args.batch,
                "subject_rps": round(subject_rps, 1),
                "baseline_rps": round(base_rps, 1),
                "ratio": round(subject_rps / base_rps, 3),
                "target_ratio": 0.6,
                "subject_p50_ms": round(statistics.median(r.percentile(0.5) for r in subject), 2),
                "subject_p99_ms": round(statistics.median(r.percentile(0.99) for r in subject), 2),
                "baseline_p50_ms": round(statistics.median(r.percentile(0.5) for r in baseline), 2),
                "baseline_p99_ms": round(statistics.median(r.percentile(0.99) for r in baseline), 2),
                "target_p99_ms": 50,
                "subject_errors": sum(r.errors for r in subject),
                "subject_last_round": subject[-1].summary(),
                "baseline_last_round": baseline[-1].summary(),
                "weather_responses_length": client.xlen("weather-responses"),
                "weather_requests_length": client.xlen("weather-requests"),
            }
        )
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()
        stack.close()


if __name__ == "__main__":
    main()
