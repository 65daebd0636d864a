"""Fixtures of the mes_connector suite: the MES simulator, a fake Odoo and a stub HTTP server.

Every server listens on 127.0.0.1 on a free port and is stopped when its test ends.
"""

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from orders import order_document

from mes_connector.client import MesClient
from mes_connector.simulator import SimulatorServer, Store

SIM_API_KEY = "sim-key-7d41c9e2b5a8"
ODOO_API_KEY = "odoo-key-3f0a6b19c2d4"
BACKEND_CODE = "SIM"


class _FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_GET(self):
        self.server.fake.handle(self, "GET")

    def do_POST(self):
        self.server.fake.handle(self, "POST")


class FakeHttpServer:
    """A tiny HTTP server that records every request and answers as it is told.

    By default it plays Odoo's event intake: it answers a POSTed ``{"events": [...]}``
    with ``{"results": [{"status": "accepted"}, ...]}``, one result per event.
    Set ``status`` (e.g. 503), ``body`` (any JSON, or ``bytes`` sent as they are),
    ``headers`` or ``delay`` (seconds before answering) to make it misbehave.
    """

    def __init__(self, port=0):
        self.status = 200
        self.body = None
        self.headers = {}
        self.delay = 0.0
        self.requests = []  # every request: {"method", "path", "headers", "json", "status"}
        self.received = []  # events of the batches answered with 200
        self._lock = threading.Lock()
        self._release = threading.Event()  # ends pending delays when the server stops
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _FakeHandler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self
        self._thread = None
        self.stopped = False

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def batches(self):
        """The event lists of the POSTs answered with 200, in order."""
        with self._lock:
            return [
                r["json"]["events"]
                for r in self.requests
                if r["status"] == 200 and isinstance(r["json"], dict) and "events" in r["json"]
            ]

    def start(self):
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw
        status, body = self.status, self.body
        if status == 200 and body is None:
            events = decoded.get("events", []) if isinstance(decoded, dict) else []
            body = {"results": [{"status": "accepted"} for _event in events]}
            with self._lock:
                self.received.extend(events)
        elif body is None:
            body = {"error": f"fake server answers {status}"}
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": handler.path,
                    "headers": dict(handler.headers),
                    "json": decoded,
                    "status": status,
                }
            )
        if self.delay:
            self._release.wait(self.delay)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in self.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout test)


def _wait_for(predicate, timeout=5.0, interval=0.01):
    """Poll ``predicate`` until it returns something truthy; return that, fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def sim_api_key():
    """The key the ``simulator`` fixtures require from Odoo."""
    return SIM_API_KEY


@pytest.fixture
def odoo_api_key():
    """The key the ``pushing_simulator`` sends to the fake Odoo."""
    return ODOO_API_KEY


@pytest.fixture
def wait_for():
    """``wait_for(predicate, timeout=5)``: poll until truthy, fail at the deadline."""
    return _wait_for


@pytest.fixture
def make_fake_server():
    """Factory: ``make_fake_server(port=0)`` starts a :class:`FakeHttpServer`."""
    started = []

    def make(port=0):
        server = FakeHttpServer(port).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def fake_odoo(make_fake_server):
    """A fake Odoo event intake (see :class:`FakeHttpServer`), started."""
    return make_fake_server()


@pytest.fixture
def stub_server(make_fake_server):
    """A scripted HTTP server for client error cases (set status/body/headers/delay)."""
    return make_fake_server()


@pytest.fixture
def make_simulator():
    """Factory: start a :class:`SimulatorServer` on 127.0.0.1:0; everything is stopped at the end.

    Defaults: an in-memory store and ``SIM_API_KEY``; keyword arguments override them.
    """
    started = []

    def make(**kwargs):
        kwargs.setdefault("store", Store(":memory:"))
        kwargs.setdefault("api_key", SIM_API_KEY)
        sim = SimulatorServer(host="127.0.0.1", port=0, **kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in reversed(started):
        _stop_simulator(sim)
        sim.store.close()


def _stop_simulator(sim):
    """``sim.stop()``, without waiting out the 0.5 s poll of ``serve_forever``.

    ``shutdown()`` is only noticed when the server's select() returns, so while it
    runs we open empty connections to wake it up.
    """
    address = sim.httpd.server_address[:2]
    stopper = threading.Thread(target=sim.stop, daemon=True)
    stopper.start()
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=0.2).close()
        stopper.join(0.02)


@pytest.fixture
def stop_simulator():
    """``stop_simulator(sim)``: stop a simulator in the middle of a test, quickly."""
    return _stop_simulator


@pytest.fixture
def simulator(make_simulator):
    """A running simulator with an in-memory store, no Odoo to push to."""
    return make_simulator()


@pytest.fixture
def pushing_simulator(make_simulator, fake_odoo):
    """A running simulator whose background worker pushes events to ``fake_odoo``."""
    return make_simulator(
        odoo_url=fake_odoo.url,
        backend_code=BACKEND_CODE,
        odoo_api_key=ODOO_API_KEY,
        push_interval=0.05,
    )


@pytest.fixture
def mes_client(simulator):
    """A :class:`MesClient` with the right key for ``simulator``."""
    client = MesClient(simulator.url, api_key=SIM_API_KEY, timeout=(2.0, 5.0))
    yield client
    client.session.close()


@pytest.fixture
def make_order():
    """Factory of valid order documents (dicts): ``make_order(order_id=..., revision=..., ...)``."""

    def make(order_id="WH/MO/00001", revision=1, **overrides):
        return order_document(order_id=order_id, revision=revision, **overrides)

    return make


@pytest.fixture
def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
