"""POST /event requests/s under gunicorn, next to a minimal Django view doing the same XADD.

    python -m bench.ingest [--duration 8] [--concurrency 16] [--rounds 3]

Rounds alternate baseline and subject so drift on the shared machine hits both alike;
the figure of each is the median over rounds. Target: ratio ≥ 0.8.
"""

import argparse
import json
import statistics

from .common import Gunicorn, emit, http_load, log, start_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    stack = start_stack()
    server = Gunicorn(stack)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Token {stack.token}"}

        def body(n: int) -> bytes:
            return json.dumps({"description": f"bench event {n}"}).encode()

        def run(path: str, seconds: float):
            return http_load(
                port=server.port, method="POST", path=path, body=body, headers=headers,
                concurrency=args.concurrency, duration_s=seconds,
            )  # fmt: skip

        log("warm-up")
        run("/bench/raw-xadd", 2)
        run("/event", 2)
        baseline, subject = [], []
        for round_ in range(1, args.rounds + 1):
            baseline.append(run("/bench/raw-xadd", args.duration))
            subject.append(run("/event", args.duration))
            log(f"round {round_}: raw view {baseline[-1].rps:.0f} req/s, POST /event {subject[-1].rps:.0f} req/s")
        base_rps = statistics.median(r.rps for r in baseline)
        subject_rps = statistics.median(r.rps for r in subject)
        emit(
            {
                "benchmark": "ingest",
                "subject": "POST /event (DRF, token auth, validation, envelope, XADD)",
                "baseline": "minimal Django view: json.loads + XADD",
                "concurrency": args.concurrency,
                "subject_rps": round(subject_rps, 1),
                "baseline_rps": round(base_rps, 1),
                "ratio": round(subject_rps / base_rps, 3),
                "target_ratio": 0.8,
                "subject_last_round": subject[-1].summary(),
                "baseline_last_round": baseline[-1].summary(),
                "stream_length": stack.redis.client().xlen("NotificationStream"),
            }
        )
    finally:
        server.stop()
        stack.close()


if __name__ == "__main__":
    main()
