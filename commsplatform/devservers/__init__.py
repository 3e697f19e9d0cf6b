"""Real local servers for `make run` and the tests, each on a free port.

Every server has `start()`, `stop()`, `kill()` (as a crash would), `restart()` (same
port, same data) and is a context manager; a server that does not come up raises
`ServerStartError` with the tail of its log.
"""

from ._process import ServerStartError, free_port, port_is_open
from .kafka_broker import KafkaBroker
from .nginx_server import NginxServer, render_template
from .postgres_server import PostgresServer, socket_database_url
from .redis_server import RedisServer, redis_server_binary
from .smtp_server import ReceivedMail, SmtpServer, SmtpSinkProcess

__all__ = [
    "KafkaBroker",
    "NginxServer",
    "PostgresServer",
    "ReceivedMail",
    "RedisServer",
    "ServerStartError",
    "SmtpServer",
    "SmtpSinkProcess",
    "free_port",
    "port_is_open",
    "redis_server_binary",
    "render_template",
    "socket_database_url",
]
