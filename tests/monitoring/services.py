"""Real local services for the monitoring tests: Prometheus (Debian package),
headless Chromium (Debian package, driven over the DevTools protocol) and a
scriptable webhook receiver (``http.server`` in a thread). Each starts on a
free loopback port and cleans up after itself."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from typing import Optional

from hybridflow.testing.services._process import stop_process


class Unavailable(RuntimeError):
    """A binary the test needs is not installed (``make test`` installs it)."""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(cmd, log_path):
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(check, what: str, timeout: float, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            tail = open(log, errors="replace").read()[-2000:] if log and os.path.exists(log) else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail}")
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.1)


def _get_json(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


# --------------------------------------------------------------------------
# Prometheus


class _PrometheusBinary:
    """A Prometheus-project server (Debian package) on a free loopback port, in a temp dir."""

    package = command = ""

    def __init__(self):
        self.binary = shutil.which(self.command) or f"/usr/bin/{self.command}"
        if not os.access(self.binary, os.X_OK):
            raise Unavailable(f"{self.command} is not installed: apt-get install {self.package} (make test does)")
        self.port = free_port()
        self.base = tempfile.mkdtemp(prefix=f"hf-{self.command}-")
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _arguments(self) -> list:
        return []

    def start(self):
        log = os.path.join(self.base, f"{self.command}.log")
        self.proc = _spawn([self.binary, *self._arguments(), f"--web.listen-address=127.0.0.1:{self.port}",
                            "--log.level=warn"], log)
        _wait(lambda: urllib.request.urlopen(self.url + "/-/ready", timeout=2).status == 200,
              self.command, 60, self.proc, log)
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PrometheusServer(_PrometheusBinary):
    """``prometheus`` scraping ``targets`` every ``scrape_interval``, on 127.0.0.1."""

    package = command = "prometheus"

    def __init__(self, targets, scrape_interval: str = "1s"):
        super().__init__()
        self.targets = list(targets)
        self.scrape_interval = scrape_interval

    def _arguments(self) -> list:
        config = os.path.join(self.base, "prometheus.yml")
        with open(config, "w") as f:
            json.dump({  # JSON is YAML
                "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval},
                "scrape_configs": [{"job_name": "hybridflow", "static_configs": [{"targets": self.targets}]}],
            }, f)
        return [f"--config.file={config}", f"--storage.tsdb.path={self.base}/data", "--storage.tsdb.retention.time=1h"]

    def query(self, promql: str, at: Optional[float] = None) -> list:
        params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        answer = _get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def samples(self, selector: str, window: str = "10m") -> list:
        """Raw samples ``[(t, value)]`` per series of ``selector`` over the last ``window``."""
        return self.query(f"{selector}[{window}]")


class PushgatewayServer(_PrometheusBinary):
    """``prometheus-pushgateway`` (Debian package) on a free loopback port, in memory."""

    package = command = "prometheus-pushgateway"

    def metrics(self) -> str:
        """What the gateway serves to Prometheus (text format)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            return response.read().decode()


# --------------------------------------------------------------------------
# Chromium over the DevTools protocol


class HeadlessChromium:
    """Headless Chromium; :meth:`open` loads a page and reports what happened."""

    FLAGS = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
        "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
    ]

    def __init__(self, width: int = 1200, height: int = 900):
        self.binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not self.binary:
            raise Unavailable("chromium is not installed: apt-get install chromium (make test does)")
        self.size = (width, height)
        self.profile = tempfile.mkdtemp(prefix="hf-chromium-")
        self.proc = None
        self.port = None

    def start(self) -> "HeadlessChromium":
        log = self.profile + ".log"
        self.proc = _spawn([self.binary, *self.FLAGS, f"--user-data-dir={self.profile}",
                            f"--window-size={self.size[0]},{self.size[1]}", "about:blank"], log)
        active = os.path.join(self.profile, "DevToolsActivePort")
        self.port = int(_wait(lambda: open(active).read().split()[0], "chromium", 60, self.proc, log))
        return self

    def open(self, url: str, script: str, timeout: float = 60.0) -> dict:
        """Loads ``url``; returns the page's console errors and exceptions, the
        URLs it requested, the value of ``script`` and a full-page PNG."""
        from websockets.sync.client import connect

        page = next(t for t in _get_json(f"http://127.0.0.1:{self.port}/json/list") if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout) as ws:
            session = _CdpSession(ws, timeout)
            for domain in ("Runtime", "Log", "Page", "Network"):
                session.call(f"{domain}.enable")
            session.call("Emulation.setDeviceMetricsOverride",
                         {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False})
            session.call("Page.navigate", {"url": url})
            session.wait_for("Page.loadEventFired")
            value = session.call("Runtime.evaluate", {"expression": script, "returnByValue": True})
            metrics = session.call("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            shot = session.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            })
            return {
                "errors": session.errors,
                "requests": session.requests,
                "value": value["result"].get("value"),
                "png": base64.b64decode(shot["data"]),
            }

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.profile, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.profile + ".log")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _CdpSession:
    def __init__(self, ws, timeout: float):
        self._ws = ws
        self._timeout = timeout
        self._next = 0
        self._events: list = []
        self.errors: list[str] = []
        self.requests: list[str] = []

    def _receive(self) -> dict:
        message = json.loads(self._ws.recv(timeout=self._timeout))
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append("log: " + params["entry"]["text"])
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        if method:
            self._events.append(method)
        return message

    def call(self, method: str, params: Optional[dict] = None) -> dict:
        self._next += 1
        self._ws.send(json.dumps({"id": self._next, "method": method, "params": params or {}}))
        while True:
            message = self._receive()
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def wait_for(self, event: str) -> None:
        while event not in self._events:
            self._receive()


# --------------------------------------------------------------------------
# A webhook receiver


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that answers POSTs from a script.

    ``script`` is a list of ``(status, headers)`` answers used in order (the
    last one repeats); each request is recorded in :attr:`requests` as
    ``(time, headers, json body, status answered)``.
    """

    def __init__(self, script=((200, {}),)):
        self.script = list(script)
        self.requests: list[tuple] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status, headers = receiver.script[min(len(receiver.requests), len(receiver.script) - 1)]
                    receiver.requests.append((time.time(), dict(self.headers), json.loads(body), status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def accepted(self) -> list:
        return [body for _, _, body, status in self.requests if status < 300]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class HangingServer:
    """A TCP server on 127.0.0.1 that accepts every connection, reads what the
    client sends and never answers: a webhook that hangs. :attr:`connections`
    counts accepted connections, :attr:`most_at_once` the most that were open
    at one time (a connection closes when the client gives up on it)."""

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list = []
        self._open = 0
        self.connections = 0
        self.most_at_once = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/services/T000/B000/XXXXSECRETTOKEN"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                self._sockets.append(conn)
                self._open += 1
                self.connections += 1
                self.most_at_once = max(self.most_at_once, self._open)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not conn.recv(1 << 16):
                    break  # the client closed it
            except socket.timeout:
                continue
            except OSError:
                break
        with self._lock:
            self._open -= 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        for conn in self._sockets:
            conn.close()
        self._listener.close()
