"""Go-live resync of master data to the MES: how long, how many messages per second,
and whether a run killed halfway goes on to the end writing nothing twice.

Starts Odoo (threaded, queue_job channel root:4, as the demo does) on a database with
mes_base, creates a company of its own with --boms bills of materials of --components
components each (one new finished product and new components per bill: 200 bills of
9 components are 2,000 products) and --workcenters work centers, an MES backend sending
master data to a simulator started here, then runs *Resync master data* and prints:

- how long writing the outbound messages took (the chunks of the run), and how long until
  the MES acknowledged all of them, with the messages per second;
- with --kill-after S: Odoo is killed with -9 S seconds into the run and started again;
  the run goes on by itself (queue_job requeues its job) and the bench checks that every
  record was written once in the run and that the MES holds every one of them.

    python3 bench/bench_master_resync.py                  # 200 bills, 2,000 products
    python3 bench/bench_master_resync.py --kill-after 20

Needs Odoo 18 importable by this Python and PostgreSQL (PGHOST/PGPORT/PGUSER, default
127.0.0.1:5432 postgres). The database (--db) is created on the first run and kept.
"""

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_b2mml_intake import Rpc, ensure_database, free_port, start_odoo

from mes_connector.simulator import SimulatorServer, Store

MES_KEY = "bench-mes-key"


def setup(rpc, run, boms, components, workcenters, sim_url):
    """A company of its own (nothing of earlier runs is in its resync), its plant's
    products, work centers and bills, and its backend sending master data."""
    company = rpc("res.company", "create", {"name": f"Bench master data {run}"})
    admin = rpc("res.users", "search", [("login", "=", "admin")])[0]
    integration = rpc(
        "ir.model.data", "check_object_reference", "mes_base", "user_mes_integration"
    )[1]
    rpc("res.users", "write", [admin, integration], {"company_ids": [(4, company)]})
    context = {"allowed_company_ids": [company]}
    centers = rpc(
        "mrp.workcenter",
        "create",
        [
            {"name": f"WC {run} {i}", "code": f"WC-{run}-{i}", "company_id": company}
            for i in range(workcenters)
        ],
        context=context,
    )
    print(f"Creating {boms * (components + 1):,} products and {boms} bills...", flush=True)
    for start in range(0, boms, 20):
        chunk = range(start, min(start + 20, boms))
        finished = rpc(
            "product.product",
            "create",
            [
                {
                    "name": f"Assembly {run} {b}",
                    "default_code": f"A-{run}-{b}",
                    "is_storable": True,
                    "company_id": company,
                }
                for b in chunk
            ],
            context=context,
        )
        parts = rpc(
            "product.product",
            "create",
            [
                {
                    "name": f"Part {run} {b}-{c}",
                    "default_code": f"P-{run}-{b}-{c}",
                    "is_storable": True,
                    "tracking": "lot" if c == 0 else "none",
                    "company_id": company,
                }
                for b in chunk
                for c in range(components)
            ],
            context=context,
        )
        templates = rpc("product.product", "read", finished, ["product_tmpl_id"])
        rpc(
            "mrp.bom",
            "create",
            [
                {
                    "product_tmpl_id": templates[i]["product_tmpl_id"][0],
                    "company_id": company,
                    "product_qty": 1,
                    "operation_ids": [
                        (
                            0,
                            0,
                            {
                                "name": f"Step {s}",
                                "workcenter_id": centers[(b + s) % len(centers)],
                                "sequence": 10 * (s + 1),
                                "time_cycle_manual": 5 + s,
                            },
                        )
                        for s in range(2)
                    ],
                    "bom_line_ids": [
                        (0, 0, {"product_id": parts[i * components + c], "product_qty": 1 + c})
                        for c in range(components)
                    ],
                }
                for i, b in enumerate(chunk)
            ],
            context=context,
        )
    backend = rpc(
        "mes.backend",
        "create",
        {
            "name": f"Bench MES {run}",
            "code": f"MD-{run}",
            "company_id": company,
            "base_url": sim_url,
            "outbound_api_key": MES_KEY,
            "master_data_enabled": True,
            "export_trigger": "manual",
        },
        context=context,
    )
    return company, backend


