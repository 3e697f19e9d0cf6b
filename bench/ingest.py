"""POST /event as shipped, next to a minimal WSGI app doing the same XADD, in one run.

    python -m bench.ingest [--duration 8] [--connections 16] [--rounds 3] [--no-open-loop]

Subject: `commsplatform.wsgi` with the production settings (`commsplatform.settings.production`,
throttling on, every middleware), reached as nginx would pass it on (`X-Forwarded-Proto:
https`), with producer-role tokens (used in turn, so the per-token limit is checked on every
request but not reached). Baseline: bench/minimal_app.py, a plain WSGI callable doing
`json.loads` + the same XADD with redis-py. Both under docker/gunicorn.conf.py (gthread,
2 processes × 4 threads, access log on), on the same Redis.

Closed loop: wrk (Lua script for the POST bodies and the token header), rounds alternating
baseline and subject so drift on the shared machine hits both alike; the figure of each is
the median over rounds. Every round must be all 200s: wrk's non-2xx/3xx count is 0 and
the stream grew by the number of answered requests (a 301 to https would not XADD).
Open loop (bench/openloop.py): the highest offered rate each sustains. Target: ratio ≥ 0.8.
"""

import argparse
import statistics
import time

from .common import (
    BEHIND_TLS_PROXY,
    PRODUCTION_ENV,
    CpuMeter,
    Gunicorn,
    emit,
    event_rate_search,
    log,
    process_tree,
    producer_tokens,
    result_row,
    start_stack,
    wrk_post,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-open-loop", action="store_true")
    args = parser.parse_args()

    stack = start_stack("commsplatform.settings.production", PRODUCTION_ENV)
    tokens = producer_tokens(stack, 8)
    subject_server = Gunicorn(stack)
    baseline_server = Gunicorn(stack, app="bench.minimal_app:application")
    redis = stack.redis.client()
    meter = CpuMeter(
        {
            "subject_gunicorn": process_tree(subject_server.pid),
            "baseline_gunicorn": process_tree(baseline_server.pid),
            "redis": process_tree(stack.redis.pid),
        }
    )
    try:

        def run(server: Gunicorn, headers: dict[str, str], seconds: float) -> dict:
            before = redis.xlen("NotificationStream")
            result = wrk_post(
                port=server.port, path="/event", tokens=tokens, headers=headers, seconds=seconds,
                connections=args.connections, tmp=stack.tmp,
            )  # fmt: skip
            time.sleep(0.3)  # requests cut off when wrk stopped finish their XADD before the count
            grew = redis.xlen("NotificationStream") - before
            # wrk stops with requests in flight: those were XADDed but not counted as answered.
            result["stream_grew"] = grew
            result["all_200"] = (
                result["errors"] == 0 and result["requests"] <= grew <= result["requests"] + args.connections
            )
            result["cpu_ms_per_request"] = meter.per_request_ms(result["requests"])
            return result

        log("warm-up (both apps, untimed)")
        run(baseline_server, {}, 3)
        run(subject_server, BEHIND_TLS_PROXY, 3)
        baseline, subject = [], []
        for round_ in range(1, args.rounds + 1):
            baseline.append(run(baseline_server, {}, args.duration))
            subject.append(run(subject_server, BEHIND_TLS_PROXY, args.duration))
            log(
                f"round {round_}: minimal app {baseline[-1]['rps']:.0f} req/s, POST /event {subject[-1]['rps']:.0f} req/s"
                f" (all 200: {baseline[-1]['all_200']}, {subject[-1]['all_200']})"
            )
        base_rps = statistics.median(r["rps"] for r in baseline)
        subject_rps = statistics.median(r["rps"] for r in subject)
        open_loop = {}
        if not args.no_open_loop:
            log("open loop, minimal app:")
            open_loop["minimal_app"] = event_rate_search(port=baseline_server.port, tokens=tokens, headers={})
            log("open loop, POST /event:")
            open_loop["post_event"] = event_rate_search(
                port=subject_server.port, tokens=tokens, headers=BEHIND_TLS_PROXY
            )
        more = []
        if open_loop:
            more.append(
                result_row(
                    name="ingest: highest sustained POST /event rate vs minimal app (open loop)",
                    figure=open_loop["post_event"]["highest_sustained_rate"],
                    baseline=open_loop["minimal_app"]["highest_sustained_rate"],
                    target=0.8,
                )
            )
        emit(
            {
                "benchmark": "ingest",
                **result_row(
                    name="ingest: POST /event req/s vs minimal app (wrk)",
                    figure=subject_rps,
                    baseline=base_rps,
                    target=0.8,
                ),
                "more": more,
                "subject": "POST /event, commsplatform.settings.production, throttling on, X-Forwarded-Proto: https",
                "baseline_app": "bench/minimal_app.py: plain WSGI callable, json.loads + XADD (redis-py)",
                "gunicorn": "docker/gunicorn.conf.py: 2 processes × 4 threads (gthread), access log on",
                "connections": args.connections,
                "every_response_200": all(r["all_200"] for r in baseline + subject),
                "subject_rounds": subject,
                "baseline_rounds": baseline,
                "open_loop": open_loop,
            }
        )
    finally:
        subject_server.stop()
        baseline_server.stop()
        stack.close()


if __name__ == "__main__":
    main()
