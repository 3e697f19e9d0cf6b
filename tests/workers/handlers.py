"""Handlers that the runner tests register: real code paths, with controllable failures.

They count their calls in Redis (`calls:<event id>`) so a test can see how often a
handler really ran, across threads and processes.
"""

from django.contrib.auth.models import Group

from workers.connection import get_redis
from workers.events import Event
from workers.handling import Outgoing, PermanentError, handles


def _count(event: Event) -> int:
    return get_redis().incr(f"calls:{event.id}")


def create_group(event: Event) -> None:
    """A database side effect: one auth Group per event."""
    _count(event)
    Group.objects.create(name=event.payload["name"])


def create_groups(events: list[Event]) -> None:
    for event in events:
        if event.payload.get("poison"):
            raise PermanentError(f"poison event {event.payload['name']}")
        create_group(event)


def fail_first_time(event: Event) -> None:
    if _count(event) == 1:
        raise ConnectionError("simulated transient failure")
    Group.objects.create(name=event.payload["name"])


def always_fail(event: Event) -> None:
    _count(event)
    raise RuntimeError("simulated bug")


def reject(event: Event) -> None:
    _count(event)
    raise PermanentError("simulated bad data")


def answer(events: list[Event]) -> list[Outgoing]:
    """A request/reply handler: one reply per event, returned for sending with the ack."""
    return [
        Outgoing("test-replies", Event(type="tests.answer.produced", payload={"to": e.id}), maxlen=1000) for e in events
    ]


@handles("tests.group.requested")
def create_group_of_its_type(event: Event) -> None:
    """create_group, declaring the one type it takes."""
    create_group(event)


def created_groups() -> list[str]:
    """Names of the Groups these handlers created, sorted (the role groups the roles
    migration creates are not theirs)."""
    from commsplatform.roles import ROLES

    return sorted(Group.objects.exclude(name__in=ROLES).values_list("name", flat=True))
