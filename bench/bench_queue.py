"""Intake and posting through the queue, each beside its anchor, in one run.

Prints, measured one after the other on the same machine and database:

1. raw PostgreSQL inserts into a table shaped like the message log (500-row
   transactions, and one commit per row) vs the HTTP intake (batches of 500, and
   single events from 4 clients), with the ratios, and beside them Odoo's own floor:
   requests the intake refuses at the key check (Odoo's HTTP server, a database
   transaction, one query), the most single requests Odoo answers; then the same batch
   intake again
   after the message table has grown to --grow rows, statistics never gathered
   (autovacuum off, as on these machines);
2. posting N orders directly through the ORM (consume, produce, mark done, in one
   ``odoo shell``) vs the same kind of orders reported by the MES (started, consumed,
   operation completed, completed) and posted by the queue, with the ratio; and, to tell
   the queue's cost from the posting's, the same events applied in one ``odoo shell``
   without the queue (each order's lane run directly, one after the other);
3. the database rows written per message by the queue (messages, queue jobs, mail
   messages, tracking values).

    python3 bench/bench_queue.py                  # 20 orders, table grown to 1,000,000
    python3 bench/bench_queue.py --orders 50 --grow 0

Needs Odoo 18 importable by this Python and PostgreSQL (PGHOST/PGPORT/PGUSER, default
127.0.0.1:5432 postgres). The database (--db) is created on the first run and kept.
Odoo runs as odoo.conf has it (2 worker processes; --workers 0: the threaded server).
Intake is measured with queue_job not loaded (nothing runs meanwhile); posting with
the job runner (channel root:4).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from statistics import median

import psycopg2
import requests
from bench_b2mml_intake import (
    PG,
    REPO,
    Rpc,
    ensure_database,
    free_port,
    setup_plant,
    start_odoo,
)
from psycopg2.extras import execute_values


def connect(db):
    return psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db)


def raw_inserts(db, batches, singles):
    """Rows per second into a table of the message log's shape (unique key, payload)."""
    conn = connect(db)
    cr = conn.cursor()
    cr.execute(
        """CREATE TABLE bench_raw (id serial PRIMARY KEY, backend_id int, direction varchar,
           external_id varchar, state varchar, payload text, create_date timestamp,
           UNIQUE (backend_id, direction, external_id))"""
    )
    conn.commit()
    payload = json.dumps(event("RAW", "WH/MO/1", 1, "material_consumed", {"quantity": 1}))
    try:
        started = time.perf_counter()
        for batch in range(batches):
            rows = [
                (1, "inbound", f"B{batch}-{i}", "received", payload, datetime.now())
                for i in range(500)
            ]
            execute_values(
                cr,
                "INSERT INTO bench_raw (backend_id, direction, external_id, state, payload,"
                " create_date) VALUES %s",
                rows,
            )
            conn.commit()
        batched = batches * 500 / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(singles):
            cr.execute(
                "INSERT INTO bench_raw (backend_id, direction, external_id, state, payload,"
                " create_date) VALUES (1, 'inbound', %s, 'received', %s, now())",
                (f"S-{i}", payload),
            )
            conn.commit()
        single = singles / (time.perf_counter() - started) if singles else None
    finally:
        cr.execute("DROP TABLE bench_raw")
        conn.commit()
        conn.close()
    return batched, single


def event(prefix, order, sequence, kind, data):
    return {
        "schema": "mes.event/1",
        "event_id": f"{prefix}-{order}-{sequence}",
        "event_type": kind,
        "order_ref": order,
        "sequence": sequence,
        "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": data,
    }


def post(session, url, key, body):
    response = session.post(
        url,
        data=json.dumps(body),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        timeout=600,
    )
    if response.status_code not in (200, 202):
        sys.exit(f"intake answered {response.status_code}: {response.text[:300]}")


