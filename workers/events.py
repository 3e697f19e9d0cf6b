"""The event envelope every stream entry carries.

An entry's fields are `id` (uuid4), `type` (`<app>.<entity>.<past-tense>`), `version`,
`occurred_at` (ISO-8601 UTC) and `payload` (JSON text). Seed-compatible streams add the
seed's own fields next to these through `extra` (e.g. weather's `requestId` and `data`).
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ENVELOPE_FIELDS = ("id", "type", "version", "occurred_at", "payload")


class MalformedEvent(ValueError):
    """A stream entry that cannot be decoded into an Event; it is dead-lettered at once."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
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

    def to_fields(self) -> dict[str, str]:
        fields = {
            "id": self.id,
            "type": self.type,
            "version": str(self.version),
            "occurred_at": self.occurred_at,
            "payload": json.dumps(self.payload, separators=(",", ":"), default=str),
        }
        fields.update(self.extra)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], *, stream_id: str | None = None, deliveries: int = 1) -> "Event":
        try:
            payload = json.loads(fields["payload"])
            if not isinstance(payload, dict):
                raise MalformedEvent("payload is not a JSON object")
            event_id = str(uuid.UUID(fields["id"]))
            return cls(
                id=event_id,
                type=fields["type"],
                version=int(fields.get("version", 1)),
                occurred_at=fields.get("occurred_at", ""),
                payload=payload,
                extra={k: v for k, v in fields.items() if k not in ENVELOPE_FIELDS},
                stream_id=stream_id,
                deliveries=deliveries,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(f"not an event envelope: {exc!r}") from exc
