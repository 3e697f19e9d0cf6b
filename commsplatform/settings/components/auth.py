"""Logins: the lockout after failed passwords (django-axes) and password rules."""

from datetime import timedelta

from .core import *  # noqa: F403

# Every login (the admin's) goes through axes first: after LOGIN_FAILURE_LIMIT failed
# passwords from one client address, that address may not log in for LOGIN_LOCKOUT_MINUTES,
# not even with the right password; the admin shows a page saying so (429). Attempts are
# kept in the database (shared by every process, listed in the admin); `manage.py
# axes_reset` / `axes_reset_ip <ip>` lift a lockout. The client address is
# commsplatform.authentication.client_ip (NUM_PROXIES, below).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_HANDLER = env("AXES_HANDLER", default="axes.handlers.database.AxesDatabaseHandler")
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "commsplatform.authentication.client_ip"
AXES_LOCKOUT_CALLABLE = "commsplatform.authentication.login_lockout_response"
# No banner at every start-up (every manage.py command would print it on stderr); lockouts
# are still logged as warnings.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
