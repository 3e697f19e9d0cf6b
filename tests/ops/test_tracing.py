"""Tracing (OpenTelemetry): one trace per request across web and the consumers, the
context carried in the envelope and the outbox, sampled sends, trace ids in the logs.

The SDK's in-memory exporter sees every span because the consumers run in-process (the
real ConsumerLoop, Redis, PostgreSQL and SMTP server); `commsplatform.tracing.instrument`
is what setup_tracing installs, pointed at a provider of the test's own."""

import json
import logging
import os
import subprocess
import sys
import threading
from math import ceil

import pytest
from django.db import connection, connections, transaction
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from campaigns.models import Campaign
from commsplatform import tracing
from commsplatform.logformat import JsonFormatter, TextFormatter
from orders.services import shop_reset_to_seed
from tests.helpers import wait_until
from tests.orders.saga import orders_final, pump_saga
from users.services import recipients_generate
from workers import tracing as worker_tracing
from workers.consumer import ConsumerLoop
from workers.events import Event
from workers.models import OutboxEvent
from workers.publish import publish, publish_on_commit, relay_pending
from workers.registry import get_consumer

SMTP_SPAN_EVERY = 5


@pytest.fixture
def spans(monkeypatch):
    """Tracing on for this test, every span into an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = tracing.tracer_provider("commsplatform-test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setenv("TRACING_SMTP_SPAN_EVERY", str(SMTP_SPAN_EVERY))
    tracing.instrument(provider)
    if not connection.in_atomic_block:
        connections.close_all()  # the next query connects through the instrumented psycopg
    exporter.tracer = provider.get_tracer("test")
    yield exporter
    tracing.uninstrument()
    if not connection.in_atomic_block:
        connections.close_all()


def _hex(span_id: int) -> str:
    return format(span_id, "016x")


def _traceparent(span: ReadableSpan) -> str:
    return f"00-{span.context.trace_id:032x}-{_hex(span.context.span_id)}-{int(span.context.trace_flags):02x}"


def _consumer_spans(finished, name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.kind == SpanKind.CONSUMER and s.attributes["commsplatform.consumer"] == name]


def _caused_by(span: ReadableSpan, cause: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    """`cause` is an ancestor of `span`'s parent or of one of its links."""
    starts = [span.parent.span_id] if span.parent else []
    starts += [link.context.span_id for link in span.links]
    for start in starts:
        current = by_id.get(start)
        while current is not None:
            if current.context.span_id == cause.context.span_id:
                return True
            current = by_id.get(current.parent.span_id) if current.parent else None
    return False


@pytest.mark.django_db(transaction=True)
def test_one_order_is_one_trace_from_the_request_through_the_four_saga_steps(api_client, spans):
    # given fresh seed data, tracing on
    shop_reset_to_seed()
    spans.clear()
    # when Anthony orders a Denon and a Google Home Mini and the saga runs
    response = api_client.post("/order", {"product_ids": ["201", "204"], "customer_id": "101"}, format="json")
    assert response.status_code == 200, response.content
    pump_saga(orders_final(int(response.json()["id"])))
    # then one trace holds the HTTP span, the publishes and every step, in saga order
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (http,) = [s for s in finished if s.kind == SpanKind.SERVER]
    assert (http.attributes["http.route"], http.attributes["http.status_code"]) == ("order", 200)
    trace_id = http.context.trace_id
    assert {s.context.trace_id for s in finished} == {trace_id}
    (publish_order,) = [s for s in finished if s.kind == SpanKind.PRODUCER and s.parent.span_id == http.context.span_id]
    assert publish_order.name == "publish orders"
    steps = ["inventory-reserve", "accounts-charge", "inventory-settle", "orders-status"]
    cause = http
    for step in steps:
        caused = [s for s in _consumer_spans(finished, step) if _caused_by(s, cause, by_id)]
        assert caused, f"no {step} span caused by {cause.name}"
        cause = caused[0]
    (reserve,) = _consumer_spans(finished, "inventory-reserve")
    assert reserve.parent.span_id == publish_order.context.span_id  # a child of the producer's span
    assert reserve.attributes["messaging.destination.name"] == "orders"
    # and the database and Redis calls inside are spans of the same trace
    assert {"postgresql", "redis"} <= {s.attributes.get("db.system") for s in finished}
    db_in_reserve = [
        s for s in finished if s.attributes.get("db.system") == "postgresql" and _caused_by(s, reserve, by_id)
    ]
    assert db_in_reserve


