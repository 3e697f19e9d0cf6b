"""Settings read from the environment, with safe local defaults.

`make run` and the tests use these defaults (SQLite unless DATABASE_URL is set, the
embedded servers' URLs passed in by the supervisor or the test plugin). Production
imports this module and then refuses unsafe values (see production.py).
"""

from .components.operations import *  # noqa: F403
