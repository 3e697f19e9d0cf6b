"""What a stream handler may raise or return, apart from the runner that calls it.

Domain handlers import these without importing the runner (and its Redis, tenacity and
signal machinery).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .events import Event

H = TypeVar("H", bound=Callable)


class PermanentError(Exception):
    """The event can never be handled (bad data); dead-letter it without retrying."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event a handler returns instead of publishing it: it is XADDed in the MULTI that
    acks the entries handled, so it leaves if and only if they are acknowledged, and
    without a round trip of its own (request/reply: the reply and the ack together).

    For consumers without the inbox (no database effects, like the weather terminals): a
    redelivered entry runs the handler again and so returns the event again. With the
    inbox a redelivery after a crash between commit and ack skips the handler, and the
    event would be lost; such handlers publish with `publish_on_commit` instead.
    """

    stream: str  # a key of settings.STREAMS, or a literal stream name
    event: Event
    maxlen: int | None = None  # approximate cap, only for streams that no group consumes


def as_int(value: object, what: str, *, minimum: int | None = None) -> int:
    """`value` as an int (a JSON number or a digit string); PermanentError otherwise.

    For the `from_event` decoders of each app's events module: a payload that breaks its
    shape can never be handled, so it is dead-lettered, not retried.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PermanentError(f"{what} is not an integer: {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise PermanentError(f"{what} is not an integer: {value!r}") from None
    if minimum is not None and number < minimum:
        raise PermanentError(f"{what} must be at least {minimum}: {value!r}")
    return number


def payload_int(payload: dict, key: str, *, minimum: int | None = None) -> int:
    """`payload[key]` through `as_int`."""
    return as_int(payload.get(key), key, minimum=minimum)


def handles(*event_types: str) -> Callable[[H], H]:
    """Declare the event types a handler takes. The runner acknowledges entries of other
    types without calling it, counts them (`consumer_skipped_total`) and logs each new
    type once, at WARNING when no producer emits it (a renamed type, say)."""

    def mark(handler: H) -> H:
        handler.event_types = frozenset(event_types)  # type: ignore[attr-defined]
        return handler

    return mark
