"""nginx in front of gunicorn, with the shipped config (docker/nginx.conf.template).

The template is the http-level snippet the official nginx image renders from
/etc/nginx/templates; here it is rendered the same way (only `${NAME}` variables are
replaced, nginx's own `$host`-style variables are left alone) and included from a small
main config that keeps the pid, the logs and every temp path under `data_dir`, so
nginx runs as any user.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Mapping
from pathlib import Path

from django.conf import global_settings

from ._process import ProcessServer

NGINX_TEMPLATE = Path(__file__).resolve().parent.parent.parent / "docker" / "nginx.conf.template"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render_template(text: str, values: Mapping[str, object]) -> str:
    """Replace each `${NAME}` as the nginx image's envsubst step does; KeyError names any missing one.

    By hand rather than with envsubst(1): that needs gettext-base, and string.Template
    would also replace nginx's `$name` variables.
    """
    missing = sorted(set(_VARIABLE.findall(text)) - set(values))
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return _VARIABLE.sub(lambda match: str(values[match[1]]), text)


class NginxServer(ProcessServer):
    """The system nginx on `host`:`port`, proxying to gunicorn at `upstream` ("host:port")."""

    name = "nginx"

    def __init__(
        self,
        binary: str,
        upstream: str,
        port: int | None = None,
        host: str = "127.0.0.1",
        max_body_size: int = global_settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        data_dir: str | Path | None = None,
        template: Path = NGINX_TEMPLATE,
    ) -> None:
        self.host = host
        super().__init__(port=port, data_dir=data_dir)
        self.binary = binary
        self.upstream = upstream
        self.max_body_size = max_body_size
        self.template = template

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nginx.conf"

    def write_config(self) -> Path:
        """Render the template for this port and upstream, write the main config; return its path."""
        site = self.data_dir / "commsplatform.conf"
        site.write_text(
            render_template(
                self.template.read_text(),
                {
                    "NGINX_LISTEN": f"{self.host}:{self.port}",
                    "WEB_UPSTREAM": self.upstream,
                    "DATA_UPLOAD_MAX_MEMORY_SIZE": self.max_body_size,
                    "NGINX_FORWARDED_PROTO": "$scheme",
                },
            )
        )
        temp = self.data_dir / "tmp"
        for name in _TEMP_PATHS:
            (temp / name).mkdir(parents=True, exist_ok=True)
        temp_paths = "\n".join(f"    {name}_temp_path {temp / name};" for name in _TEMP_PATHS)
        self.config_path.write_text(
            f"""# Written by commsplatform.devservers.NginxServer; the site is {self.template.name}, rendered.
worker_processes 1;
pid {self.data_dir / "nginx.pid"};
error_log stderr notice;
events {{
    worker_connections 1024;
}}
http {{
    default_type application/octet-stream;
    access_log off;  # gunicorn's access log has every request
{temp_paths}
    include {site};
}}
"""
        )
        return self.config_path

    def command(self) -> list[str]:
        return [
            self.binary, "-e", "stderr", "-p", str(self.data_dir), "-c", str(self.config_path), "-g", "daemon off;"
        ]  # fmt: skip

    def _spawn(self) -> None:
        # Written at every spawn: start() may have moved to another free port.
        self.write_config()
        super()._spawn()

    def is_ready(self) -> bool:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            connection.request("GET", "/nginx-healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()
