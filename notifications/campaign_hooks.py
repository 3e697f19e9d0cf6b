"""What the delivery ledger asks of the app that owns campaigns, without importing it.

A campaign's deliveries carry its id and nothing else of it: its status, channels,
templates and counters belong to the app named by settings.DELIVERY_CAMPAIGN_HOOKS (a
module with the functions of `CampaignHooks`, `campaigns.delivery_hooks`). The ledger
calls them inside its own transactions, so a counter still changes in the transaction
that changed the rows it counts, and only by the rows that changed.
"""

from functools import cache
from importlib import import_module
from typing import Protocol, cast

from django.conf import settings


class CampaignHooks(Protocol):
    def campaign_route_channels(self, *, campaign_id: int) -> list[str] | None:
        """Its channels while it takes deliveries (sending or paused), None when it does
        not. Raises workers.handling.PermanentError if it does not exist."""
        ...

    def campaign_batch_routed(self, *, campaign_id: int, recipients: int, skipped: int) -> bool:
        """A recipient batch was routed (`recipients` rows, `skipped` of them not to send),
        counted in the caller's transaction, which now holds the campaign row; whether the
        campaign still takes them (False: it was cancelled meanwhile)."""
        ...

    def campaign_send_outcomes(self, *, campaign_id: int, errors: int, last_ok: bool) -> None:
        """After a sender chunk: `errors` send errors (4xx, 5xx, outage) since the chunk's
        last success (or in the whole chunk when `last_ok` is False): the campaign may
        pause itself after too many in a row (EMAIL_MAX_SEND_ERRORS)."""
        ...

    def campaign_ids_sending(self, *, campaign_ids: set[int]) -> set[int]:
        """Those of the campaigns that are still sending (the others send nothing more)."""
        ...

    def campaign_templates(self, *, campaign_ids: set[int]) -> dict[int, tuple[str, str, str]]:
        """campaign id → (subject template, body template, from address)."""
        ...

    def campaign_deliveries_counted(
        self,
        *,
        campaign_id: int,
        recipients: int = 0,
        sent: int = 0,
        failed: int = 0,
        skipped: int = 0,
        batches_routed: int = 0,
    ) -> None:
        """Deliveries that just changed, counted in the caller's transaction."""
        ...

    def campaign_consent_counted(self, *, campaign_id: int, unsubscribed: int = 0, bounced: int = 0) -> None:
        """Recipients skipped because they unsubscribed, and sent mails that bounced later,
        counted in the caller's transaction."""
        ...

    def campaign_html_templates(self, *, campaign_ids: set[int]) -> dict[int, str]:
        """campaign id → HTML body template, for those that have one."""
        ...

    def campaign_deliveries_settled(self, *, campaign_id: int) -> None:
        """After a commit that may have brought the campaign's last deliveries to a final state."""
        ...

    def campaign_failed_retry(self, *, campaign_id: int, failed: int) -> bool:
        """Whether `failed` of its failed deliveries may be sent again (then they no longer
        count as failed); False leaves them as they are."""
        ...


@cache
def _hooks(path: str) -> CampaignHooks:
    return cast(CampaignHooks, import_module(path))


def campaign_hooks() -> CampaignHooks:
    return _hooks(settings.DELIVERY_CAMPAIGN_HOOKS)