def http_intake(url, key, run, batches, singles):
    """Messages per second stored by the intake: batches of 500, then single events
    (after a few requests not counted, which every worker process answers once)."""

    def warm_up(number):
        own = requests.Session()
        for i in range(5):
            body = event(f"{run}-W{number}", f"BENCH/{run}/W{number}", i + 1, "order_held", {})
            post(own, url, key, body)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(warm_up, range(4)))
    session = requests.Session()
    started = time.perf_counter()
    for batch in range(batches):
        body = {
            "events": [
                event(f"{run}-B{batch}", f"BENCH/{run}/{i // 10}", i % 10 + 1, "order_held", {})
                for i in range(500)
            ]
        }
        post(session, url, key, body)
    batched = batches * 500 / (time.perf_counter() - started)

    def client(number):
        own = requests.Session()
        for i in range(number, singles, 4):
            post(own, url, key, event(f"{run}-S", f"BENCH/{run}/S{i}", 1, "order_held", {}))

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client, range(4)))
    single = singles / (time.perf_counter() - started) if singles else None
    return batched, single


def refused_rate(url, requests_count):
    """Requests per second answered 401 by the intake (a key it does not know), from 4
    clients: Odoo's HTTP server, the database transaction of a request and the key
    query, nothing stored. No single event can be taken faster than this."""

    def client(number):
        own = requests.Session()
        for _i in range(number, requests_count, 4):
            response = own.post(
                url,
                data="{}",
                headers={"Content-Type": "application/json", "X-API-Key": "not-a-key"},
                timeout=60,
            )
            if response.status_code != 401:
                sys.exit(f"a wrong key was answered {response.status_code}")

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client, range(4)))
    return requests_count / (time.perf_counter() - started)


def grow(db, rows):
    """Old inbound messages up to ``rows`` in all, inserted in SQL; statistics untouched."""
    conn = connect(db)
    cr = conn.cursor()
    cr.execute("SELECT count(*), min(backend_id) FROM mes_message")
    count, backend = cr.fetchone()
    if count < rows:
        cr.execute(
            """INSERT INTO mes_message (backend_id, direction, message_type, external_id, state,
                   payload, payload_format, sequence, order_ref, create_date, write_date)
               SELECT %s, 'inbound', 'order_held', 'OLD-' || g, 'processed', '{}', 'json', 1,
                      'OLD/' || (g / 10), now() - interval '30 days', now() - interval '30 days'
                 FROM generate_series(1, %s) g""",
            (backend, rows - count),
        )
        conn.commit()
    conn.close()


DIRECT = """
orders = env["mrp.production"].search(
    [("origin", "=", "bench-direct"), ("state", "=", "confirmed")], limit={orders})
started = time.perf_counter()
for production in orders:
    production.qty_producing = production.product_qty
    for move in production.move_raw_ids:
        move.quantity = move.product_uom_qty
        move.picked = True
    production.with_context(skip_backorder=True).button_mark_done()
env.cr.commit()
print("RESULT", len(orders), time.perf_counter() - started)
"""

# The same events as the queue's, stored without jobs, then applied one order after
# another in this process: the work of the queue without the queue.
IN_PROCESS = """
backend = env["mes.backend"].browse({backend})
messages = env["mes.message"].sudo()
messages._intake_batch(backend, json.loads({events!r}), enqueue=False)
env.cr.commit()
lanes = sorted({{f"o:{{backend.id}}:{{e['order_ref']}}" for e in json.loads({events!r})}})
started = time.perf_counter()
for lane in lanes:
    messages.with_user(backend.user_id).sudo()._run_lane(lane, limit=1000, seconds=600)
    env.cr.commit()
seconds = time.perf_counter() - started
done = env["mrp.production"].search_count([("name", "in", {names!r}), ("state", "=", "done")])
print("RESULT", done, seconds)
"""


