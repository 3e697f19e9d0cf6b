"""Unsubscribe links, the suppression list and bounce notifications."""

from .api import *  # noqa: F403

# The public address of this site, for the unsubscribe links in campaign mail.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default=API_URL)
# An address that unsubscribes by mail, added to List-Unsubscribe when set (its mailbox is
# not read by this platform: set it only where something acts on it).
UNSUBSCRIBE_MAILTO = env("UNSUBSCRIBE_MAILTO", default="")
# Shared secret of POST /api/v1/bounces/ (HMAC-SHA256 of the body in X-Signature); unset,
# the webhook answers 503 and accepts nothing.
BOUNCE_WEBHOOK_SECRET = env("BOUNCE_WEBHOOK_SECRET", default="")
