"""Screenshots of each MES dashboard and of the reconciliation, on the demo plant.

Creates a database with the suite and its demo data, starts Odoo and the MES
simulator on 127.0.0.1, runs a small shift through them (orders confirmed and run by
the simulator, plus a few events Odoo cannot post: an unmapped product, a lot it does
not know, a report on a finished order), then opens each screen in Debian's chromium
as admin and saves a PNG of it.

    python3 scripts/screenshots.py                 # PNGs in ./screenshots/
    python3 scripts/screenshots.py --out /tmp/shots --keep-db

Needs Odoo 18 importable by this Python, PostgreSQL (PG* variables, default
127.0.0.1:5432 postgres), chromium (/usr/bin/chromium) and the Python package
playwright (pip install playwright; its own browsers are not needed).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
PG = [
    f"--db_host={os.environ.get('PGHOST', '127.0.0.1')}",
    f"--db_port={os.environ.get('PGPORT', '5432')}",
    f"--db_user={os.environ.get('PGUSER', 'postgres')}",
]
INBOUND_KEY = "demo-mes-to-odoo-key"  # the demo backend's keys (demo data only)
OUTBOUND_KEY = "demo-odoo-to-mes-key"
# (file name, path under /odoo/, element to wait for)
SCREENS = [
    (
        "01-planner-exceptions",
        "action-mes_base.mes_dashboard_planner_action",
        ".o_mes_section_causes",
    ),
    (
        "02-stock-exceptions",
        "action-mes_base.mes_dashboard_warehouse_action",
        ".o_mes_section_unknown_lots",
    ),
    (
        "03-integration-health",
        "action-mes_base.mes_dashboard_health_action",
        ".o_mes_section_traffic",
    ),
    (
        "03b-shop-floor",
        "action-mes_base.mes_dashboard_shopfloor_action",
        ".o_mes_section_availability",
    ),
    ("04-error-causes", "action-mes_base.mes_error_cause_action", ".o_list_view"),
    ("05-messages", "action-mes_base.mes_message_action", ".o_list_view"),
    ("06-reconciliation", "action-mes_reconciliation.mes_reconciliation_action", ".o_list_view"),
    (
        "07-reconciliation-analysis",
        "action-mes_reconciliation.mes_reconciliation_line_action",
        ".o_pivot",
    ),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def odoo_cmd(db, *extra):
    return [sys.executable, "-m", "odoo", *PG, f"--addons-path={REPO / 'addons'}", "-d", db, *extra]


class Plant:
    def __init__(self, url, db):
        self.url, self.db = url, db
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        self.uid = common.authenticate(db, "admin", "admin", {})
        self.rpc = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def __call__(self, model, method, *args, **kwargs):
        return self.rpc.execute_kw(self.db, self.uid, "admin", model, method, list(args), kwargs)

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        return self("ir.model.data", "check_object_reference", module, name)[1]

    def send_event(self, event):
        response = requests.post(
            f"{self.url}/mes/api/v1/SIM/events",
            json=event,
            headers={"Authorization": f"Bearer {INBOUND_KEY}"},
            timeout=10,
        )
        response.raise_for_status()


def run_shift(plant):
    """Orders run by the simulator, and three of them with reports Odoo cannot post."""
    # Go-live: the MES gets its master data first (a resync), then every order.
    backend = plant.ref("mes_base.backend_simulator")
    plant("mes.backend", "write", [backend], {"master_data_enabled": True})
    resync = plant("mes.backend", "action_resync_master_data", [backend])["res_id"]

    def resynced():
        run = plant("mes.master.resync", "read", [resync], ["state", "to_deliver_count"])[0]
        return run["state"] == "written" and run["to_deliver_count"] == 0

    wait(resynced, 120, "the master data resync")
    products = ["mes_base.product_gp100", "mes_base.product_va200", "mes_base.product_cb300"]
    orders = []
    for index in range(9):
        product = plant.ref(products[index % 3])
        orders.append(
            plant("mrp.production", "create", {"product_id": product, "product_qty": 2 + index % 3})
        )
    for order in orders:
        plant("mrp.production", "action_confirm", [order])
    names = {o["id"]: o["name"] for o in plant("mrp.production", "read", orders, ["name"])}
    now = datetime.now(UTC).isoformat()
    stuck = orders[:3]
    # stuck[0] makes GP-100, whose bill of materials holds the lot-tracked PH-10.
    faults = [
        (
            "material_consumed",
            {"product": "PH-10", "quantity": 1, "uom": "Units", "lot": "PH-2611-Z"},
        ),
        ("material_consumed", {"product": "MES-4711", "quantity": 3, "uom": "Units"}),
        ("material_consumed", {"product": "MES-4711", "quantity": 1, "uom": "Units"}),
    ]
    for number, (order, (event_type, data)) in enumerate(zip(stuck, faults, strict=True)):
        plant.send_event(
            {
                "schema": "mes.event/1",
                "event_id": f"SHOT-{number}",
                "event_type": event_type,
                "order_ref": names[order],
                "sequence": 0,
                "occurred_at": now,
                "data": data,
            }
        )
    wait(
        lambda: (
            plant(
                "mrp.production", "search_count", [("id", "in", orders[3:]), ("state", "=", "done")]
            )
            == len(orders) - 3
        ),
        240,
        "the simulator to run the orders",
    )
    # The MES reports once more on a finished order.
    plant.send_event(
        {
            "schema": "mes.event/1",
            "event_id": "SHOT-LATE",
            "event_type": "scrap_reported",
            "order_ref": names[orders[3]],
            "sequence": 999,
            "occurred_at": now,
            "data": {"product": "SCR-M6", "quantity": 2, "uom": "Units", "reason": "DMG"},
        }
    )
    time.sleep(5)
    for cron in (
        "mes_base.ir_cron_mes_error_causes",
        "mes_reconciliation.ir_cron_mes_reconciliation_refresh",
    ):
        plant("ir.cron", "method_direct_trigger", [plant.ref(cron)])
    today = datetime.now(UTC).date()
    close = plant(
        "mes.period.close",
        "create",
        {"date_from": today.replace(day=1).isoformat(), "date_to": today.isoformat()},
    )
    plant("mes.period.close", "action_run_checks", [close])
    reconciliation = plant(
        "mes.reconciliation", "search", [("production_id", "in", orders[3:])], limit=1
    )
    waiting = plant("mes.message", "search", [("external_id", "=", "SHOT-0")], limit=1)
    return {
        "close": close,
        "reconciliation": reconciliation[0] if reconciliation else None,
        # The order whose reports wait behind a lot Odoo does not know, and that report.
        "held_up_order": stuck[0],
        "waiting_message": waiting[0] if waiting else None,
        "backend": backend,
        "resync": resync,
        "timezone": plant("res.users", "search_read", [("login", "=", "admin")], ["tz"])[0]["tz"]
        or "UTC",
    }


def shoot(url, out, shift):
    from playwright.sync_api import sync_playwright

    screens = list(SCREENS)
    if shift["reconciliation"]:
        screens.append(
            (
                "08-reconciliation-order",
                f"mes.reconciliation/{shift['reconciliation']}",
                ".o_form_view",
            )
        )
    screens.append(("09-month-end", f"mes.period.close/{shift['close']}", ".o_form_view"))
    screens.append(
        (
            "10-order-held-up",
            f"action-mrp.mrp_production_action/{shift['held_up_order']}",
            ".o_form_view .alert-warning",
        )
    )
    if shift["waiting_message"]:
        screens.append(
            ("11-message-waiting", f"mes.message/{shift['waiting_message']}", ".o_form_view")
        )
    screens.append(("12-mes-backend", f"mes.backend/{shift['backend']}", ".o_form_view"))
    screens.append(("15-master-data", "action-mes_base.mes_master_data_action", ".o_list_view"))
    screens.append(
        ("16-master-data-resync", f"mes.master.resync/{shift['resync']}", ".o_form_view")
    )
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium")
        )
        # A browser in the admin's zone, as a person's is: the web client shows times in
        # the browser's zone, the server's texts in the user's.
        page = browser.new_page(
            viewport={"width": 1440, "height": 1000}, timezone_id=shift["timezone"]
        )
        page.goto(f"{url}/web/login")
        page.fill("input[name=login]", "admin")
        page.fill("input[name=password]", "admin")
        page.click("button[type=submit]")
        page.wait_for_selector(".o_main_navbar")
        for name, path, ready in screens:
            page.goto(f"{url}/odoo/{path}")
            page.wait_for_selector(ready, timeout=30000)
            page.wait_for_timeout(800)
            file = out / f"{name}.png"
            page.screenshot(path=str(file), full_page=True)
            print(file)
        for name, steps in clicks(shift):
            for path, selector in steps:
                if path:
                    page.goto(f"{url}/odoo/{path}")
                page.wait_for_selector(selector, timeout=30000)
                page.click(selector)
            page.wait_for_selector(".modal .o_form_view, .o_form_view", timeout=30000)
            page.wait_for_timeout(800)
            file = out / f"{name}.png"
            page.screenshot(path=str(file), full_page=True)
            print(file)
        browser.close()


def clicks(shift):
    """Screens reached by clicks: (name, [(path to open or None, element to click)])."""
    return [
        (
            "13-mapping-from-dashboard",
            [
                (
                    "action-mes_base.mes_dashboard_planner_action",
                    ".o_mes_section_causes a.o_mes_cell_link:has-text('Map MES-4711')",
                )
            ],
        ),
        (
            "14-new-inbound-key",
            [
                (
                    f"mes.backend/{shift['backend']}",
                    "button[name=action_generate_inbound_key]",
                ),
                (None, ".modal-footer .btn-primary"),
            ],
        ),
    ]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO / "screenshots"))
    parser.add_argument("--db", default="mes_screenshots")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    pg_env = {
        **os.environ,
        "PGHOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PGPORT": os.environ.get("PGPORT", "5432"),
        "PGUSER": os.environ.get("PGUSER", "postgres"),
    }
    subprocess.run(["dropdb", "--if-exists", args.db], check=True, env=pg_env)
    print(f"Creating {args.db} with the demo plant...", flush=True)
    subprocess.run(
        odoo_cmd(
            args.db,
            "-i",
            "mes_base,mes_reconciliation,mes_maintenance,mes_quality",
            "--stop-after-init",
            "--log-level=warn",
            "--http-port=0",
        ),
        check=True,
        cwd="/",
    )
    odoo_port, sim_port = free_port(), free_port()
    url = f"http://127.0.0.1:{odoo_port}"
    state = tempfile.mkdtemp(prefix="mes-shots-")
    env = {
        **pg_env,
        "ODOO_QUEUE_JOB_CHANNELS": "root:2",
        "MES_SIMULATOR_API_KEY": OUTBOUND_KEY,
        "MES_ODOO_API_KEY": INBOUND_KEY,
    }
    odoo = subprocess.Popen(
        odoo_cmd(
            args.db,
            "--http-interface=127.0.0.1",
            f"--http-port={odoo_port}",
            "--load=base,web,queue_job",
            "--workers=0",
            "--log-level=warn",
            f"--data-dir={state}",
        ),
        cwd="/",
        env=env,
    )
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mes_connector.simulator",
            "--port",
            str(sim_port),
            "--db",
            f"{state}/simulator.sqlite",
            "--odoo-url",
            url,
            "--backend",
            "SIM",
            "--auto-complete",
            "3",
            "--lots",
            "PH-10=PH-2611-A,PH-2611-B",
            "--log-level",
            "WARNING",
        ],
        env=env,
    )
    try:
        wait(lambda: _up(f"{url}/web/login"), 120, "Odoo")
        plant = Plant(url, args.db)
        plant(
            "mes.backend",
            "write",
            [plant.ref("mes_base.backend_simulator")],
            {"base_url": f"http://127.0.0.1:{sim_port}", "outbound_api_key_input": OUTBOUND_KEY},
        )
        shoot(url, Path(args.out), run_shift(plant))
    finally:
        for process in (simulator, odoo):
            process.terminate()
            process.wait(timeout=30)
        if not args.keep_db:
            subprocess.run(["dropdb", "--if-exists", args.db], check=False, env=pg_env)
    print(json.dumps({"screenshots": args.out}))


def _up(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
