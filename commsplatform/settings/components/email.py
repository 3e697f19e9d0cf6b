"""The SMTP server the sender and Django's mail use."""

from .communications import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# make run's SMTP sink only when EMAIL_HOST is unset (its port belongs to its host).
_devstack_smtp = {} if env("EMAIL_HOST", default="") else DEVSTACK_ENDPOINTS
EMAIL_HOST = env("EMAIL_HOST", default=_devstack_smtp.get("EMAIL_HOST", "127.0.0.1"))
EMAIL_PORT = env.int("EMAIL_PORT", default=int(_devstack_smtp.get("EMAIL_PORT", 2500)))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="test@test.com")
