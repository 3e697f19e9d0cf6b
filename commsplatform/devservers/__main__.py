"""`python -m commsplatform.devservers <server>`: run one dev server until Ctrl-C.

smtp --port N [--maildir DIR]   the SMTP sink (one log line per mail)
redis [--port N] [--appendonly] [--data-dir DIR]
kafka [--port N]
postgres [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from . import KafkaBroker, PostgresServer, RedisServer
from .smtp_sink import run_sink


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m commsplatform.devservers", description=__doc__.split("\n")[0])
    servers = parser.add_subparsers(dest="server", required=True)
    smtp = servers.add_parser("smtp", help="SMTP sink")
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, default=2500)
    smtp.add_argument("--maildir", type=Path, help="also store every message in this Maildir")
    redis = servers.add_parser("redis", help="Redis server")
    redis.add_argument("--port", type=int)
    redis.add_argument("--appendonly", action="store_true")
    redis.add_argument("--data-dir", type=Path)
    kafka = servers.add_parser("kafka", help="Tansu Kafka-compatible broker (in-memory)")
    kafka.add_argument("--port", type=int)
    postgres = servers.add_parser("postgres", help="embedded PostgreSQL (unix socket)")
    postgres.add_argument("--data-dir", type=Path)
    return parser


def _wait_for_signal() -> None:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.server == "smtp":
        run_sink(host=args.host, port=args.port, maildir=args.maildir, out=sys.stdout)
    elif args.server == "redis":
        with RedisServer(port=args.port, appendonly=args.appendonly, data_dir=args.data_dir) as redis:
            print(redis.url, flush=True)
            _wait_for_signal()
    elif args.server == "kafka":
        with KafkaBroker(port=args.port) as kafka:
            print(kafka.bootstrap, flush=True)
            _wait_for_signal()
    else:
        with PostgresServer(data_dir=args.data_dir) as postgres:
            print(postgres.url, flush=True)
            _wait_for_signal()
    return 0


if __name__ == "__main__":
    sys.exit(main())