def in_shell(db, script):
    """(count, seconds) printed by ``script``, run in ``odoo shell`` (no HTTP, no queue)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            "shell",
            *PG,
            f"--addons-path={REPO / 'addons'}",
            "-d",
            db,
            "--no-http",
            "--log-level=warn",
        ],
        input="import json, time\nenv = self.env\n" + script,
        capture_output=True,
        text=True,
        cwd="/",
    )
    for line in result.stdout.splitlines():
        if line.startswith("RESULT"):
            _label, count, seconds = line.split()
            return int(count), float(seconds)
    sys.exit(f"posting in odoo shell failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def order_events(run, names, component):
    """What the MES reports of each order: started, consumed, operation done, completed."""
    events = []
    for name in names:
        steps = [
            ("order_started", {}),
            ("material_consumed", {"product": component, "quantity": 5, "uom": "Units"}),
            (
                "operation_completed",
                {"operation": 10, "good_quantity": 5, "uom": "Units", "run_minutes": 30},
            ),
            ("order_completed", {"quantity": 5, "uom": "Units"}),
        ]
        for sequence, (kind, data) in enumerate(steps, start=1):
            events.append(event(f"Q{run}", name, sequence, kind, data))
    return events


def counts(db):
    conn = connect(db)
    cr = conn.cursor()
    figures = {}
    for table in ("mes_message", "queue_job", "mail_message", "mail_tracking_value"):
        cr.execute(f"SELECT count(*) FROM {table}")
        figures[table] = cr.fetchone()[0]
    conn.close()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="mes_bench_queue")
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--grow", type=int, default=1_000_000, help="message rows, 0: skip")
    parser.add_argument("--skip-intake", action="store_true", help="measure the posting only")
    parser.add_argument("--skip-posting", action="store_true", help="measure the intake only")
    parser.add_argument("--rounds", type=int, default=3, help="intake rounds (median shown)")
    parser.add_argument("--server-log", help="keep Odoo's log in this file")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Odoo worker processes, as odoo.conf has them (0: the threaded server)",
    )
    args = parser.parse_args()
    ensure_database(args.db)
    run = uuid.uuid4().hex[:6].upper()

    if not args.skip_intake:
        intake(args, run)
    if not args.skip_posting:
        posting(args)


def intake(args, run):
    """Raw inserts and HTTP intake measured in alternation, round after round, so that
    each ratio compares figures taken within seconds of each other (the disk and CPU of
    a shared machine vary more than that between minutes); the median of the rounds."""
    print("1. Intake", flush=True)
    port = free_port()
    rounds = []
    with server_log(args) as log:
        # queue_job not loaded: jobs are stored, nothing runs while intake is measured.
        process = start_odoo(args.db, port, log, workers=args.workers, load="base,web")
        try:
            url = f"http://127.0.0.1:{port}"
            rpc = Rpc(url, args.db)
            backend, key, _component, _names = setup_plant(rpc, run, 1, 1)
            code = rpc("mes.backend", "read", [backend], ["code"])[0]["code"]
            intake = f"{url}/mes/api/v1/{code}/events"
            for number in range(args.rounds):
                raw_batched, raw_single = raw_inserts(args.db, batches=10, singles=500)
                batched, single = http_intake(intake, key, f"{run}R{number}", 6, 600)
                floor = refused_rate(intake, 600)
                rounds.append((raw_batched, batched, raw_single, single, floor))
                print(
                    f"   round {number + 1}: batches {batched:,.0f} msg/s vs raw"
                    f" {raw_batched:,.0f} rows/s ({batched / raw_batched:.0%}); single"
                    f" {single:,.0f} msg/s vs raw {raw_single:,.0f} rows/s"
                    f" ({single / raw_single:.0%}); refused at the key {floor:,.0f} req/s"
                    f" ({floor / raw_single:.0%})",
                    flush=True,
                )
            grown = None
            if args.grow:
                grow(args.db, args.grow)
                grown_rounds = []
                for number in range(args.rounds):
                    raw_batched, _raw_single = raw_inserts(args.db, batches=10, singles=0)
                    batched, _single = http_intake(intake, key, f"{run}G{number}", 6, 0)
                    grown_rounds.append((raw_batched, batched))
                grown = median(batched / raw for raw, batched in grown_rounds)
                grown_rate = median(batched for _raw, batched in grown_rounds)
        finally:
            process.terminate()
            process.wait(30)
    # Nothing of the intake's messages is to be posted by the next step.
    conn = connect(args.db)
    with conn, conn.cursor() as cr:
        cr.execute("DELETE FROM queue_job WHERE state = 'pending'")
    conn.close()
    columns = zip(*rounds, strict=True)
    raw_batched, batched, raw_single, single, floor = (median(column) for column in columns)
    batch_ratio = median(b / r for r, b, _rs, _s, _f in rounds)
    single_ratio = median(s / rs for _r, _b, rs, s, _f in rounds)
    floor_ratio = median(f / rs for _r, _b, rs, _s, f in rounds)
    print(f"   medians of {len(rounds)} rounds:")
    print(f"   raw PostgreSQL, 500-row transactions: {raw_batched:,.0f} rows/s")
    print(f"   HTTP intake, batches of 500:          {batched:,.0f} msg/s ({batch_ratio:.0%})")
    if grown:
        print(
            f"   ... with {args.grow:,} messages held:      {grown_rate:,.0f} msg/s ({grown:.0%})"
        )
    print(f"   raw PostgreSQL, one commit per row:   {raw_single:,.0f} rows/s")
    print(f"   HTTP intake, single events, 4 clients: {single:,.0f} msg/s ({single_ratio:.0%})")
    print(f"   Odoo's floor, refused at the key check: {floor:,.0f} req/s ({floor_ratio:.0%})")


def server_log(args):
    """Where Odoo's log goes: --server-log's file (appended), else nowhere kept."""
    if args.server_log:
        return open(args.server_log, "ab")
    return tempfile.TemporaryFile()


def posting(args):
    print(f"2. Posting {args.orders} orders", flush=True)
    # Only this run's work in the queue: no other MES exports the orders, no job left over.
    conn = connect(args.db)
    with conn, conn.cursor() as cr:
        cr.execute("UPDATE mes_backend SET export_trigger = 'manual'")
        cr.execute("DELETE FROM queue_job WHERE state IN ('pending', 'enqueued', 'started')")
    conn.close()
    port = free_port()
    with server_log(args) as log:
        process = start_odoo(args.db, port, log, workers=args.workers)
        try:
            url = f"http://127.0.0.1:{port}"
            rpc = Rpc(url, args.db)
            run = uuid.uuid4().hex[:6].upper()
            backend, key, component, names = setup_plant(rpc, run, 3 * args.orders, 5)
            direct, local, queued_names = (
                names[: args.orders],
                names[args.orders : 2 * args.orders],
                names[2 * args.orders :],
            )
            direct_ids = rpc("mrp.production", "search", [("name", "in", direct)])
            rpc("mrp.production", "write", direct_ids, {"origin": "bench-direct"})
            count, direct_seconds = in_shell(args.db, DIRECT.format(orders=args.orders))
            local_count, local_seconds = in_shell(
                args.db,
                IN_PROCESS.format(
                    backend=backend,
                    events=json.dumps(order_events(f"L{run}", local, component)),
                    names=local,
                ),
            )
            if local_count != len(local):
                sys.exit(f"in process: {local_count} of {len(local)} orders done")
            code = rpc("mes.backend", "read", [backend], ["code"])[0]["code"]
            events = order_events(run, queued_names, component)
            before = counts(args.db)
            started = time.perf_counter()
            post(requests.Session(), f"{url}/mes/api/v1/{code}/events", key, {"events": events})
            queued = rpc("mrp.production", "search", [("name", "in", queued_names)])
            while time.perf_counter() - started < 3600:
                done = rpc(
                    "mrp.production", "search_count", [("id", "in", queued), ("state", "=", "done")]
                )
                errors = rpc(
                    "mes.message",
                    "search_count",
                    [("backend_id", "=", backend), ("state", "=", "error")],
                )
                if errors:
                    sys.exit(f"{errors} messages in error; see the backend in Odoo")
                if done == len(queued):
                    break
                time.sleep(0.5)
            queue_seconds = time.perf_counter() - started
            after = counts(args.db)
        finally:
            process.terminate()
            process.wait(30)
    direct_rate, queue_rate = count / direct_seconds, len(queued) / queue_seconds
    local_rate = local_count / local_seconds
    print(f"   direct ORM: {count} orders in {direct_seconds:.1f} s ({direct_rate:.2f} orders/s)")
    print(
        f"   the same events applied in one process, no queue: {local_count} orders in "
        f"{local_seconds:.1f} s ({local_rate:.2f} orders/s)"
    )
    print(
        f"   through the queue: {len(queued)} orders, {len(events)} events, in "
        f"{queue_seconds:.1f} s ({queue_rate:.2f} orders/s, {len(events) / queue_seconds:.1f} "
        f"events/s): {queue_rate / direct_rate:.0%} of direct posting, "
        f"{queue_rate / local_rate:.0%} of the same events applied without the queue"
    )
    print("3. Rows written per message by the queue (intake and posting):")
    for table, value in after.items():
        print(f"   {table}: {(value - before[table]) / len(events):.2f}")


if __name__ == "__main__":
    main()
