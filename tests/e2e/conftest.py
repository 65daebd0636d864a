"""Real servers for end-to-end tests: Odoo with the suite, and the MES simulator.

The database comes from ``MES_E2E_DB`` (an existing database with the suite's addons
and their demo data, as ``tests/run.sh`` prepares it); without it a fresh one is
created for the session and dropped afterwards. Odoo must be importable by the
Python running pytest: these tests fail, never skip, when it is not.
"""

import configparser
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import xmlrpc.client
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
ADDONS = REPO / "addons"
ADMIN = ("admin", "admin")
DB_ARGS = [
    f"--db_host={os.environ.get('PGHOST', '127.0.0.1')}",
    f"--db_port={os.environ.get('PGPORT', '5432')}",
    f"--db_user={os.environ.get('PGUSER', 'postgres')}",
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.5):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _check_odoo():
    probe = subprocess.run(
        [sys.executable, "-c", "import odoo.release as r; print(r.version)"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if probe.returncode:
        pytest.fail(
            "Odoo 18 is not importable by this Python: end-to-end tests need it "
            f"(see README, 'Running the tests').\n{probe.stderr[-500:]}"
        )


class Process:
    """A child process with its output in a file, shown when a test fails."""

    def __init__(self, name, args, env=None, cwd=None):
        self.name = name
        self.args = args
        self.env = env
        self.cwd = cwd
        self.log = Path(tempfile.mkstemp(prefix=f"mes-e2e-{name}-", suffix=".log")[1])
        self.popen = None

    def start(self):
        handle = self.log.open("ab")
        # A session of its own: kill() takes the process and every child it started.
        self.popen = subprocess.Popen(
            self.args,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        return self

    def kill(self):
        """SIGKILL to the process and its children at once, as a crash or the OOM killer."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self):
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def tail(self, lines=60):
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@pytest.fixture(scope="session")
def odoo_db():
    _check_odoo()
    given = os.environ.get("MES_E2E_DB")
    if given:
        yield given
        return
    name = f"mes_e2e_{uuid.uuid4().hex[:8]}"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            *DB_ARGS,
            f"--addons-path={ADDONS}",
            "-d",
            name,
            "-i",
            "mes_base,mes_reconciliation,mes_maintenance,mes_quality",
            "--stop-after-init",
            "--log-level=warn",
            "--http-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if install.returncode:
        pytest.fail(
            f"could not create database {name}:\n{install.stdout[-3000:]}{install.stderr[-3000:]}"
        )
    yield name
    subprocess.run([sys.executable, "-m", "odoo", "db", "--help"], capture_output=True, cwd="/")
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name], check=False
    )


def _healthy(process, url, path):
    """A predicate for ``wait_for``: the server answers ``path``; fails if it exited."""

    def check():
        if process.popen.poll() is not None:
            pytest.fail(f"{process.name} exited:\n{process.tail()}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{url}{path}", timeout=2).status_code == 200
        return False

    return check


class OdooRpc:
    def __init__(self, url, db):
        self.url = url
        self.db = db
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        self.uid = common.authenticate(db, *ADMIN, {})
        self.proxy = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def __call__(self, model, method, *args, **kwargs):
        return self.proxy.execute_kw(self.db, self.uid, ADMIN[1], model, method, list(args), kwargs)

    def read_one(self, model, record_id, fields):
        return self(model, "read", [record_id], fields)[0]


@pytest.fixture(scope="session")
def odoo(odoo_db, tmp_path_factory):
    port = free_port()
    conf = tmp_path_factory.mktemp("odoo") / "odoo.conf"
    # Odoo reads no section of a file without [options]: queue_job would run one job
    # at a time.
    conf.write_text("[options]\n[queue_job]\nchannels = root:4\n")
    process = Process(
        "odoo",
        [
            sys.executable,
            "-m",
            "odoo",
            "-c",
            str(conf),
            *DB_ARGS,
            f"--addons-path={ADDONS}",
            "-d",
            odoo_db,
            "--http-interface=127.0.0.1",
            f"--http-port={port}",
            "--gevent-port",
            str(free_port()),
            "--workers=0",
            "--load=base,web,queue_job",
            "--log-level=info",
            "--max-cron-threads=0",
        ],
        cwd="/",
    ).start()
    url = f"http://127.0.0.1:{port}"
    wait_for(_healthy(process, url, "/web/health"), 120, "Odoo to answer /web/health")
    rpc = OdooRpc(url, odoo_db)
    rpc.process = process
    yield rpc
    process.stop()


@pytest.fixture(scope="module")
def production(odoo_db, tmp_path_factory):
    """Odoo deployed as the README and ``docker-compose.yml`` deploy it, on 127.0.0.1.

    The repository's ``odoo.conf`` (worker processes, time limits, proxy mode, queue
    channels) with this machine's paths and database, behind nginx running the
    configuration written in ``docker-compose.yml``, with only its addresses changed.
    Yields an ``OdooRpc`` whose ``url`` is nginx's.
    """
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: the deployment test needs it (apt-get install nginx)")
    workdir = tmp_path_factory.mktemp("production")
    http_port, gevent_port, proxy_port = free_port(), free_port(), free_port()

    conf = configparser.ConfigParser()
    conf.read(REPO / "odoo.conf")
    options = conf["options"]
    for docker_only in ("data_dir", "db_password"):
        options.pop(docker_only, None)
    options.update(
        addons_path=str(ADDONS),
        db_host=os.environ.get("PGHOST", "127.0.0.1"),
        db_port=os.environ.get("PGPORT", "5432"),
        db_user=os.environ.get("PGUSER", "postgres"),
        db_name=odoo_db,
        http_interface="127.0.0.1",
        http_port=str(http_port),
        gevent_port=str(gevent_port),
        log_level="info",
    )
    odoo_conf = workdir / "odoo.conf"
    with odoo_conf.open("w") as handle:
        conf.write(handle)
    server = Process(
        "odoo-workers",
        [sys.executable, str(Path(__file__).with_name("odoo_server.py")), "-c", str(odoo_conf)],
        cwd="/",
    ).start()

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    nginx_conf = compose["configs"]["nginx_conf"]["content"].replace("$$", "$")
    for written, here in (
        ("127.0.0.1:8069;", f"127.0.0.1:{http_port};"),
        ("127.0.0.1:8072;", f"127.0.0.1:{gevent_port};"),
        ("listen 8080 ", f"listen 127.0.0.1:{proxy_port} "),
    ):
        assert written in nginx_conf, f"docker-compose.yml's nginx configuration lacks {written!r}"
        nginx_conf = nginx_conf.replace(written, here)
    (workdir / "nginx.conf").write_text(nginx_conf)
    directives = f"daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx-error.log;"
    proxy = Process(
        "nginx", [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", directives]
    ).start()
    url = f"http://127.0.0.1:{proxy_port}"
    direct_url = f"http://127.0.0.1:{http_port}"

    def crash_and_restart():
        """Odoo killed with -9 (master, workers, job runner at once), then started again."""
        server.kill()
        server.start()
        wait_for(_healthy(server, direct_url, "/web/health"), 120, "Odoo to start again")

    try:
        wait_for(_healthy(server, direct_url, "/web/health"), 120, "Odoo")
        wait_for(_healthy(proxy, url, "/web/health"), 30, "nginx to reach Odoo")
        rpc = OdooRpc(url, odoo_db)
        rpc.process = server
        rpc.proxy_process = proxy
        rpc.direct_url = direct_url
        rpc.crash_and_restart = crash_and_restart
        yield rpc
    finally:
        proxy.stop()
        server.stop()


class Simulator:
    """The simulator as a separate process, stoppable and restartable on one SQLite file."""

    def __init__(self, odoo_url, backend_code, mes_key, odoo_key, workdir, options=()):
        """With ``odoo_url`` the simulator pushes its events; without, Odoo pulls them.
        ``options``: more command-line options (``--report b2mml-bod``)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mes_key = mes_key
        env = dict(os.environ, MES_SIMULATOR_API_KEY=mes_key, MES_ODOO_API_KEY=odoo_key or "")
        push = ["--odoo-url", odoo_url, "--backend", backend_code] if odoo_url else []
        self.process = Process(
            "simulator",
            [
                sys.executable,
                "-m",
                "mes_connector.simulator",
                "--port",
                str(self.port),
                "--db",
                str(workdir / "simulator.sqlite"),
                *push,
                # Event ids stay unique when tests reuse a database.
                "--id-prefix",
                f"SIM{uuid.uuid4().hex[:6].upper()}",
                # The demo plant's lots of its lot-tracked components.
                "--lots",
                "PH-10=PH-2611-A,PH-2611-B",
                "--lots",
                "MB-41=MB-2611-A,MB-2611-B",
                *options,
            ],
            env=env,
            cwd=str(REPO),
        )

    def start(self):
        self.process.start()
        wait_for(self._healthy, 30, "the simulator to start")
        return self

    def _healthy(self):
        if self.process.popen.poll() is not None:
            pytest.fail(f"simulator exited:\n{self.process.tail()}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.url}/api/v1/health", timeout=2).ok
        return False

    def stop(self):
        self.process.stop()

    def get(self, path):
        response = requests.get(
            f"{self.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.mes_key}"},
            timeout=10,
        )
        return response.json() if response.status_code == 200 else None

    def post(self, path, body=None):
        response = requests.post(
            f"{self.url}/api/v1{path}",
            json=body or {},
            headers={"Authorization": f"Bearer {self.mes_key}"},
            timeout=10,
        )
        assert response.ok, f"simulator answered {response.status_code}: {response.text}"
        return response.json()


def new_inbound_key(rpc, backend_id):
    """A new inbound key of the backend, put in use as a manager does: the dialog shows
    it (it exists in clear only in that answer), then *Use this key*."""
    action = rpc("mes.backend", "action_generate_inbound_key", [backend_id])
    rpc("mes.backend.key.wizard", "action_use", [action["res_id"]], context=action["context"])
    return action["context"]["mes_new_inbound_key"]


@pytest.fixture(scope="session")
def plant(odoo, tmp_path_factory):
    """The demo plant wired to a simulator of its own: returns (rpc, simulator, inbound key)."""
    mes_key = uuid.uuid4().hex
    backend_id = odoo("mes.backend", "search", [("code", "=", "SIM")])[0]
    inbound_key = new_inbound_key(odoo, backend_id)
    simulator = Simulator(odoo.url, "SIM", mes_key, inbound_key, tmp_path_factory.mktemp("sim"))
    # A new MES address takes the key with it (changing the URL alone clears the stored key).
    odoo(
        "mes.backend",
        "write",
        [backend_id],
        {"base_url": simulator.url, "outbound_api_key_input": mes_key, "timeout_connect": 2},
    )
    simulator.start()
    yield odoo, simulator, inbound_key
    simulator.stop()


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for name in ("odoo", "plant"):
            if name in request.fixturenames:
                value = request.getfixturevalue(name)
                rpc = value[0] if isinstance(value, tuple) else value
                print(f"\n--- odoo log ---\n{rpc.process.tail(120)}")
                if isinstance(value, tuple):
                    print(f"\n--- simulator log ---\n{value[1].process.tail(60)}")
                break


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