def progress(rpc, run_id, company):
    context = {"allowed_company_ids": [company]}
    record = rpc(
        "mes.master.resync",
        "read",
        [run_id],
        [
            "state",
            "planned_count",
            "written_count",
            "skipped_count",
            "delivered_count",
            "to_deliver_count",
            "refused_count",
        ],
        context=context,
    )
    return record[0]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    sys.exit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="mes_bench_master")
    parser.add_argument("--boms", type=int, default=200)
    parser.add_argument("--components", type=int, default=9)
    parser.add_argument("--workcenters", type=int, default=20)
    parser.add_argument("--kill-after", type=float, help="kill Odoo -9 this many seconds in")
    parser.add_argument("--timeout", type=int, default=3600)
    args = parser.parse_args()
    ensure_database(args.db)
    store_path = Path(tempfile.mkstemp(prefix="bench-master-sim-", suffix=".sqlite")[1])
    simulator = SimulatorServer(port=0, store=Store(str(store_path)), api_key=MES_KEY).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.mkstemp(prefix="bench-master-odoo-", suffix=".log")[1])
    run = uuid.uuid4().hex[:5].upper()
    with log_path.open("ab") as log:
        odoo = start_odoo(args.db, port, log)
        try:
            rpc = Rpc(url, args.db)
            company, backend = setup(
                rpc, run, args.boms, args.components, args.workcenters, simulator.url
            )
            context = {"allowed_company_ids": [company]}
            started = time.monotonic()
            action = rpc("mes.backend", "action_resync_master_data", [backend], context=context)
            run_id = action["res_id"]
            planned = progress(rpc, run_id, company)["planned_count"]
            print(f"Resync started: {planned:,} records to write", flush=True)
            if args.kill_after:
                time.sleep(args.kill_after)
                seen = progress(rpc, run_id, company)
                print(
                    f"Killing Odoo -9 after {args.kill_after:.0f} s: {seen['written_count']:,} "
                    f"written, {seen['delivered_count']:,} acknowledged",
                    flush=True,
                )
                odoo.kill()
                odoo.wait(30)
                odoo = start_odoo(args.db, port, log)
                rpc = Rpc(url, args.db)
            state = wait_until(
                lambda: (p := progress(rpc, run_id, company))["state"] == "written" and p,
                args.timeout,
                "the run to write every record",
            )
            written_at = time.monotonic() - started
            final = wait_until(
                lambda: (p := progress(rpc, run_id, company))["to_deliver_count"] == 0 and p,
                args.timeout,
                "the MES to acknowledge every message",
            )
            done = time.monotonic() - started
            messages = final["delivered_count"] + final["refused_count"]
            print(
                f"Written: {state['written_count']:,} records ({state['skipped_count']} "
                f"skipped) in {written_at:.1f} s",
                flush=True,
            )
            print(
                f"Acknowledged: {final['delivered_count']:,} messages, refused "
                f"{final['refused_count']}, in {done:.1f} s: {messages / done:,.1f} messages/s",
                flush=True,
            )
            # Each record once in the run, whatever the kill did.
            twice = rpc(
                "mes.message",
                "read_group",
                [("resync_id", "=", run_id)],
                ["master_data_id"],
                ["master_data_id"],
                context=context,
            )
            repeated = [g for g in twice if g["master_data_id_count"] > 1]
            held = sum(
                len(simulator.store.master_data(kind))
                for kind in ("material", "equipment", "bom", "lot")
            )
            print(
                f"Records written twice in the run: {len(repeated)}; the MES holds {held:,} "
                f"records; deliveries it counted as duplicates: "
                f"{simulator.store.master_data_duplicates()}",
                flush=True,
            )
        finally:
            odoo.terminate()
            odoo.wait(30)
            simulator.stop()
    print(f"Odoo log: {log_path}")


if __name__ == "__main__":
    main()
