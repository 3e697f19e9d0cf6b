"""Open-loop HTTP load: requests sent on a fixed schedule, latency counted from the schedule.

    python -m bench.openloop --port P --path /event --rate 500 --duration 4 \\
        [--method POST] [--header 'Authorization: Token …'] [--bodies FILE] [--ok 200]

A closed-loop client (wrk, `common.http_load`) waits for each answer before it sends the
next request, so a stall of the server also stalls the load and hides itself
("coordinated omission"). Here request i is due at `start + i / rate` whatever happened
before, and its latency runs from that due time to the last byte of the answer: a request
that waited for a free connection, or behind a slow one, counts its wait. wrk2 does this
but is not packaged in Debian, so this is a small asyncio client (one process, raw HTTP/1.1
on keep-alive connections, a new connection when none is idle). Its own CPU time is in
the output: it shares the machine's two cores with the server it measures.

`--token` (repeatable): API tokens used in turn, so a per-token rate limit is not what is
measured. `--bodies`: a file with one request body per line, used in turn; `{n}` in a line becomes
the request's number. Prints one JSON object on stdout.
"""

import argparse
import asyncio
import json
import resource
import time


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Driver:
    def __init__(self, args: argparse.Namespace, bodies: list[str]):
        self.args = args
        self.bodies = bodies
        head = [f"{args.method} {args.path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}", *args.header]
        self.head = "\r\n".join(head) + "\r\n"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open_connections = 0
        self.latencies_ms: list[float] = []
        self.statuses: dict[int, int] = {}
        self.failures = 0
        self.max_send_lag_ms = 0.0
        self.in_flight = 0
        self.stale_retries = 0

    def request_bytes(self, n: int) -> bytes:
        head = self.head
        if self.args.token:
            head += f"Authorization: Token {self.args.token[n % len(self.args.token)]}\r\n"
        if not self.bodies:
            return (head + "\r\n").encode()
        body = self.bodies[n % len(self.bodies)].replace("{n}", str(n)).encode()
        return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A connection, and whether it is a reused keep-alive one."""
        if self.idle:
            return (*self.idle.pop(), True)
        self.open_connections += 1
        return (*await asyncio.open_connection("127.0.0.1", self.args.port), False)

    async def _send(self, n: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        """Send request n and read the answer's head. A reused connection the server closed
        while it was idle (its keep-alive timeout) answers nothing at all: then the request
        goes again on a new connection, as HTTP clients do, its wait still counted."""
        reader, writer, reused = await self._connection()
        try:
            writer.write(self.request_bytes(n))
            return reader, writer, await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            writer.close()
            self.open_connections -= 1
            self.stale_retries += 1
        self.open_connections += 1
        reader, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
        writer.write(self.request_bytes(n))
        return reader, writer, await reader.readuntil(b"\r\n\r\n")

    async def one(self, n: int, due: float) -> None:
        self.in_flight += 1
        try:
            reader, writer, head = await self._send(n)
            status = int(head[9:12])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            self.latencies_ms.append((time.perf_counter() - due) * 1000)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if close:
                writer.close()
                self.open_connections -= 1
            else:
                self.idle.append((reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.failures += 1
            self.open_connections -= 1
        finally:
            self.in_flight -= 1

    async def run(self) -> dict:
        rate, duration = self.args.rate, self.args.duration
        total = int(rate * duration)
        tasks = []
        cpu0 = _cpu_s()
        start = time.perf_counter() + 0.05
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.max_send_lag_ms = max(self.max_send_lag_ms, -delay * 1000)
            tasks.append(asyncio.ensure_future(self.one(n, due)))
        sent_s = time.perf_counter() - start
        in_flight_at_end = self.in_flight
        _, pending = await asyncio.wait(tasks, timeout=self.args.grace) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - start
        cpu = _cpu_s() - cpu0
        ok = self.statuses.get(self.args.ok, 0)
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else None

        # The last fifth against the first: a backlog that grows shows as latencies that climb.
        fifth = max(1, len(self.latencies_ms) // 5)
        return {
            "offered_rate": rate,
            "sent": total,
            "ok": ok,
            "errors": total - ok,
            "status_counts": {str(k): v for k, v in sorted(self.statuses.items())},
            "unanswered": len(pending),
            "in_flight_at_end_of_sending": in_flight_at_end,
            "achieved_rate": round(ok / elapsed, 1) if elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": round(ordered[-1], 2) if ordered else None,
            "first_fifth_p50_ms": round(sorted(self.latencies_ms[:fifth])[fifth // 2], 2) if ordered else None,
            "last_fifth_p50_ms": round(sorted(self.latencies_ms[-fifth:])[fifth // 2], 2) if ordered else None,
            "connections_open": self.open_connections,
            "stale_keepalive_retries": self.stale_retries,
            "driver_max_send_lag_ms": round(self.max_send_lag_ms, 2),
            "driver_cpu_ms_per_request": round(cpu * 1000 / max(total, 1), 3),
            "sending_s": round(sent_s, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--token", action="append", default=[], help="API tokens, used in turn")
    parser.add_argument("--bodies")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait for answers after the last send")
    parser.add_argument("--ok", type=int, default=200)
    args = parser.parse_args()
    bodies = []
    if args.bodies:
        with open(args.bodies) as f:
            bodies = [line.rstrip("\n") for line in f if line.strip()]
    print(json.dumps(asyncio.run(Driver(args, bodies).run())))


if __name__ == "__main__":
    main()
