"""The baseline of bench.ingest: the least a Python web process can do for `POST /event`.

A plain WSGI callable, no Django: read the body, `json.loads`, XADD an envelope of the same
fields as the project's events to NotificationStream with redis-py (one round trip), answer
200 with JSON. Run under the same gunicorn configuration as the project
(docker/gunicorn.conf.py), so the difference with the subject is the framework and the
project's own work (auth, permission, throttling, validation, middleware).
"""

import json
import os
import time
import uuid

import redis

_redis = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != "/event":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"status": 404}']
    length = int(environ.get("CONTENT_LENGTH") or 0)
    description = json.loads(environ["wsgi.input"].read(length))["description"]
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    payload = {"id": time.time_ns(), "description": description, "timestamp": timestamp}
    fields = {
        "id": str(uuid.uuid4()),
        "type": "notifications.message.published",
        "version": "1",
        "occurred_at": timestamp,
        "payload": json.dumps(payload),
    }
    stream_id = _redis.xadd("NotificationStream", fields)
    body = json.dumps({**payload, "stream_id": stream_id}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
