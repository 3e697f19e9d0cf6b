"""OpenTelemetry setup: off unless the standard `OTEL_*` environment asks for it.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
is set, or `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`), and
`OTEL_SDK_DISABLED` is not `true`. Off, nothing is imported from the SDK and nothing is
instrumented: the hooks of workers.tracing stay one `is None` check each.

`setup_tracing(name)` runs once per process: commsplatform.wsgi (each gunicorn worker
imports it after the fork: the app is not preloaded) and `runworker`. It installs:
- a TracerProvider with `service.name` = `OTEL_SERVICE_NAME`, else the name given
  (`commsplatform-web`, `commsplatform-worker-<entries>`), the sampler of
  `OTEL_TRACES_SAMPLER` / `_ARG` (default parentbased_always_on), except that a database
  or Redis call with no parent span (a worker's polling, heartbeats, trims) starts no
  trace of its own;
- a batch processor with the OTLP/HTTP exporter (endpoint, headers, timeouts from the
  standard `OTEL_EXPORTER_OTLP_*` variables), or the console exporter;
- the maintained instrumentations for Django (`OTEL_PYTHON_DJANGO_EXCLUDED_URLS`, by
  default the probes and /metrics), psycopg, redis and requests;
- workers.tracing's hooks (publish, consume, SMTP; `TRACING_SMTP_SPAN_EVERY`, 100).
"""

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from workers import tracing as worker_tracing

logger = logging.getLogger(__name__)

# Probes and scrapes: one trace each every few seconds, about nothing.
DEFAULT_EXCLUDED_URLS = "healthz,readyz,livez,metrics,WeatherForecast/health"

_initialised = False
_instrumentors: list[Any] = []


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup_tracing(service_name: str) -> bool:
    """Initialise tracing for this process if the environment asks for it; return whether
    it is on. Calling it again is a no-op."""
    global _initialised
    if _initialised:
        return True
    if not tracing_requested():
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = tracer_provider(service_name)
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument(provider)
    _initialised = True
    logger.info("tracing on: service %s", provider.resource.attributes.get("service.name"))
    return True


def tracer_provider(service_name: str) -> Any:
    """A TracerProvider for this process (no processor yet)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider, sampling

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the name
    # given here only fills in when neither sets one.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    root = sampling._get_from_env_or_default()  # OTEL_TRACES_SAMPLER(_ARG), as the SDK reads it
    return TracerProvider(resource=resource, sampler=_no_orphan_client_spans(root))


def _exporters() -> list[Any]:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters: list[Any] = []
    for name in names:
        if name == "otlp":
            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                logger.warning("tracing: OTLP protocol %s is not installed; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            logger.warning("tracing: unknown OTEL_TRACES_EXPORTER %r, ignored", name)
    return exporters


def instrument(provider: Any) -> None:
    """Install the instrumentations and the stream hooks, all sending to `provider`."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    excluded = os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS") or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
    instrumentors: Sequence[tuple[Any, dict[str, Any]]] = (
        (DjangoInstrumentor(), {"excluded_urls": excluded or DEFAULT_EXCLUDED_URLS}),
        (PsycopgInstrumentor(), {}),
        (RedisInstrumentor(), {}),
        (RequestsInstrumentor(), {}),
    )
    for instrumentor, options in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider, **options)
            _instrumentors.append(instrumentor)
    worker_tracing.activate(
        provider.get_tracer("commsplatform"), smtp_span_every=int(os.environ.get("TRACING_SMTP_SPAN_EVERY", "100"))
    )


def uninstrument() -> None:
    """Undo `instrument` (tests)."""
    worker_tracing.deactivate()
    while _instrumentors:
        _instrumentors.pop().uninstrument()


def _no_orphan_client_spans(delegate: Any) -> Any:
    """The configured sampler, except that CLIENT spans without a parent are dropped: a
    worker's idle XREADGROUP or a heartbeat's query is no trace worth keeping."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class NoOrphanClientSpans(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind == trace.SpanKind.CLIENT and not trace.get_current_span(parent_context).get_span_context().is_valid:
                return SamplingResult(Decision.DROP)
            return delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"NoOrphanClientSpans{{{delegate.get_description()}}}"

    return NoOrphanClientSpans()
