"""The campaign state machine: the one table of allowed status changes.

Every status change goes through `campaigns.services.campaign_transition`, which applies
a transition as one conditional UPDATE (`status IN sources`), so of two concurrent
transitions from the same state only those still allowed after the other committed take
effect (PostgreSQL re-checks the WHERE clause on the row the other one wrote).

    draft ──schedule──▶ scheduled ──start_due (send_at ≤ now)──┐
      │  ◀──unschedule──┘                                       ▼
      └──────────────────────send──────────────────────────▶ queued ──start──▶ sending
    sending ──complete──▶ completed;  sending ──complete_with_failures──▶ completed_with_failures
    sending ◀──retry_failed── completed_with_failures;  sending ──pause──▶ paused ──resume──▶ sending
    cancel: from draft, scheduled, queued, sending, paused ──▶ cancelled

A campaign is created `draft`, `scheduled` or `queued`; `completed` and `cancelled` are final.
"""

from dataclasses import dataclass

from .models import Campaign

Status = Campaign.Status


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str


SEND = Transition("send", frozenset({Status.DRAFT}), Status.QUEUED)
SCHEDULE = Transition("schedule", frozenset({Status.DRAFT, Status.SCHEDULED}), Status.SCHEDULED)
UNSCHEDULE = Transition("unschedule", frozenset({Status.SCHEDULED}), Status.DRAFT)
# The campaign-scheduler's step, applied only where send_at has come (a `where` of the caller).
START_DUE = Transition("start_due", frozenset({Status.SCHEDULED}), Status.QUEUED)
START = Transition("start", frozenset({Status.QUEUED}), Status.SENDING)
COMPLETE = Transition("complete", frozenset({Status.SENDING}), Status.COMPLETED)
COMPLETE_WITH_FAILURES = Transition(
    "complete_with_failures", frozenset({Status.SENDING}), Status.COMPLETED_WITH_FAILURES
)
CANCEL = Transition(
    "cancel",
    frozenset({Status.DRAFT, Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.PAUSED}),
    Status.CANCELLED,
)
PAUSE = Transition("pause", frozenset({Status.SENDING}), Status.PAUSED)
RESUME = Transition("resume", frozenset({Status.PAUSED}), Status.SENDING)
# Failed recipients are sent again while the campaign sends, or after it finished with failures.
RETRY_FAILED = Transition("retry_failed", frozenset({Status.SENDING, Status.COMPLETED_WITH_FAILURES}), Status.SENDING)

TRANSITIONS = (
    SEND,
    SCHEDULE,
    UNSCHEDULE,
    START_DUE,
    START,
    COMPLETE,
    COMPLETE_WITH_FAILURES,
    CANCEL,
    PAUSE,
    RESUME,
    RETRY_FAILED,
)

# Subject, body and send_at may change only before the campaign starts.
EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.SCHEDULED})


class IllegalTransition(Exception):
    """The campaign's status does not allow this transition (the API answers 409)."""

    def __init__(self, *, campaign_id: int, transition: Transition, current: str | None) -> None:
        self.campaign_id = campaign_id
        self.transition = transition
        self.current = current
        allowed = ", ".join(sorted(transition.sources))
        super().__init__(
            f"Campaign {campaign_id} is {current}: '{transition.name.replace('_', '-')}' is allowed only "
            f"when it is {allowed}."
        )
