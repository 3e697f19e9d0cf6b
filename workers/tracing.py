"""Trace context through the streams (OpenTelemetry), free when tracing is off.

`commsplatform.tracing.setup_tracing` activates this module once per process when the
`OTEL_*` environment asks for tracing; until then every hook below is one `is None`
check and the envelope gains no field.

- `traced_publish` (on `publish_many` / `publish_on_commit`): a PRODUCER span
  `publish <stream>`, and each event stamped with the W3C `traceparent` of that span
  (`Event.traceparent`, an envelope field). `publish_on_commit` stores the stamped fields
  in the outbox, so an event the relay sends later still belongs to its trace.
- `traced_apply` (on `ConsumerLoop._apply`): a CONSUMER span `process <consumer>` per
  handler call (each retry is its own span), the child of the producer's context; a batch
  gets one span linked to every event's context, and is also the child of that context
  when the whole batch comes from one trace (a batch mixing traces starts a new one).
  Events the handler returns (`Outgoing`) leave stamped with the consumer span.
- `sampled_send` (on `SmtpClient.send`): a CLIENT span `smtp send` for one send in
  every `TRACING_SMTP_SPAN_EVERY` of a thread; a campaign of 100,000 recipients records its
  consumer and database spans per batch, not one span per message.
- `log_ids`: the current trace and span ids for the log formatters.
"""

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from opentelemetry import context as otel_context, trace
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .events import Event

F = TypeVar("F", bound=Callable[..., Any])

_tracer: Tracer | None = None
_smtp_span_every = 100
_propagator = TraceContextTextMapPropagator()
_sends = threading.local()


def activate(tracer: Tracer, *, smtp_span_every: int = 100) -> None:
    """Turn the hooks on (commsplatform.tracing does, once per process)."""
    global _tracer, _smtp_span_every, _sends
    _tracer = tracer
    _smtp_span_every = max(1, smtp_span_every)
    _sends = threading.local()  # every thread counts its sends from 0 again


def deactivate() -> None:
    global _tracer
    _tracer = None


def active() -> bool:
    return _tracer is not None


def log_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the span current in this thread, if any."""
    if _tracer is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def _stamp(events: Sequence[Event]) -> None:
    """Write the current span's context into events that carry none yet. Also for an
    unsampled span (flags 00): its consumers then stay unsampled instead of each
    starting a trace of its own."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    traceparent = carrier.get("traceparent")
    if traceparent:
        for event in events:
            if event.traceparent is None:
                event.traceparent = traceparent


def _span_context(traceparent: str | None) -> trace.SpanContext | None:
    if not traceparent:
        return None
    ctx = trace.get_current_span(_propagator.extract({"traceparent": traceparent})).get_span_context()
    return ctx if ctx.is_valid else None


def _messaging_attributes(stream: str, count: int) -> dict[str, Any]:
    return {"messaging.system": "redis", "messaging.destination.name": stream, "messaging.batch.message_count": count}


def traced_publish(publish: F) -> F:
    """Decorate a `publish(stream, events, ...)` helper of workers.publish."""

    @functools.wraps(publish)
    def wrapper(stream: str, events: Event | Sequence[Event], *args: Any, **kwargs: Any) -> Any:
        if _tracer is None:
            return publish(stream, events, *args, **kwargs)
        batch = [events] if isinstance(events, Event) else list(events)
        name = settings.STREAMS.get(stream, stream)
        attributes = {**_messaging_attributes(name, len(batch)), "messaging.operation.type": "send"}
        with _tracer.start_as_current_span(f"publish {name}", kind=SpanKind.PRODUCER) as span:
            if span.is_recording():
                span.set_attributes(attributes)
                if len(batch) == 1:
                    span.set_attribute("messaging.message.id", batch[0].id)
                    span.set_attribute("commsplatform.event.type", batch[0].type)
            _stamp(batch)
            return publish(stream, batch, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _consumer_parent(events: Sequence[Event]) -> tuple[otel_context.Context, list[Link]]:
    """The context a consumer span starts in, and its links (one per traced event of a batch)."""
    contexts = [ctx for ctx in (_span_context(e.traceparent) for e in events) if ctx is not None]
    links = [Link(ctx) for ctx in contexts] if len(events) > 1 else []
    if contexts and len({ctx.trace_id for ctx in contexts}) == 1:
        return trace.set_span_in_context(trace.NonRecordingSpan(contexts[0]), otel_context.Context()), links
    return otel_context.Context(), links  # no context, or a batch mixing traces: a new trace, linked


def traced_apply(apply: F) -> F:
    """Decorate `ConsumerLoop._apply(self, events)`: a CONSUMER span around the handler."""

    @functools.wraps(apply)
    def wrapper(loop: Any, events: list[Event]) -> Any:
        if _tracer is None:
            return apply(loop, events)
        parent, links = _consumer_parent(events)
        attributes = {
            **_messaging_attributes(loop.stream, len(events)),
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": loop.group,
            "commsplatform.consumer": loop.spec.name,
        }
        if len(events) == 1:
            attributes["messaging.message.id"] = events[0].id
            attributes["commsplatform.event.type"] = events[0].type
        with _tracer.start_as_current_span(
            f"process {loop.spec.name}", context=parent, kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ):
            result = apply(loop, events)
            _stamp([out.event for out in result[1]])  # Outgoing: XADDed with the ack, after this span
            return result

    return wrapper  # type: ignore[return-value]


def sampled_send(send: F) -> F:
    """Decorate `SmtpClient.send(self, from_addr, to_addr, message)`: a span for one send
    in every TRACING_SMTP_SPAN_EVERY of this thread (the first one included)."""

    @functools.wraps(send)
    def wrapper(client: Any, from_addr: str, to_addr: str, message: bytes) -> Any:
        if _tracer is None:
            return send(client, from_addr, to_addr, message)
        count = getattr(_sends, "count", 0)
        _sends.count = count + 1
        if count % _smtp_span_every:
            return send(client, from_addr, to_addr, message)
        attributes = {"server.address": settings.EMAIL_HOST, "server.port": settings.EMAIL_PORT}
        with _tracer.start_as_current_span("smtp send", kind=SpanKind.CLIENT, attributes=attributes) as span:
            reply = send(client, from_addr, to_addr, message)
            span.set_attribute("smtp.reply.code", reply.code)
            return reply

    return wrapper  # type: ignore[return-value]
