"""Seed 002: users, campaigns, the delivery ledger and the email sender."""

from .orders import *  # noqa: F403

CONSUMER_GROUPS.update(
    {
        "campaign": env("GROUP_CAMPAIGN", default="campaign"),
        "notification": env("GROUP_NOTIFICATION", default="notification"),
        "email": env("GROUP_EMAIL", default="email-notification"),
    }
)
USERS_GENERATE_COUNT = env.int("USERS_GENERATE_COUNT", default=100_000)  # GET /api/v1/user/generate
CAMPAIGN_FANOUT_CHUNK = env.int("CAMPAIGN_FANOUT_CHUNK", default=1000)  # recipients per `notification` entry
EMAIL_BATCH_SIZE = env.int("EMAIL_BATCH_SIZE", default=200)  # deliveries per `email-notification` entry
# The app that owns campaigns, as the delivery ledger sees it (notifications.campaign_hooks).
DELIVERY_CAMPAIGN_HOOKS = "campaigns.delivery_hooks"
# Rows claimed, sent and recorded together; after a kill -9 at most this many per sender
# thread can be sent twice.
EMAIL_SEND_CHUNK = env.int("EMAIL_SEND_CHUNK", default=50)
EMAIL_SENDER_CONCURRENCY = env.int("EMAIL_SENDER_CONCURRENCY", default=4)  # threads, one SMTP connection each
# One rate for the whole platform (every sender process and replica share it, in Redis);
# 0 = unlimited. EMAIL_RATE_LIMIT_KEY names the limit: one per relay, if several.
EMAIL_RATE_LIMIT_PER_S = env.float("EMAIL_RATE_LIMIT_PER_S", default=0.0)
EMAIL_RATE_BURST = env.int("EMAIL_RATE_BURST", default=0)  # messages at once; 0 = one second's worth
EMAIL_RATE_LIMIT_KEY = env("EMAIL_RATE_LIMIT_KEY", default="smtp")
EMAIL_MAX_SEND_ERRORS = env.int("EMAIL_MAX_SEND_ERRORS", default=0)  # in a row, then the campaign pauses; 0 = never
EMAIL_TEST_SEND_RATE = env("EMAIL_TEST_SEND_RATE", default="10/minute")  # send-test, per user
CAMPAIGN_SCHEDULER_POLL_S = env.float("CAMPAIGN_SCHEDULER_POLL_S", default=5.0)  # the campaign-scheduler loop
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=10)  # 4xx replies before `failed`
EMAIL_RETRY_BASE_S = env.float("EMAIL_RETRY_BASE_S", default=30.0)  # backoff after a 4xx, doubling
EMAIL_RETRY_CAP_S = env.float("EMAIL_RETRY_CAP_S", default=900.0)
EMAIL_OUTAGE_PAUSE_BASE_S = env.float("EMAIL_OUTAGE_PAUSE_BASE_S", default=1.0)  # server unreachable
EMAIL_OUTAGE_PAUSE_CAP_S = env.float("EMAIL_OUTAGE_PAUSE_CAP_S", default=30.0)
EMAIL_SENDING_LEASE_S = env.float("EMAIL_SENDING_LEASE_S", default=120.0)  # then a claimed row is re-sent
EMAIL_RETRY_POLL_S = env.float("EMAIL_RETRY_POLL_S", default=2.0)  # the email-retry loop
EMAIL_MESSAGE_ID_DOMAIN = env("EMAIL_MESSAGE_ID_DOMAIN", default="commsplatform.local")
