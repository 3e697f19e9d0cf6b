"""The event the EMS ingest emits on `battery-changes`, one per real change of a battery's
reading (written by the ingest's Lua script, so only its type and version live here)."""

BATTERY_UPDATED = "telemetry.battery.updated"
BATTERY_UPDATED_VERSION = 1
EVENT_TYPES = (BATTERY_UPDATED,)