@pytest.mark.django_db(transaction=True)
def test_a_batch_mixing_traces_is_one_span_linked_to_each(api_client, spans, redis_client):
    # given two requests, two traces, each publishing one message to NotificationStream
    for text in ("first", "second"):
        assert api_client.post("/event", {"description": text}, format="json").status_code == 200
    producers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert len({s.context.trace_id for s in producers}) == 2
    spans.clear()
    # when the batch consumer takes both in one batch
    ConsumerLoop(get_consumer("notifications"), stop=threading.Event(), consumer="t", trims=False).run_once()
    # then one span, a new trace, linked to both producers' spans
    (span,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert span.attributes["messaging.batch.message_count"] == 2
    assert span.parent is None
    assert span.context.trace_id not in {s.context.trace_id for s in producers}
    assert {(link.context.trace_id, link.context.span_id) for link in span.links} == {
        (s.context.trace_id, s.context.span_id) for s in producers
    }


@pytest.mark.django_db
def test_an_event_the_relay_sends_keeps_its_trace_context(spans, redis_client):
    # given an event published in a traced transaction whose after-commit send never ran
    # (this test's transaction is never committed), so the relay sends it
    with spans.tracer.start_as_current_span("request"), transaction.atomic():
        publish_on_commit("orders", Event("test.thing.happened", {"n": 1}))
    (publish_span,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert OutboxEvent.objects.get().fields["traceparent"] == _traceparent(publish_span)
    # when
    assert relay_pending(grace_s=0) == 1
    # then the stream entry carries the publish span's context
    ((_, fields),) = redis_client.xrange("orders")
    assert Event.from_fields(fields).traceparent == _traceparent(publish_span)
    assert Event.from_fields(fields).extra == {}


@pytest.mark.django_db(transaction=True)
def test_a_campaign_is_one_trace_to_the_smtp_sends_one_send_span_in_every_n(api_client, spans, smtp_server, settings):
    # given 12 recipients, chunks of 5 on `notification`, email batches of 4
    settings.CAMPAIGN_FANOUT_CHUNK = 5
    settings.EMAIL_BATCH_SIZE = 4
    recipients_generate(count=12, seed=7)
    spans.clear()
    # when a campaign is created and the three consumers run
    response = api_client.post(
        "/api/v1/campaigns/", {"name": "Traced", "subject": "Hi {{ name }}", "body": "Dear {{ name }}"}, format="json"
    )
    assert response.status_code == 201, response.content
    campaign_id = response.json()["id"]
    stop = threading.Event()
    loops = [
        ConsumerLoop(get_consumer(name), stop=stop, consumer=f"t-{name}", trims=False, block_ms=5)
        for name in ("campaign-fanout", "notification-router", "email-sender")
    ]

    def completed():
        for loop in loops:
            loop.run_once()
        return Campaign.objects.get(pk=campaign_id).status == "completed"

    wait_until(completed, timeout=30, interval=0)
    # then every span from the request to the sends is one trace
    assert len(smtp_server.messages) == 12
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (http,) = [s for s in finished if s.kind == SpanKind.SERVER]
    assert {s.context.trace_id for s in finished} == {http.context.trace_id}
    (fanout,) = _consumer_spans(finished, "campaign-fanout")
    assert _caused_by(fanout, http, by_id)
    # one span per batch, not per recipient: 3 chunks (5, 5, 2) published by the fan-out,
    # routed into email batches of at most 4 (4+1, 4+1, 2), each its own sender span; one
    # SMTP send span in every 5
    publishes = [s for s in finished if s.name == "publish notification" and _caused_by(s, fanout, by_id)]
    assert len(publishes) == 3
    routers = _consumer_spans(finished, "notification-router")
    assert routers and all(_caused_by(s, fanout, by_id) for s in routers)
    senders = _consumer_spans(finished, "email-sender")
    assert len(senders) == sum(ceil(n / 4) for n in (5, 5, 2))
    assert all(any(_caused_by(s, router, by_id) for router in routers) for s in senders)
    sends = [s for s in finished if s.name == "smtp send"]
    assert len(sends) == ceil(12 / SMTP_SPAN_EVERY)
    assert all(any(_caused_by(s, sender, by_id) for sender in senders) for s in sends)
    assert {s.attributes["smtp.reply.code"] for s in sends} == {250}


@pytest.mark.django_db(transaction=True)
def test_tracing_off_writes_no_envelope_field_and_makes_no_span(redis_client):
    # given tracing not set up (the default)
    assert not worker_tracing.active()
    # when an event is published
    publish("orders", Event("test.thing.happened", {"n": 1}))
    # then the entry has the five envelope fields only
    ((_, fields),) = redis_client.xrange("orders")
    assert set(fields) == {"id", "type", "version", "occurred_at", "payload"}


def test_log_lines_carry_the_trace_and_span_ids_inside_a_span(spans):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    # outside a span: no ids
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    assert TextFormatter("%(message)s").format(record) == "hello"
    with spans.tracer.start_as_current_span("work") as span:
        ids = (f"{span.get_span_context().trace_id:032x}", _hex(span.get_span_context().span_id))
        entry = json.loads(JsonFormatter().format(record))
        text = TextFormatter("%(message)s").format(record)
    assert (entry["trace_id"], entry["span_id"]) == ids
    assert text == f"hello trace_id={ids[0]} span_id={ids[1]}"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_switched_on_by_the_standard_environment(environ, on):
    assert tracing.tracing_requested(environ) is on


PROBE = """
import sys, django
django.setup()
from commsplatform.tracing import setup_tracing
from opentelemetry import trace
from workers import tracing
on = setup_tracing("commsplatform-worker-probe")
print(on, tracing.active(), "opentelemetry.sdk.trace" in sys.modules,
      "opentelemetry.instrumentation.django" in sys.modules,
      trace.get_tracer_provider().resource.attributes.get("service.name") if on else "-")
"""


def _probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, "DJANGO_SETTINGS_MODULE": "commsplatform.settings.base", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_a_process_without_otel_environment_loads_no_sdk_and_no_instrumentation():
    assert _probe() == "False False False False -"


def test_a_process_with_an_exporter_set_is_traced_under_its_default_service_name():
    assert _probe(OTEL_TRACES_EXPORTER="console") == "True True True True commsplatform-worker-probe"
    assert _probe(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="mine").endswith(" mine")
