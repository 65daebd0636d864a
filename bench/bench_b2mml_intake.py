"""How long a large B2MML ProductionPerformance takes to be stored, then processed.

Starts Odoo (threaded, queue_job channel root:4, as the demo does) on a database with
mes_base, creates --orders confirmed orders of a bench product and one MES backend,
POSTs one ProductionPerformance document with --events events (component consumption
reported by the MES, spread over the orders, plus one operation report per order) to
the intake, and prints:

- the size of the document and how long the answer took (everything stored by then);
- how long until every event was posted (or failed), and the events per second.

    python3 bench/bench_b2mml_intake.py                       # 25,000 events, 50 orders
    python3 bench/bench_b2mml_intake.py --events 2000 --orders 10

Needs Odoo 18 importable by this Python and PostgreSQL (PGHOST/PGPORT/PGUSER, default
127.0.0.1:5432 postgres). The database (--db) is created on the first run and kept.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
PG = [
    f"--db_host={os.environ.get('PGHOST', '127.0.0.1')}",
    f"--db_port={os.environ.get('PGPORT', '5432')}",
    f"--db_user={os.environ.get('PGUSER', 'postgres')}",
]
NAMESPACE = "http://www.mesa.org/xml/B2MML-V0600"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def odoo_command(db, *extra):
    return [
        sys.executable,
        "-m",
        "odoo",
        *PG,
        f"--addons-path={REPO / 'addons'}",
        "-d",
        db,
        *extra,
    ]


def ensure_database(db):
    probe = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", "select 1"],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return
    print(f"Creating database {db} with mes_base (about two minutes)...", flush=True)
    subprocess.run(
        odoo_command(
            db, "-i", "mes_base", "--stop-after-init", "--log-level=warn", "--http-port=0"
        ),
        check=True,
        cwd="/",
    )


def start_odoo(db, port, log, workers=0, load="base,web,queue_job"):
    """Odoo with queue_job's runner (channel root:4; unless ``load`` leaves queue_job
    out): threaded, or with ``workers`` processes as in production (then started as
    ``odoo-bin`` is, see tests/e2e/odoo_server.py)."""
    conf = Path(tempfile.mkstemp(suffix=".conf")[1])
    # Odoo reads no section of a file without [options]: queue_job would run one job
    # at a time.
    conf.write_text("[options]\n[queue_job]\nchannels = root:4\n")
    command = odoo_command(
        db,
        "-c",
        str(conf),
        "--http-interface=127.0.0.1",
        f"--http-port={port}",
        f"--gevent-port={free_port()}",
        f"--workers={workers}",
        f"--load={load}",
        "--max-cron-threads=0",
        "--log-level=warn",
        "--limit-time-real=120",
    )
    if workers:
        command[1:3] = [str(REPO / "tests" / "e2e" / "odoo_server.py")]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd="/")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/web/health", timeout=2).ok:
                return process
        except requests.RequestException:
            time.sleep(1)
    process.kill()
    sys.exit("Odoo did not start; see its log")


class Rpc:
    """Odoo's JSON-RPC as admin (methods may return None, which XML-RPC cannot carry)."""

    def __init__(self, url, db):
        self.url, self.db = f"{url}/jsonrpc", db
        self.uid = self._call("common", "authenticate", db, "admin", "admin", {})

    def _call(self, service, method, *args):
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": list(args)},
        }
        answer = requests.post(self.url, json=payload, timeout=600).json()
        if "error" in answer:
            sys.exit(f"Odoo refused {method}: {answer['error']['data']['message']}")
        return answer.get("result")

    def __call__(self, model, method, *args, **kwargs):
        return self._call(
            "object", "execute_kw", self.db, self.uid, "admin", model, method, list(args), kwargs
        )


