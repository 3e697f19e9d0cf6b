"""Seed 004's orders saga."""

from .streams import *  # noqa: F403

# GET /report lists at most this many orders (newest first).
ORDERS_REPORT_MAX_ORDERS = env.int("ORDERS_REPORT_MAX_ORDERS", default=1000)
# Each saga consumer waits this long after a small batch, so that under load one
# transaction serves many orders (workers.registry.ConsumerSpec.linger_ms).
SAGA_LINGER_MS = env.int("SAGA_LINGER_MS", default=50)
