"""
WSGI config for commsplatform project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

from commsplatform.tracing import setup_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commsplatform.settings.base")

# Before the app loads its middleware (the Django instrumentation adds its own). Each
# gunicorn worker imports this module after the fork (no preload_app), so each
# initialises its own exporter thread.
setup_tracing("commsplatform-web")

django_application = get_wsgi_application()

from commsplatform.fastpath import FastPaths  # noqa: E402 (after django.setup(): it imports the metrics' models)

# The common cases of the ingest path and of the weather request/reply (neither touches
# the database) are answered in front of the middleware chain, with the chain's own
# headers, metrics and refusals (commsplatform/fastpath.py).
application = FastPaths(django_application, [("POST", "/event"), ("POST", "/WeatherForecast/city")])
