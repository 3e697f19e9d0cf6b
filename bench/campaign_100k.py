"""`python -m bench.campaign_100k`: a campaign to 100,000 recipients, end to end.

From the API call (`POST /api/v1/campaigns/`) until the last email is accepted by an SMTP
sink running in its own process, with the workers as `manage.py runworker` processes:
one for campaign-fanout + notification-router + email-retry and EMAIL_SENDER_PROCESSES
(default 2) email-sender processes of EMAIL_SENDER_CONCURRENCY threads each. Target ≤ 60 s.
The fan-out stage (campaign → all recipient batches published) is reported on its own,
and so is routing (all ledger rows written and email batches queued).

With `--smtp-sink` (or `--features`) a second campaign runs with the rate limiter and an
HTML part; `--pairs N` runs N such plain/features pairs in alternating order and reports
each pair's ratio and their median. `BENCH_RECIPIENTS` sets the count (default 100,000).

`--devstack` measures the shape `make run` runs instead: SQLite (WAL), the SMTP sink
writing a Maildir, the worker processes of `commsplatform.devstack.worker_commands()`,
and the seed route `GET /api/v1/campaign/create`. Target ≤ 120 s.

Baseline, same run, same sink: the seed's way of sending, one SMTP connection per email,
one email at a time, on 1,000 emails scaled to 100,000. Ceiling, same run: what the sink
accepts from 4 persistent connections with no database at all (the aiosmtpd sink is one
Python process, so on a shared 2-core machine it, not the pipeline, sets the pace).
"""

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import result_row, stop_processes
from .comms_stack import CommsStack, emit, log

COUNT = int(os.environ.get("BENCH_RECIPIENTS", 100_000))
BASELINE_SAMPLE = 1_000
SENDER_PROCESSES = int(os.environ.get("EMAIL_SENDER_PROCESSES", 2))
ROOT = Path(__file__).resolve().parent.parent


def baseline_seconds(host: str, port: int) -> float:
    from notifications.message import build_message

    started = time.perf_counter()
    for i in range(BASELINE_SAMPLE):
        message = build_message(
            from_addr="test@test.com",
            to_addr=f"baseline{i}@example.com",
            subject="New Campaign",
            body="Hello",
            message_id=f"<baseline-{i}@bench>",
        )
        with smtplib.SMTP(host, port) as client:
            client.sendmail("test@test.com", [f"baseline{i}@example.com"], message)
    return (time.perf_counter() - started) * COUNT / BASELINE_SAMPLE


