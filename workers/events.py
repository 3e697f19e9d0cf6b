"""The event envelope every stream entry carries.

An entry's fields are `id` (uuid4), `type` (`<app>.<entity>.<past-tense>`), `version`,
`occurred_at` (ISO-8601 UTC) and `payload` (JSON text). Seed-compatible streams add the
seed's own fields next to these through `extra` (e.g. weather's `requestId` and `data`).
With tracing on (workers.tracing), an entry also carries its producer's W3C
`traceparent`; without it the field is absent.
"""

import functools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

ENVELOPE_FIELDS = frozenset(("id", "type", "version", "occurred_at", "payload", "traceparent"))
# Canonical lowercase uuid text, as str(uuid4()) writes it (cheaper than uuid.UUID()).
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class MalformedEvent(ValueError):
    """A stream entry that cannot be decoded into an Event; it is dead-lettered at once."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Event:
    type: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 1
    occurred_at: str = field(default_factory=_now_iso)
    extra: Mapping[str, str] = field(default_factory=dict)
    # Set on events read from a stream: the entry id and how often it was delivered.
    stream_id: str | None = None
    deliveries: int = 1
    # The producer's trace context (W3C traceparent), written only while tracing is on.
    traceparent: str | None = None

    def to_fields(self) -> dict[str, str]:
        fields = {
            "id": self.id,
            "type": self.type,
            "version": str(self.version),
            "occurred_at": self.occurred_at,
            "payload": orjson.dumps(self.payload, default=str, option=orjson.OPT_NON_STR_KEYS).decode(),
        }
        if self.traceparent is not None:
            fields["traceparent"] = self.traceparent
        fields.update(self.extra)
        return fields

    @classmethod
    def keyed(
        cls, event_type: str, key: object, payload: dict[str, Any], *, extra: Mapping[str, str] | None = None
    ) -> "Event":
        """An event whose id derives from its type and a key (uuid5), e.g. a saga step's
        outcome for one order: emitting it again, after a redelivery, gives the same id,
        which consumers drop, so the flow can never fork. The one way deterministic event
        ids are made here."""
        return cls(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"commsplatform/{event_type}/{key}")),
            type=event_type,
            payload=payload,
            extra=extra or {},
        )

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], *, stream_id: str | None = None, deliveries: int = 1) -> "Event":
        # This runs for every entry every consumer reads: keep it lean.
        try:
            payload = orjson.loads(fields["payload"])
            event_id = fields["id"]
            event_type = fields["type"]
            version = int(fields.get("version", 1))
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise MalformedEvent(f"not an event envelope: {exc!r}") from exc
        if not isinstance(payload, dict):
            raise MalformedEvent("payload is not a JSON object")
        if not _UUID_RE.fullmatch(event_id):
            raise MalformedEvent(f"event id is not a uuid: {event_id!r}")
        if len(fields) > 5:  # seed fields, a traceparent
            extra = {k: v for k, v in fields.items() if k not in ENVELOPE_FIELDS}
            traceparent = fields.get("traceparent")
        else:
            extra, traceparent = {}, None
        occurred_at = fields.get("occurred_at", "")
        return cls(event_type, payload, event_id, version, occurred_at, extra, stream_id, deliveries, traceparent)


@functools.cache
def known_event_types() -> frozenset[str]:
    """Every type some producer emits: the `EVENT_TYPES` of each installed app's `events`
    module (found the way Django finds admin modules, so workers names no domain app)."""
    from importlib import import_module
    from importlib.util import find_spec

    from django.apps import apps

    types: set[str] = set()
    for app in apps.get_app_configs():
        module_name = f"{app.name}.events"
        if find_spec(module_name) is not None:
            types.update(getattr(import_module(module_name), "EVENT_TYPES", ()))
    return frozenset(types)
