"""Headless Debian chromium driven over the Chrome DevTools protocol (one websocket per
page), with no network but loopback: every load from another host fails.

Chosen over selenium: no driver binary to match to the browser version, and CDP gives
the console messages, exceptions and failed requests directly.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websocket

# No proxy that answers (loopback is never proxied), and no name resolves but localhost:
# a page that needs the internet fails to load it.
OFFLINE_FLAGS = [
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


class Browser:
    def __init__(self, program: str, profile: Path, *, width: int = 1280, height: int = 900) -> None:
        self.profile = profile
        self.process = subprocess.Popen(
            [
                program,
                "--headless=new",
                "--no-sandbox",  # root in CI containers
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                *OFFLINE_FLAGS,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port, browser_path = port_file.read_text().splitlines()[:2]
        self.port = int(port)
        self._browser = Session(f"ws://127.0.0.1:{port}{browser_path}")

    def new_page(self) -> Page:
        target = self._browser.call("Target.createTarget", url="about:blank")["targetId"]
        return Page(Session(f"ws://127.0.0.1:{self.port}/devtools/page/{target}"))

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Session:
    """Commands and events of one DevTools websocket."""

    def __init__(self, url: str) -> None:
        self._ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = self._receive(timeout=30)
            if message is None:
                raise TimeoutError(method)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def pump(self, timeout: float) -> None:
        """Read the events that arrive within `timeout`."""
        self._receive(timeout)

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        self._ws.settimeout(timeout)
        try:
            message = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in message:
            self.events.append(message)
        return message


class Page:
    def __init__(self, session: Session) -> None:
        self.session = session
        for domain in ("Page", "Runtime", "Log", "Network"):
            session.call(f"{domain}.enable")

    def set_cookie(self, *, url: str, name: str, value: str) -> None:
        self.session.call("Network.setCookie", url=url, name=name, value=value)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.session.events.clear()
        self.session.call("Page.navigate", url=url)
        self.wait_for(lambda: any(e["method"] == "Page.loadEventFired" for e in self.session.events), url)

    def evaluate(self, expression: str) -> Any:
        result = self.session.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {what}")
            self.session.pump(0.1)

    def wait_for_js(self, expression: str, timeout: float = 30) -> Any:
        return self.wait_for(lambda: self.evaluate(expression), expression, timeout)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, failed and 4xx/5xx loads."""
        self.session.pump(0.2)
        found = []
        for event in self.session.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params['args']]}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"failed load: {params.get('errorText')} ({params['requestId']})")
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                found.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
        return found

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"] for e in self.session.events if e["method"] == "Network.requestWillBeSent"
        ]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = self.session.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
        data = self.session.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.write_bytes(base64.b64decode(data))
