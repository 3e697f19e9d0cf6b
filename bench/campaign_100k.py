"""`python -m bench.campaign_100k`: a campaign to 100,000 recipients, end to end.

From the API call (`POST /api/v1/campaigns/`) until the last email is accepted by an SMTP
sink running in its own process, with the workers as `manage.py runworker` processes:
one for campaign-fanout + notification-router + email-retry and EMAIL_SENDER_PROCESSES
(default 2) email-sender processes of EMAIL_SENDER_CONCURRENCY threads each. Target ≤ 60 s.
The fan-out stage (campaign → all recipient batches published) is reported on its own,
and so is routing (all ledger rows written and email batches queued).

`--devstack` measures the shape `make run` runs instead: SQLite (WAL), the SMTP sink
writing a Maildir, the worker processes of `commsplatform.devstack.worker_commands()`,
and the seed route `GET /api/v1/campaign/create`. Target ≤ 120 s.

Baseline, same run, same sink: the seed's way of sending, one SMTP connection per email,
one email at a time, on 1,000 emails scaled to 100,000. Ceiling, same run: what the sink
accepts from 4 persistent connections with no database at all (the aiosmtpd sink is one
Python process, so on a shared 2-core machine it, not the pipeline, sets the pace).
"""

import os
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import stop_processes
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
    with open(stack.smtp.log_path, "rb") as log_file:
        return sum(1 for line in log_file if b" mail #" in line)


def main() -> None:
    devstack = "--devstack" in sys.argv[1:]
    scratch = tempfile.TemporaryDirectory(prefix="bench-campaign-")
    if devstack:
        stack = CommsStack(smtp=True, sqlite=f"{scratch.name}/db.sqlite3", maildir=f"{scratch.name}/mail")
    else:
        stack = CommsStack(smtp=True)
    workers: list[subprocess.Popen] = []
    try:
        from django.contrib.auth.models import User
        from rest_framework.test import APIClient

        from campaigns.models import Campaign
        from users.services import recipients_generate

        log(f"seeding {COUNT} recipients")
        recipients_generate(count=COUNT, seed=2)
        log("baseline: one connection per email, sequential")
        baseline = baseline_seconds(stack.smtp.host, stack.smtp.port)
        log("ceiling: what the sink accepts from 4 persistent connections, no database")
        ceiling, ceiling_client = sink_ceiling_per_s(stack.smtp.host, stack.smtp.port)
        log("fan-out stage alone")
        fanout_alone = fanout_alone_seconds()
        already_in_sink = sink_count(stack)

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if devstack:
            from commsplatform.devstack import worker_commands

            # The campaign pipeline's processes; make run's third worker process holds the
            # other seeds' consumers, idle here.
            commands = worker_commands()
            for name in ("campaigns", "sender"):
                workers.append(subprocess.Popen(commands[name], env=env, cwd=ROOT))
        else:
            manage = [sys.executable, str(ROOT / "manage.py"), "runworker"]
            workers.append(
                subprocess.Popen([*manage, "campaign-fanout", "notification-router", "email-retry"], env=env)
            )
            for index in range(SENDER_PROCESSES):
                workers.append(
                    subprocess.Popen([*manage, "email-sender", "--consumer-name", f"bench-sender-{index}"], env=env)
                )
        time.sleep(3)  # let the workers import Django and create their groups

        client = APIClient()
        client.force_authenticate(User.objects.create_user("bench", is_staff=True))
        started = time.perf_counter()
        if devstack:
            log("GET /api/v1/campaign/create")
            response = client.get("/api/v1/campaign/create")
            assert response.status_code == 200, response.content
        else:
            log("POST /api/v1/campaigns/")
            response = client.post(
                "/api/v1/campaigns/",
                {
                    "name": "Bench",
                    "subject": "New Campaign",
                    "body": "Hello {{ name }} {{ lastName }}, meet Bench.",
                },
                format="json",
            )
            assert response.status_code == 201, response.content
        campaign_id = response.json()["id"]
        fanout_s = routed_s = None
        last_report = 0.0
        while True:
            campaign = Campaign.objects.get(pk=campaign_id)
            now = time.perf_counter() - started
            if fanout_s is None and campaign.fanout_done_at:
                fanout_s = now
                log(f"fan-out done: {campaign.batches_published} batches")
            if routed_s is None and campaign.fanout_done_at and campaign.batches_routed >= campaign.batches_published:
                routed_s = now
                log(f"routing done: {campaign.recipients_count} ledger rows")
            if campaign.status in ("completed", "completed_with_failures", "cancelled"):
                break
            if now - last_report >= 5:
                log(f"{now:5.1f}s: {campaign.sent_count} sent")
                last_report = now
            if now > 600:
                raise SystemExit(f"campaign did not finish in 600 s: {campaign.sent_count} sent")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        received = sink_count(stack) - already_in_sink
        emit(
            {
                "benchmark": "campaign_100k" + (" --devstack (make run: SQLite, Maildir sink)" if devstack else ""),
                "recipients": COUNT,
                "status": campaign.status,
                "sent": campaign.sent_count,
                "received_by_smtp_sink": received,
                "seconds_end_to_end": round(elapsed, 2),
                "emails_per_s": round(campaign.sent_count / elapsed),
                "fanout_alone_seconds": round(fanout_alone, 2),
                "fanout_seconds_during_campaign": round(fanout_s or 0, 2),
                "routing_done_seconds": round(routed_s or 0, 2),
                "target_s": 120 if devstack else 60,
                "sender_processes": "as make run" if devstack else SENDER_PROCESSES,
                "baseline": "one SMTP connection per email, sequential; 1,000 emails scaled to 100,000",
                "baseline_seconds": round(baseline, 2),
                "ratio_baseline_over_figure": round(baseline / elapsed, 1),
                "smtp_sink_ceiling_emails_per_s": round(ceiling),
                "smtp_sink_ceiling_client": ceiling_client,
                "ratio_figure_over_sink_ceiling": round(campaign.sent_count / elapsed / ceiling, 2),
            }
        )
    finally:
        stop_processes(workers, timeout=15)
        stack.close()
        scratch.cleanup()


if __name__ == "__main__":
    main()
