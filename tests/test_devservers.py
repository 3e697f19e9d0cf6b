"""Smoke tests of the real servers the suite and `make run` rely on."""

from __future__ import annotations

import mailbox
import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.db import connection

from commsplatform.devservers import RedisServer, SmtpServer, SmtpSinkProcess
from tests.helpers import REPO_ROOT, database_url, wait_until


def _mail(to: list[str], subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "test@test.com"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@test>"
    message.set_content("body text")
    return message


def test_redis_restart_keeps_the_port_and_clients_reconnect(own_redis_server: RedisServer) -> None:
    client = own_redis_server.client()
    client.set("key", "value")
    port = own_redis_server.port

    own_redis_server.restart()

    assert own_redis_server.port == port
    assert client.get("key") is None  # no persistence unless appendonly
    client.set("key", "again")
    assert client.get("key") == "again"


def test_redis_with_appendonly_keeps_data_across_a_kill() -> None:
    with RedisServer(appendonly=True, password="s3cret/!") as server:
        client = server.client()
        client.set("key", "value")

        server.kill()
        server.restart()

        assert client.get("key") == "value"
        assert server.url == f"redis://:s3cret%2F%21@127.0.0.1:{server.port}/0"


def test_session_redis_is_empty_for_each_test(redis_client) -> None:
    assert redis_client.dbsize() == 0
    redis_client.set("leftover", "1")


def test_session_redis_is_empty_for_each_test_again(redis_client) -> None:
    assert redis_client.dbsize() == 0


@pytest.mark.django_db
def test_postgres_is_reached_through_django() -> None:
    with connection.cursor() as cursor:
        cursor.execute("select current_database(), 40 + 2")
        row = cursor.fetchone()

    assert connection.vendor == "postgresql"
    assert connection.settings_dict["HOST"].startswith("/")
    assert row == ("test_postgres", 42)
    assert database_url(connection.settings_dict) == (
        f"postgres://postgres@/{connection.settings_dict['HOST']}/test_postgres?server_side_binding=True"
    )


def test_smtp_temporary_refusal_then_acceptance(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_all(code=451)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(_mail(["bob@example.com"]))
        assert refused.value.recipients["bob@example.com"][0] == 451
        assert smtp_server.messages == []

        smtp_server.accept_all()
        client.send_message(_mail(["bob@example.com"], subject="Second try"))

    [mail] = smtp_server.messages
    assert (mail.mail_from, mail.rcpt_tos, mail.subject) == (
        "test@test.com",
        ("bob@example.com",),
        "Second try",
    )
    assert mail.message_id == mail.message["Message-ID"]
    assert mail.body == "body text\n"


def test_smtp_timed_refusal_lifts_by_itself(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_all(code=450, seconds=0.3)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(_mail(["bob@example.com"]))
        time.sleep(0.35)
        client.send_message(_mail(["bob@example.com"]))

    assert len(smtp_server.wait_for(1)) == 1


def test_smtp_permanent_refusal_of_one_address(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_address("Gone@Example.com")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        refused = client.send_message(_mail(["bob@example.com", "gone@example.com"]))

    assert refused == {"gone@example.com": (550, b"5.1.1 Mailbox unavailable: gone@example.com")}
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("bob@example.com",)


def test_django_sends_through_the_smtp_server(smtp_server: SmtpServer) -> None:
    from django.core.mail import send_mail

    send_mail("New Campaign", "Campaign ABCDE", None, ["carol@example.com"])

    [mail] = smtp_server.messages
    assert (mail.mail_from, mail.rcpt_tos, mail.subject) == (
        "test@test.com",
        ("carol@example.com",),
        "New Campaign",
    )


def test_kafka_produce_and_consume_in_a_group(kafka_broker) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    producer.produce(topic, key=b"7", value=b'{"battery_id": 7}')
    assert producer.flush(10) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "group.id": "smoke",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    try:
        message = wait_until(lambda: consumer.poll(0.5), timeout=30, message="a message from the topic")
    finally:
        consumer.close()

    assert message.error() is None
    assert (message.key(), message.value()) == (b"7", b'{"battery_id": 7}')


def test_smtp_sink_keeps_each_mail_whole_in_its_maildir(tmp_path: Path) -> None:
    # given the sink make run starts, writing a Maildir
    maildir = tmp_path / "mail"
    with SmtpSinkProcess(maildir=maildir, data_dir=tmp_path / "smtp") as sink:
        # when two mails arrive over one session
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            for number in (1, 2):
                message = f"From: a@test.com\r\nTo: b@test.com\r\nSubject: mail {number}\r\n\r\nbody {number}\r\n"
                client.sendmail("a@test.com", ["b@test.com"], message)
        # then a mail reader finds both, complete, and nothing is left half-written in tmp/
        box = mailbox.Maildir(maildir, create=False)
        assert sorted((m["Subject"], m.get_payload()) for m in box) == [("mail 1", "body 1\n"), ("mail 2", "body 2\n")]
        assert list((maildir / "tmp").iterdir()) == []


def _processes_with(marker: str) -> list[int]:
    """Pids of the processes whose environment holds `marker` (every child inherits it)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            pass  # gone meanwhile, or not ours
    return found


def test_make_run_on_a_taken_port_exits_at_once_saying_so_and_starts_nothing() -> None:
    # given: something listening on the port `make run` is asked to serve
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        marker = f"DEVSTACK_TEST_{uuid.uuid4().hex}"
        env = {**os.environ, "PORT": str(port), marker: "1"}
        for name in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "EMAIL_HOST"):
            env.pop(name, None)  # it would start every embedded server

        # when
        result = subprocess.run(
            [sys.executable, "-m", "commsplatform.devstack"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,  # liveness only: without the check it runs on
        )

    # then: one line names the port and how to pick another; no banner, no server left
    assert result.returncode == 1
    assert result.stderr == (
        f"devstack: port {port} is taken (something listens on 127.0.0.1:{port}); pick another: PORT=8080 make run\n"
    )
    assert result.stdout == ""
    assert _processes_with(marker) == []
