"""Server time of the MES dashboards and reconciliation queries on a large database.

Creates (or reuses, with --reuse) a database with mes_base and mes_reconciliation,
fills it in SQL with --orders manufacturing orders (each with its reconciliation and
six reconciliation lines) and --messages MES messages spread over 90 days (mostly
processed, some in error, waiting, received or pending, like a plant's history), then
prints the time the server spends on each dashboard, each of its sections, and each
reconciliation query, as the median of --repeat runs.

    python3 bench/bench_dashboards.py                       # 1,000,000 messages, 10,000 orders
    python3 bench/bench_dashboards.py --messages 100000 --orders 1000 --db mes_bench_small

Needs Odoo 18 importable by this Python and PostgreSQL (PGHOST/PGPORT/PGUSER, default
127.0.0.1:5432 postgres). The database is kept afterwards unless --drop is given.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
}
GOAL_SECONDS = 1.0

# (message type, share of inbound messages)
TYPES = [
    ("material_consumed", 40),
    ("operation_progress", 20),
    ("operation_completed", 10),
    ("output_produced", 10),
    ("scrap_reported", 5),
    ("order_started", 5),
    ("order_completed", 5),
    ("downtime_started", 3),
    ("downtime_ended", 2),
]


def odoo_args(db):
    return [
        f"--db_host={PG['host']}",
        f"--db_port={PG['port']}",
        f"--db_user={PG['user']}",
        f"--addons-path={REPO / 'addons'}",
        "-d",
        db,
    ]


def create_database(db):
    print(f"Creating database {db} with mes_base and mes_reconciliation...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            *odoo_args(db),
            "-i",
            "mes_base,mes_reconciliation",
            "--without-demo=all",
            "--stop-after-init",
            "--log-level=warn",
            "--http-port=0",
        ],
        check=True,
        cwd="/",
    )


def open_env(db):
    import odoo
    from odoo.tools import config

    config.parse_config([*odoo_args(db), "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    cr = registry.cursor()
    env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
    return cr, env


def seed_plant(env):
    """One backend, one product with a BOM and two operations, one confirmed order."""
    from odoo import Command

    company = env.company
    wc = env["mrp.workcenter"].create(
        [{"name": f"Bench line {i}", "code": f"BL-{i}"} for i in range(1, 6)]
    )
    product = env["product.product"]
    finished = product.create({"name": "Bench pump", "default_code": "B-PUMP", "is_storable": True})
    parts = product.create(
        [
            {"name": f"Bench part {i}", "default_code": f"B-PART-{i}", "is_storable": True}
            for i in range(1, 5)
        ]
    )
    bom = env["mrp.bom"].create(
        {
            "product_tmpl_id": finished.product_tmpl_id.id,
            "product_qty": 1,
            "bom_line_ids": [Command.create({"product_id": p.id, "product_qty": 2}) for p in parts],
        }
    )
    backend = env["mes.backend"].create(
        {
            "name": "Bench MES",
            "code": "BENCH",
            "base_url": "http://127.0.0.1:9",
            "company_id": company.id,
            "export_trigger": "manual",
        }
    )
    order = env["mrp.production"].create(
        {"product_id": finished.id, "bom_id": bom.id, "product_qty": 5}
    )
    order.action_confirm()
    env.flush_all()
    return backend, order, wc, parts


def columns(cr, table, skip):
    cr.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    return [name for (name,) in cr.fetchall() if name not in skip]


def fill(cr, env, n_messages, n_orders):
    backend, order, workcenters, parts = seed_plant(env)
    t0 = time.perf_counter()
    cols = columns(cr, "mrp_production", {"id", "name", "date_start", "date_finished", "state"})
    cr.execute(
        f"""
        INSERT INTO mrp_production (name, date_start, date_finished, state, {", ".join(cols)})
        SELECT 'BENCH/' || lpad(g::text, 6, '0'),
               now() at time zone 'UTC' - (g %% 90) * interval '1 day',
               now() at time zone 'UTC' - (g %% 90) * interval '1 day' + interval '4 hours',
               CASE WHEN g %% 90 < 2 THEN 'progress' ELSE 'done' END,
               {", ".join(cols)}
          FROM mrp_production, generate_series(1, %s) AS g
         WHERE id = %s
        """,
        (n_orders - 1, order.id),
    )
    # Steady state: the orders last changed when they were finished, long before a refresh.
    cr.execute(
        "UPDATE mrp_production SET mes_state = 'acknowledged', write_date = date_finished "
        "WHERE name LIKE 'BENCH/%%'"
    )
    cr.execute("SELECT id FROM mrp_production ORDER BY id")
    production_ids = [row[0] for row in cr.fetchall()]
    print(f"  {len(production_ids)} orders in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    payload = (
        '{"schema": "mes.event/1", "data": {"product": "B-PART-1", "quantity": 2, "uom": "Units"}}'
    )
    type_case = (
        "CASE "
        + " ".join(
            f"WHEN g %% 100 < {sum(share for _t, share in TYPES[: i + 1])} THEN '{name}'"
            for i, (name, _share) in enumerate(TYPES)
        )
        + " END"
    )
    cr.execute(
        f"""
        INSERT INTO mes_message (
            backend_id, company_id, direction, message_type, external_id, order_ref,
            production_id, sequence, occurred_at, payload, payload_format, state,
            attempt_count, error_code, error_cause, error_text, processed_at, waiting_since,
            reported_product, reported_quantity, reported_uom, reported_minutes,
            reported_operation, workcenter_id, product_id,
            create_uid, write_uid, create_date, write_date)
        SELECT %(backend)s, %(company)s,
               CASE WHEN g %% 10 = 0 THEN 'outbound' ELSE 'inbound' END,
               CASE WHEN g %% 10 = 0 THEN 'order_export' ELSE {type_case} END,
               'BENCH-' || g,
               p.name, p.id, g %% 1000, at, %(payload)s, 'json',
               CASE
                 WHEN g %% 10 = 0 AND g %% 5000 = 0 THEN 'failed'
                 WHEN g %% 10 = 0 AND g %% 3000 = 0 THEN 'pending'
                 WHEN g %% 10 = 0 THEN 'acknowledged'
                 WHEN g %% 500 = 1 THEN 'error'
                 WHEN g %% 2000 = 3 THEN 'waiting'
                 WHEN g %% 1000 = 7 THEN 'received'
                 WHEN g %% 997 = 5 THEN 'cancelled'
                 ELSE 'processed' END,
               0,
               CASE WHEN g %% 500 = 1 THEN 'unmapped_product'
                    WHEN g %% 2000 = 3 THEN 'waiting' END,
               CASE WHEN g %% 500 = 1 THEN 'unmapped_product: MES-' || (g %% 37)
                    WHEN g %% 2000 = 3 THEN 'unknown_lot: L-' || (g %% 53) || ' (B-PART-1)' END,
               CASE WHEN g %% 500 = 1 THEN 'data.product: MES code is not mapped' END,
               CASE WHEN g %% 500 = 1 OR g %% 2000 = 3 OR g %% 1000 = 7 THEN NULL
                    ELSE at + (g %% 120) * interval '1 second' END,
               CASE WHEN g %% 2000 = 3 THEN at END,
               'B-PART-' || (1 + g %% 4), 2, 'Units', (g %% 60), 10 * (1 + g %% 2),
               %(wc0)s + g %% 5, %(part0)s + g %% 4,
               1, 1, at, at
          FROM generate_series(1, %(n)s) AS g,
               LATERAL (SELECT now() at time zone 'UTC'
                               - (g::float / %(n)s) * interval '90 days' AS at) t,
               LATERAL (SELECT id, name FROM mrp_production
                         WHERE id = (%(productions)s)[1 + g %% %(n_orders)s]) p
        """,
        {
            "backend": backend.id,
            "company": env.company.id,
            "payload": payload,
            "n": n_messages,
            "wc0": min(workcenters.ids),
            "part0": min(parts.ids),
            "productions": production_ids,
            "n_orders": len(production_ids),
        },
    )
    print(f"  {n_messages} messages in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    cr.execute(
        """
        INSERT INTO mes_reconciliation (
            production_id, company_id, backend_id, product_id, warehouse_id, date,
            production_state, mes_owned, status, unmatched, pending_messages, posted_value,
            variance_value, usage_variance_value, needs_explanation, computed_at,
            create_uid, write_uid, create_date, write_date)
        SELECT p.id, p.company_id, %s, p.product_id, w.id, p.date_finished::date, p.state, true,
               CASE WHEN p.state != 'done' THEN 'pending'
                    WHEN p.id %% 17 = 0 THEN 'variance'
                    WHEN p.id %% 5 = 0 THEN 'tolerance' ELSE 'balanced' END,
               p.id %% 41 = 0, 0, 100, (p.id %% 17 = 0)::int * 12.5, p.id %% 7 - 3,
               p.id %% 17 = 0, now() at time zone 'UTC',
               1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
          FROM mrp_production p
          LEFT JOIN stock_picking_type t ON t.id = p.picking_type_id
          LEFT JOIN stock_warehouse w ON w.id = t.warehouse_id
        """,
        (backend.id,),
    )
    cr.execute(
        """
        INSERT INTO mes_reconciliation_line (
            reconciliation_id, production_id, company_id, backend_id, warehouse_id, date, kind,
            kind_sequence, product_id, workcenter_id, planned_qty, reported_qty, pending_qty,
            posted_qty, unmatched_qty, variance_qty, usage_variance_qty, unit_cost, posted_value,
            variance_value, usage_variance_value, status, unmatched, mes_reported,
            create_uid, write_uid, create_date, write_date)
        SELECT r.id, r.production_id, r.company_id, r.backend_id, r.warehouse_id, r.date,
               k.kind, k.seq, CASE WHEN k.kind = 'time' THEN NULL ELSE %s + k.seq %% 4 END,
               CASE WHEN k.kind = 'time' THEN %s + r.id %% 5 END,
               10, 10 + r.id %% 3, 0, 10 + r.id %% 3 + (r.status = 'variance')::int, 0,
               (r.status = 'variance')::int, r.id %% 3, 2.5, 25, (r.status = 'variance')::int * 2.5,
               (r.id %% 3) * 2.5, r.status, r.unmatched, true,
               1, 1, now() at time zone 'UTC', now() at time zone 'UTC'
          FROM mes_reconciliation r,
               (VALUES ('output', 1), ('component', 3), ('component', 4), ('component', 5),
                       ('scrap', 6), ('time', 7)) AS k(kind, seq)
        """,
        (min(parts.ids), min(workcenters.ids)),
    )
    print(f"  reconciliations and their lines in {time.perf_counter() - t0:.1f} s", flush=True)
    fill_shop_floor(cr, env, backend, workcenters, parts, n_messages // 20)
    cr.execute("ANALYZE")
    cr.commit()


def fill_shop_floor(cr, env, backend, workcenters, parts, n_stops):
    """MES downtime (``n_stops`` over 90 days, 5 minutes to 2 hours, three reasons) and
    as many MES scrap orders (three reasons), for the shop-floor dashboard."""
    t0 = time.perf_counter()
    losses = env["mrp.workcenter.productivity.loss"].search(
        [("loss_type", "=", "availability")], limit=3
    )
    template = env["mrp.workcenter.productivity"].create(
        {
            "workcenter_id": workcenters[0].id,
            "loss_id": losses[0].id,
            "date_start": "2000-01-01 00:00:00",
            "date_end": "2000-01-01 00:05:00",
            "mes_backend_id": backend.id,
            "mes_downtime_ref": "BENCH-DT-0",
        }
    )
    env.flush_all()
    skip = {"id", "workcenter_id", "loss_id", "date_start", "date_end", "mes_downtime_ref"}
    cols = columns(cr, "mrp_workcenter_productivity", skip)
    cr.execute(
        f"""
        INSERT INTO mrp_workcenter_productivity (
            workcenter_id, loss_id, date_start, date_end, mes_downtime_ref, {", ".join(cols)})
        SELECT (%(wcs)s)[1 + g %% 5], (%(losses)s)[1 + g %% %(n_losses)s], at,
               at + (5 + g %% 115) * interval '1 minute', 'BENCH-DT-' || g, {", ".join(cols)}
          FROM mrp_workcenter_productivity,
               generate_series(1, %(n)s) AS g,
               LATERAL (SELECT now() at time zone 'UTC'
                               - (g::float / %(n)s) * interval '90 days' AS at) t
         WHERE id = %(template)s
        """,
        {
            "wcs": workcenters.ids,
            "losses": losses.ids,
            "n_losses": len(losses),
            "n": n_stops,
            "template": template.id,
        },
    )
    tags = env["stock.scrap.reason.tag"].create(
        [{"name": f"Bench scrap reason {i}"} for i in range(1, 4)]
    )
    env["stock.quant"]._update_available_quantity(
        parts[0], env.ref("stock.warehouse0").lot_stock_id, 10
    )
    scrap = env["stock.scrap"].create(
        {"product_id": parts[0].id, "scrap_qty": 1, "scrap_reason_tag_ids": tags[:1].ids}
    )
    scrap.do_scrap()
    env.flush_all()
    skip = {"id", "name", "date_done", "scrap_qty"}
    cols = columns(cr, "stock_scrap", skip)
    cr.execute(
        f"""
        INSERT INTO stock_scrap (name, date_done, scrap_qty, {", ".join(cols)})
        SELECT 'BENCH-SP-' || g,
               now() at time zone 'UTC' - (g::float / %(n)s) * interval '90 days',
               1 + g %% 4, {", ".join(cols)}
          FROM stock_scrap, generate_series(1, %(n)s) AS g
         WHERE id = %(template)s
        RETURNING id
        """,
        {"n": n_stops, "template": scrap.id},
    )
    scrap_ids = [row[0] for row in cr.fetchall()]
    cr.execute(
        """
        INSERT INTO stock_scrap_stock_scrap_reason_tag_rel
               (stock_scrap_id, stock_scrap_reason_tag_id)
        SELECT s, (%s)[1 + s %% 3] FROM unnest(%s) AS s
        """,
        (tags.ids, scrap_ids),
    )
    cr.execute(
        """
        INSERT INTO mes_message_stock_scrap_rel (stock_scrap_id, mes_message_id)
        SELECT s, (SELECT min(id) FROM mes_message) FROM unnest(%s) AS s
        """,
        (scrap_ids,),
    )
    print(
        f"  {n_stops} MES stops and {n_stops} MES scrap orders in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )


def timed(fn, repeat):
    runs = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result


def measure(env, repeat):
    rows = []
    board = env["mes.dashboard"]

    def add(name, fn):
        env.invalidate_all()
        seconds, _result = timed(fn, repeat)
        rows.append((name, seconds))
        status = "ok" if seconds < GOAL_SECONDS else "SLOW"
        print(f"  {name:<58} {seconds * 1000:8.1f} ms  {status}", flush=True)

    print("Dashboards (whole answer of get_dashboard):")
    for name in ("planner", "warehouse", "shopfloor", "health"):
        add(f"dashboard {name}", lambda name=name: board.get_dashboard(name))
    backend = env["mes.backend"].search([("code", "=", "BENCH")])
    for name, period in (("shopfloor", "7d"), ("shopfloor", "30d"), ("health", "30d")):
        add(
            f"dashboard {name}, {period}",
            lambda name=name, period=period: board.get_dashboard(name, {"period": period}),
        )
    add(
        "dashboard planner, one MES",
        lambda: board.get_dashboard("planner", {"backend_ids": backend.ids}),
    )
    print("Sections:")
    sections = board.with_context(mes_dashboard_now=__import__("odoo").fields.Datetime.now())
    for method in (
        "_causes_table",
        "_age_table",
        "_backends_table",
        "_traffic_bars",
        "_negative_quants",
    ):
        add(f"section {method}", getattr(sections, method))
    add("section open by work center", lambda: sections._open_matrix("x", "workcenter_id", "k"))
    add("section time to post (24 h)", lambda: sections._time_to_post(sections._ago(24)))

    print("Reconciliation:")
    line = env["mes.reconciliation.line"]
    rec = env["mes.reconciliation"]
    for groupby in (
        ["date:month"],
        ["product_id"],
        ["workcenter_id"],
        ["warehouse_id"],
        ["date:month", "kind"],
    ):
        add(
            f"pivot lines by {', '.join(groupby)}",
            lambda groupby=groupby: line.read_group(
                [],
                ["variance_value:sum", "usage_variance_value:sum", "posted_qty:sum"],
                groupby,
                lazy=False,
            ),
        )
    add(
        "pivot orders by month and status",
        lambda: rec.read_group([], ["variance_value:sum"], ["date:month", "status"], lazy=False),
    )
    add(
        "list orders to explain (first page)",
        lambda: rec.search([("needs_explanation", "=", True)], limit=80).mapped(
            "production_id.name"
        ),
    )
    close = env["mes.period.close"].new(
        {
            "company_id": env.company.id,
            "date_from": __import__("datetime").date.today().replace(day=1),
            "date_to": __import__("datetime").date.today(),
        }
    )
    add(
        "month-end checks (counts)",
        lambda: [env[model].search_count(domain) for _c, _l, model, domain in close._checks()],
    )
    add("refresh: find changed orders", lambda: rec._refresh_candidates(limit=500))
    some = env["mrp.production"].search([("state", "=", "done")], limit=1)
    add("refresh: recompute one order (100 messages)", lambda: rec._refresh_productions(some))
    print("Notifications:")
    add("error causes: sync (after the first run)", env["mes.error.cause"]._cron_sync)
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="mes_bench")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="measure an already filled database")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    args = parser.parse_args()

    env_pg = dict(os.environ, PGHOST=PG["host"], PGPORT=PG["port"], PGUSER=PG["user"])
    if not args.reuse:
        subprocess.run(["dropdb", "--if-exists", args.db], check=True, env=env_pg)
        create_database(args.db)
    cr, env = open_env(args.db)
    try:
        if not args.reuse:
            print(f"Filling {args.db}: {args.orders} orders, {args.messages} messages", flush=True)
            fill(cr, env, args.messages, args.orders)
        cr.execute("SELECT count(*) FROM mes_message")
        messages = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM mrp_production")
        orders = cr.fetchone()[0]
        print(
            f"Database {args.db}: {messages} messages, {orders} orders; "
            f"median of {args.repeat} runs"
        )
        rows = measure(env, args.repeat)
        slow = [name for name, seconds in rows if seconds >= GOAL_SECONDS]
        worst = max(rows, key=lambda row: row[1])
        print(
            f"Slowest: {worst[0]} {worst[1] * 1000:.1f} ms; "
            f"goal under {GOAL_SECONDS * 1000:.0f} ms each"
        )
        cr.rollback()
    finally:
        cr.close()
    if args.drop:
        subprocess.run(["dropdb", "--if-exists", args.db], check=True, env=env_pg)
    sys.exit(1 if slow else 0)


if __name__ == "__main__":
    main()