def setup_plant(rpc, run, orders, per_order):
    """A work center, a component with stock, a product with a one-step BOM, confirmed
    orders, and a backend whose MES reports consumption."""
    workcenter = rpc("mrp.workcenter", "create", {"name": f"Bench {run}", "code": f"B{run}"})
    component = rpc(
        "product.product",
        "create",
        {"name": f"Bench part {run}", "default_code": f"P{run[:4]}", "is_storable": True},
    )
    product = rpc(
        "product.product",
        "create",
        {"name": f"Bench product {run}", "default_code": f"BF-{run}", "is_storable": True},
    )
    location = rpc("stock.warehouse", "search_read", [], ["lot_stock_id"], limit=1)[0]
    rpc(
        "stock.quant",
        "create",
        {
            "product_id": component,
            "location_id": location["lot_stock_id"][0],
            "inventory_quantity": orders * per_order * 2,
        },
    )
    quant = rpc("stock.quant", "search", [("product_id", "=", component)])
    rpc("stock.quant", "action_apply_inventory", quant)
    template = rpc("product.product", "read", [product], ["product_tmpl_id"])[0]
    rpc(
        "mrp.bom",
        "create",
        {
            "product_tmpl_id": template["product_tmpl_id"][0],
            "product_qty": 1,
            "consumption": "flexible",
            "operation_ids": [
                (0, 0, {"name": "Make", "workcenter_id": workcenter, "sequence": 10})
            ],
            "bom_line_ids": [(0, 0, {"product_id": component, "product_qty": 1})],
        },
    )
    backend = rpc(
        "mes.backend",
        "create",
        {
            "name": f"Bench MES {run}",
            "code": f"BENCH-{run}",
            "base_url": "http://127.0.0.1:9",
            "export_trigger": "manual",
            "consumption_owner": "mes",
        },
    )
    # A new key is in use once the manager clicks Use this key in its dialog.
    action = rpc("mes.backend", "action_generate_inbound_key", [backend])
    rpc("mes.backend.key.wizard", "action_use", [action["res_id"]], context=action["context"])
    key = action["context"]["mes_new_inbound_key"]
    names = []
    for _i in range(orders):
        production = rpc(
            "mrp.production", "create", {"product_id": product, "product_qty": per_order}
        )
        rpc("mrp.production", "action_confirm", [production])
        names.append(rpc("mrp.production", "read", [production], ["name"])[0]["name"])
    return backend, key, f"P{run[:4]}", names


def document(run, component, names, per_order):
    material = (
        f"<MaterialActual><MaterialDefinitionID>{component}</MaterialDefinitionID>"
        "<MaterialUse>Consumed</MaterialUse><Quantity><QuantityString>1</QuantityString>"
        "<UnitOfMeasure>Units</UnitOfMeasure></Quantity></MaterialActual>"
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?><ProductionPerformance xmlns="{NAMESPACE}">'
        f"<ID>BENCH-{run}</ID><PublishedDate>{now}</PublishedDate>"
    ]
    for index, name in enumerate(names):
        parts.append(
            f"<ProductionResponse><ID>R{index}</ID><ProductionRequestID>{name}"
            f"</ProductionRequestID><SegmentResponse><ID>S1</ID>"
            "<ProcessSegmentID>10</ProcessSegmentID>" + material * per_order
        )
        # The operation's own report: it is running.
        parts.append("<SegmentState>Running</SegmentState></SegmentResponse></ProductionResponse>")
    parts.append("</ProductionPerformance>")
    return "".join(parts).encode()


def states(rpc, backend):
    groups = rpc(
        "mes.message",
        "read_group",
        [("backend_id", "=", backend), ("parent_id", "!=", False)],
        ["state"],
        ["state"],
    )
    return {group["state"]: group["state_count"] for group in groups}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="mes_bench_b2mml")
    parser.add_argument("--events", type=int, default=25_000)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--timeout", type=int, default=7200, help="seconds to wait for posting")
    args = parser.parse_args()
    ensure_database(args.db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.mkstemp(prefix="bench-b2mml-odoo-", suffix=".log")[1])
    with log_path.open("ab") as log:
        odoo = start_odoo(args.db, port, log)
        try:
            rpc = Rpc(url, args.db)
            run = uuid.uuid4().hex[:6].upper()
            per_order = max(1, args.events // args.orders - 1)
            print(f"Setting up {args.orders} orders...", flush=True)
            backend, key, component, names = setup_plant(rpc, run, args.orders, per_order)
            body = document(run, component, names, per_order)
            if len(body) > 5 * 1024 * 1024:
                sys.exit(f"the document is {len(body):,} bytes, over the 5 MB limit: fewer events")
            expected = args.orders * (per_order + 1)
            print(f"Document: {len(body):,} bytes, {expected:,} events", flush=True)
            started = time.monotonic()
            response = requests.post(
                f"{url}/mes/api/v1/BENCH-{run}/events",
                data=body,
                headers={"Content-Type": "application/xml", "Authorization": f"Bearer {key}"},
                timeout=600,
            )
            stored = time.monotonic() - started
            answer = response.json()
            results = answer.get("results", [])
            print(
                f"Stored: HTTP {response.status_code} {answer.get('status')} in {stored:.1f} s, "
                f"{len(results):,} events answered ({len(results) / stored:,.0f} events/s)",
                flush=True,
            )
            counts = {}
            while time.monotonic() - started < args.timeout:
                counts = states(rpc, backend)
                if not counts.get("received") and not counts.get("waiting"):
                    break
                time.sleep(5)
            done = time.monotonic() - started
            print(
                f"Processed: {counts} after {done:.0f} s "
                f"({sum(counts.values()) / done:,.1f} events/s end to end)",
                flush=True,
            )
        finally:
            odoo.terminate()
            odoo.wait(30)
    print(f"Odoo log: {log_path}")


if __name__ == "__main__":
    main()