def sink_ceiling_per_s(host: str, port: int, *, sessions: int = 4, count: int = 20_000) -> tuple[float, str]:
    """What the sink accepts at most: persistent connections, ~600-byte messages, no database.

    Driven by Postfix's `smtp-source` (C) where installed, so the client does not eat the
    Python time it measures; otherwise by smtplib threads in this process (a lower bound).
    """
    import shutil
    import threading

    source = shutil.which("smtp-source") or shutil.which("smtp-source", path="/usr/sbin")
    if source:
        started = time.perf_counter()
        subprocess.run(
            [source, "-d", "-s", str(sessions), "-m", str(count), "-l", "600", "-f", "a@test.com",
             "-t", "b@test.com", f"{host}:{port}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return count / (time.perf_counter() - started), f"smtp-source, {sessions} sessions"
    count = count // 10
    message = b"From: a@test.com\r\nTo: b@test.com\r\nSubject: x\r\n\r\n" + b"c" * 600 + b"\r\n"

    def blast() -> None:
        with smtplib.SMTP(host, port) as client:
            for _ in range(count // sessions):
                client.sendmail("a@test.com", ["b@test.com"], message)

    started = time.perf_counter()
    pool = [threading.Thread(target=blast) for _ in range(sessions)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return count / (time.perf_counter() - started), f"smtplib, {sessions} threads (smtp-source not installed)"


def fanout_alone_seconds() -> float:
    """The fan-out stage alone, in this process, no other worker running; then undone."""
    from campaigns.services import campaign_create, campaign_fanout, campaign_transition
    from campaigns.states import SEND
    from workers.connection import get_redis
    from workers.models import OutboxEvent

    campaign = campaign_create(name="fan-out only", subject="s", body="b", send=False)
    campaign_transition(campaign_id=campaign.pk, transition=SEND)  # queued, without the `campaign` event
    started = time.perf_counter()
    campaign_fanout(campaign_id=campaign.pk)
    elapsed = time.perf_counter() - started
    get_redis().delete("notification")
    OutboxEvent.objects.all().delete()
    campaign.delete()
    return elapsed


def sink_count(stack: CommsStack) -> int:
    if stack.postfix_sink is not None:
        return stack.postfix_sink.count()
    with open(stack.smtp.log_path, "rb") as log_file:
        return sum(1 for line in log_file if b" mail #" in line)


HTML_BODY = "<p>Hello <b>{{ name }} {{ lastName }}</b>,</p><p>meet <i>Bench</i>.</p>"


def unsubscribe_and_html_cpu_us() -> dict:
    """CPU µs per message of `delivery_message` (render + build) in this process: plain text
    without the unsubscribe link and headers, as sent (with them), and with an HTML part too."""
    from django.utils.http import http_date

    from notifications import sending

    row = {
        "pk": 1, "campaign_id": 1, "address": "ann@example.com", "message_id": "<m@bench>", "recipient_id": 7,
        "recipient__username": "ann", "recipient__name": "Ann", "recipient__last_name": "Lee",
        "recipient__email": "ann@example.com", "recipient__mobile": "", "recipient__device_id": "",
        "subject": "", "body": "", "from_email": "", "attempts": 1,
    }  # fmt: skip
    from notifications.templating import compile_template

    subject, body = compile_template("New Campaign"), compile_template("Hello {{ name }} {{ lastName }}, meet Bench.")
    date = http_date()
    plain = {1: (subject, body, "test@test.com", None)}
    html = {1: (subject, body, "test@test.com", compile_template(HTML_BODY))}

    def per_message_us(call, n: int = 5000) -> float:
        started = time.process_time()
        for _ in range(n):
            call()
        return round((time.process_time() - started) * 1e6 / n, 1)

    from notifications.message import build_message

    def without_unsubscribe() -> None:
        values = {"name": "Ann", "last_name": "Lee"}
        build_message(
            from_addr="test@test.com", to_addr=row["address"], subject=subject.render(values),
            body=body.render(values), message_id=row["message_id"], date=date,
        )  # fmt: skip

    return {
        "text_without_unsubscribe_us": per_message_us(without_unsubscribe),
        "text_with_unsubscribe_us": per_message_us(lambda: sending.delivery_message(row, plain, date)),
        "text_html_with_unsubscribe_us": per_message_us(lambda: sending.delivery_message(row, html, date)),
    }


SETTLE = "VACUUM ANALYZE after seeding and after each variant's ledger rows are deleted (PostgreSQL)"


def settle_database() -> None:
    """Every variant starts on a vacuumed, analysed database: without it, autovacuum of
    the freshly seeded recipients lands in the first campaign and that of the previous
    variant's deleted ledger rows in the next one, whichever variant that is."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def start_workers(*, devstack: bool, env: dict[str, str]) -> list[subprocess.Popen]:
    workers = []
    if devstack:
        from commsplatform.devstack import worker_commands

        # The campaign pipeline's processes; make run's third worker process holds the
        # other seeds' consumers, idle here.
        commands = worker_commands()
        for name in ("campaigns", "sender"):
            workers.append(subprocess.Popen(commands[name], env=env, cwd=ROOT, stdout=sys.stderr))
    else:
        manage = [sys.executable, str(ROOT / "manage.py"), "runworker"]
        workers.append(
            subprocess.Popen(
                [*manage, "campaign-fanout", "notification-router", "email-retry"], env=env, stdout=sys.stderr
            )
        )
        for index in range(SENDER_PROCESSES):
            workers.append(
                subprocess.Popen(
                    [*manage, "email-sender", "--consumer-name", f"bench-sender-{index}"], env=env, stdout=sys.stderr
                )
            )
    time.sleep(3)  # let the workers import Django and create their groups
    return workers


def campaign_run(stack: CommsStack, *, devstack: bool, label: str, rate_limit: float, html: bool) -> dict:
    """One campaign to every recipient, from the API call until it is completed, with its
    own worker processes (started with this variant's settings, stopped after)."""
    import psutil
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from campaigns.selectors import campaign_get

    from .common import CpuMeter, process_tree

    # Workers print to stderr: stdout carries only this benchmark's JSON. EMAIL_SEND_CHUNK
    # 200 (one chunk per entry) was the best shape here (README, Benchmarks).
    env = {
        "EMAIL_SEND_CHUNK": "200",
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "EMAIL_RATE_LIMIT_PER_S": repr(rate_limit),
    }
    already_in_sink = sink_count(stack)
    workers = start_workers(devstack=devstack, env=env)
    try:
        parts = {
            "fanout+router": process_tree(workers[0].pid),
            "senders": lambda: [p for w in workers[1:] for p in process_tree(w.pid)()],
            "postgres": process_tree(stack.servers[0].pid if not devstack else None),
            "redis": process_tree(stack.servers[1 if not devstack else 0].pid),
            "smtp sink": process_tree(stack.servers[-1].pid),
            "bench (polling)": lambda: [psutil.Process()],  # itself only: the servers are its children
        }
        meter = CpuMeter(parts)
        user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True})
        client = APIClient()
        client.force_authenticate(user)
        started = time.perf_counter()
        if devstack:
            log(f"[{label}] GET /api/v1/campaign/create")
            response = client.get("/api/v1/campaign/create")
            assert response.status_code == 200, response.content
        else:
            log(f"[{label}] POST /api/v1/campaigns/")
            body = {"name": "Bench", "subject": "New Campaign", "body": "Hello {{ name }} {{ lastName }}, meet Bench."}
            if html:
                body["html_body"] = HTML_BODY
            response = client.post("/api/v1/campaigns/", body, format="json")
            assert response.status_code == 201, response.content
        campaign_id = response.json()["id"]
        fanout_s = routed_s = None
        last_report = 0.0
        while True:
            campaign = campaign_get(campaign_id=campaign_id)
            assert campaign is not None
            now = time.perf_counter() - started
            if fanout_s is None and campaign.fanout_done_at:
                fanout_s = now
                log(f"[{label}] fan-out done: {campaign.batches_published} batches")
            if routed_s is None and campaign.routing_done:
                routed_s = now
                log(f"[{label}] routing done: {campaign.recipients_count} ledger rows")
            if campaign.status in ("completed", "completed_with_failures", "cancelled"):
                break
            if now - last_report >= 5:
                log(f"[{label}] {now:5.1f}s: {campaign.sent_count} sent")
                last_report = now
            if now > 600:
                raise SystemExit(f"campaign did not finish in 600 s: {campaign.sent_count} sent")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu_ms = meter.per_request_ms(campaign.sent_count)
    finally:
        stop_processes(workers, timeout=15)
    # The next variant starts from the same ledger size (not this run's 100,000 rows more).
    from django.db import router

    from notifications.models import Delivery

    ledger = Delivery.objects.filter(campaign_id=campaign_id)
    ledger._raw_delete(router.db_for_write(Delivery))
    settle_database()
    time.sleep(0.5)  # the sink's counter is written when each session ends
    return {
        "variant": label,
        "rate_limit_per_s": rate_limit,
        "html_part": html,
        "status": campaign.status,
        "sent": campaign.sent_count,
        "received_by_smtp_sink": sink_count(stack) - already_in_sink,
        "seconds_end_to_end": round(elapsed, 2),
        "emails_per_s": round(campaign.sent_count / elapsed),
        "fanout_seconds_during_campaign": round(fanout_s or 0, 2),
        "routing_done_seconds": round(routed_s or 0, 2),
        "cpu_ms_per_email": cpu_ms,
    }


def parsed_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign_100k",
        description="A campaign to BENCH_RECIPIENTS (default 100,000) recipients, end to end.",
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--devstack", action="store_true", help="make run's shape: SQLite, a Maildir sink")
    shape.add_argument("--smtp-sink", action="store_true", help="Postfix's C smtp-sink; implies --features")
    parser.add_argument("--features", action="store_true", help="also a run with the rate limiter and an HTML part")
    parser.add_argument("--plain-only", action="store_true", help="only the plain run")
    # The features measured against the plain run (same run): the shared rate limiter set
    # so high that it runs on every message but never waits, and an HTML part.
    parser.add_argument("--rate-limit", type=float, default=1e6, help="the features run's limit, mails/s")
    parser.add_argument("--pairs", type=int, default=1, help="plain/features pairs, in alternating order")
    return parser.parse_args(argv)


def main() -> None:
    args = parsed_args()
    devstack = args.devstack
    postfix = args.smtp_sink
    rate_limit = args.rate_limit
    features = (postfix or args.features) and not args.plain_only
    scratch = tempfile.TemporaryDirectory(prefix="bench-campaign-")
    if devstack:
        stack = CommsStack(smtp=True, sqlite=f"{scratch.name}/db.sqlite3", maildir=f"{scratch.name}/mail")
    else:
        stack = CommsStack(smtp=not postfix, smtp_sink=postfix)
    host = stack.postfix_sink.host if stack.postfix_sink else stack.smtp.host
    port = stack.postfix_sink.port if stack.postfix_sink else stack.smtp.port
    try:
        from users.services import recipients_generate

        log(f"seeding {COUNT} recipients")
        recipients_generate(count=COUNT, seed=2)
        settle_database()
        log("baseline: one connection per email, sequential")
        baseline = baseline_seconds(host, port)
        log("ceiling: what the sink accepts from 4 persistent connections, no database")
        ceiling, ceiling_client = sink_ceiling_per_s(host, port)
        log("fan-out stage alone")
        fanout_alone = fanout_alone_seconds()
        # `--pairs N`: N plain/features pairs, the order alternating (plain first, then
        # features first, ...), so neither variant always runs on the second, warmer and
        # more bloated ledger; the features figure is the median of the pairs' ratios.
        pairs = args.pairs
        runs: list[dict] = []
        pair_ratios = []
        for pair in range(pairs if features else 1):
            variants = [("plain", 0.0, False)]
            if features:
                variants.append(("rate limit + HTML", rate_limit, True))
            if pair % 2:
                variants.reverse()
            done = {
                label: campaign_run(stack, devstack=devstack, label=label, rate_limit=rate, html=html)
                for label, rate, html in variants
            }
            runs += done.values()
            if features:
                pair_ratios.append(round(done["rate limit + HTML"]["emails_per_s"] / done["plain"]["emails_per_s"], 3))
        plain = runs[0] if runs[0]["variant"] == "plain" else runs[1]
        elapsed = plain["seconds_end_to_end"]
        name = "campaign_100k" + (
            " --devstack (make run: SQLite, Maildir sink)" if devstack else " --smtp-sink" if postfix else ""
        )
        target_s = 120 if devstack else 60
        result = {
            **result_row(
                name=f"{name}: seconds for {COUNT} recipients end to end",
                figure=elapsed,
                baseline=round(baseline, 2),
                target=target_s * COUNT / 100_000,
                unit="s",
            ),
            "benchmark": name,
            "recipients": COUNT,
            **plain,
            "fanout_alone_seconds": round(fanout_alone, 2),
            "target_s": target_s,
            "sender_processes": "as make run" if devstack else SENDER_PROCESSES,
            "sender_threads": os.environ.get("EMAIL_SENDER_CONCURRENCY", "default"),
            "send_chunk": os.environ.get("EMAIL_SEND_CHUNK", "default"),
            "between_variants": SETTLE,
            "baseline_kind": "one SMTP connection per email, sequential; 1,000 emails scaled to the recipients",
            "baseline_seconds": round(baseline, 2),
            "ratio_baseline_over_figure": round(baseline / elapsed, 1),
            "smtp_sink_ceiling_emails_per_s": round(ceiling),
            "smtp_sink_ceiling_client": ceiling_client,
            "ratio_figure_over_sink_ceiling": round(plain["emails_per_s"] / ceiling, 2),
            "runs": runs,
            "more": [
                result_row(
                    name=f"{name}: emails/s over the sink's ceiling (smtp-source, same run)",
                    figure=plain["emails_per_s"],
                    baseline=round(ceiling),
                    target=0.7,
                )
            ],
        }
        if features:
            median = sorted(range(len(pair_ratios)), key=pair_ratios.__getitem__)[(len(pair_ratios) - 1) // 2]
            plain_of, features_of = (
                [r for r in runs if r["variant"] == label][median] for label in ("plain", "rate limit + HTML")
            )
            result["more"].append(
                result_row(
                    name=f"{name}: emails/s with rate limiter ({rate_limit:g}/s) + HTML over without"
                    + (
                        f" (median pair of {pairs}, alternating order; the lower one of an even count)"
                        if pairs > 1
                        else ""
                    ),
                    figure=features_of["emails_per_s"],
                    baseline=plain_of["emails_per_s"],
                    target=0.9,
                    pair_ratios=pair_ratios,
                )
            )
            result["message_cpu_us"] = unsubscribe_and_html_cpu_us()
        emit(result)
    finally:
        stack.close()
        scratch.cleanup()


if __name__ == "__main__":
    main()
