"""The simulator's memory: a SQLite file, so a restarted simulator keeps what it received."""

import json
import sqlite3
import threading
from datetime import UTC, datetime

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    mes_order_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    revision INTEGER NOT NULL,
    status TEXT NOT NULL,
    quantity REAL NOT NULL,
    uom TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    idempotency_key TEXT PRIMARY KEY,
    mes_order_id TEXT NOT NULL REFERENCES orders(mes_order_id),
    revision INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    mes_order_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS resources (
    resource TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    since TEXT,
    reference TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS status_receipts (
    idempotency_key TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS master_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    revision INTEGER NOT NULL,
    active INTEGER NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (kind, code)
);
CREATE TABLE IF NOT EXISTS master_data_receipts (
    idempotency_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    revision INTEGER NOT NULL,
    status TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    received_at TEXT NOT NULL,
    PRIMARY KEY (idempotency_key, position)
);
CREATE INDEX IF NOT EXISTS master_data_receipts_record ON master_data_receipts (kind, code);
"""


class RevisionConflict(ValueError):
    """An order revision that does not follow the one the MES holds (HTTP 409)."""


class StaleRevision(RevisionConflict):
    """A master data revision no newer than the one the MES holds (HTTP 409)."""


def _check_revision(order, existing):
    """The MES applies an order's revisions one after the other, never out of order."""
    revision, action = order["revision"], order["action"]
    if not existing:
        if action != "create" or revision != 1:
            raise RevisionConflict(
                f"order {order['order_id']} is unknown to the MES: revision {revision} "
                f"({action}) cannot be applied before revision 1 (create)"
            )
        return
    if existing["status"] == "cancelled":
        raise RevisionConflict(f"order {order['order_id']} is cancelled in the MES")
    if action == "create":
        raise RevisionConflict(f"order {order['order_id']} already exists in the MES")
    if revision != existing["revision"] + 1:
        raise RevisionConflict(
            f"order {order['order_id']}: revision {revision} arrives while the MES holds "
            f"revision {existing['revision']}; revision {existing['revision'] + 1} must come first"
        )


def _now():
    return datetime.now(UTC).isoformat()


class Store:
    """Thread-safe access to the simulator's SQLite file (``:memory:`` for tests)."""

    def __init__(self, path=":memory:", prefix="MES"):
        """``prefix`` starts every MES order id (and so every event id): give each
        simulator its own when several report to the same Odoo."""
        self.prefix = prefix
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.executescript(_SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    # orders

    def receive_order(self, order, idempotency_key):
        """Store an order revision once per key; returns (mes_order_id, created: bool)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT mes_order_id FROM receipts WHERE idempotency_key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row:
                    db.execute(
                        "UPDATE receipts SET deliveries = deliveries + 1 WHERE idempotency_key = ?",
                        (idempotency_key,),
                    )
                    db.execute("COMMIT")
                    return row["mes_order_id"], False
                existing = db.execute(
                    "SELECT mes_order_id, revision, status FROM orders WHERE order_id = ?",
                    (order["order_id"],),
                ).fetchone()
                _check_revision(order, existing)
                if existing:
                    mes_order_id = existing["mes_order_id"]
                    db.execute(
                        "UPDATE orders SET revision = ?, quantity = ?, uom = ?, payload = ?,"
                        " status = CASE WHEN ? = 'cancel' THEN 'cancelled' ELSE status END"
                        " WHERE mes_order_id = ?",
                        (
                            order["revision"],
                            order["quantity"],
                            order["uom"],
                            json.dumps(order),
                            order["action"],
                            mes_order_id,
                        ),
                    )
                else:
                    count = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
                    mes_order_id = f"{self.prefix}-{count + 1:06d}"
                    db.execute(
                        "INSERT INTO orders VALUES (?, ?, ?, 'released', ?, ?, ?, ?)",
                        (
                            mes_order_id,
                            order["order_id"],
                            order["revision"],
                            order["quantity"],
                            order["uom"],
                            json.dumps(order),
                            _now(),
                        ),
                    )
                db.execute(
                    "INSERT INTO receipts VALUES (?, ?, ?, 1, ?)",
                    (idempotency_key, mes_order_id, order["revision"], _now()),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return mes_order_id, True

    def order_receipt(self, idempotency_key):
        """Whether an order delivery with this key was received already."""
        with self._lock:
            return bool(
                self._db.execute(
                    "SELECT 1 FROM receipts WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
            )

    def _order_dict(self, row):
        order = dict(row)
        order["payload"] = json.loads(order["payload"])
        order["deliveries"] = self._db.execute(
            "SELECT COALESCE(SUM(deliveries), 0) FROM receipts WHERE mes_order_id = ?",
            (row["mes_order_id"],),
        ).fetchone()[0]
        return order

    def orders(self, status=None):
        with self._lock:
            sql = "SELECT * FROM orders"
            rows = self._db.execute(
                sql + (" WHERE status = ?" if status else "") + " ORDER BY mes_order_id",
                (status,) if status else (),
            ).fetchall()
            return [self._order_dict(r) for r in rows]

    def order(self, mes_order_id):
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM orders WHERE mes_order_id = ? OR order_id = ?",
                (mes_order_id, mes_order_id),
            ).fetchone()
            return self._order_dict(row) if row else None

    def set_order_status(self, mes_order_id, status):
        with self._lock:
            self._db.execute(
                "UPDATE orders SET status = ? WHERE mes_order_id = ?", (status, mes_order_id)
            )

    # resources

    def set_resource_status(
        self, resource, status, idempotency_key, reason=None, since=None, reference=None
    ):
        """Record what Odoo says of a resource once per key; returns True if it was new."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute(
                    "SELECT 1 FROM status_receipts WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone():
                    db.execute("COMMIT")
                    return False
                db.execute(
                    "INSERT INTO status_receipts VALUES (?, ?, ?, ?)",
                    (idempotency_key, resource, status, _now()),
                )
                db.execute(
                    "INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(resource) DO "
                    "UPDATE SET status = excluded.status, reason = excluded.reason, "
                    "since = excluded.since, reference = excluded.reference, "
                    "updated_at = excluded.updated_at",
                    (resource, status, reason, since, reference, _now()),
                )
                db.execute("COMMIT")
                return True
            except Exception:
                db.execute("ROLLBACK")
                raise

    def resources(self):
        with self._lock:
            rows = self._db.execute("SELECT * FROM resources ORDER BY resource").fetchall()
            return {row["resource"]: dict(row) for row in rows}

    def status_receipts(self):
        with self._lock:
            rows = self._db.execute("SELECT * FROM status_receipts ORDER BY received_at").fetchall()
            return [dict(row) for row in rows]

    # master data

    def receive_master_data(self, records, idempotency_key, check=None):
        """Store master data records ``[(kind, code, document)]`` once per key, all or none.

        Returns one answer per record, ``{"status", "kind", "code", "revision"}``:
        created or updated, or duplicate (with the revisions first received) when the
        key was received before. A revision no newer than the one held raises
        :class:`StaleRevision`. ``check(records)``, called once the key is known to be
        new, may raise to refuse them (nothing is stored).
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    "SELECT kind, code, revision FROM master_data_receipts"
                    " WHERE idempotency_key = ? ORDER BY position",
                    (idempotency_key,),
                ).fetchall()
                if rows:
                    db.execute(
                        "UPDATE master_data_receipts SET deliveries = deliveries + 1"
                        " WHERE idempotency_key = ?",
                        (idempotency_key,),
                    )
                    db.execute("COMMIT")
                    return [{"status": "duplicate", **dict(row)} for row in rows]
                if check is not None:
                    check(records)
                answers = []
                now = _now()
                for position, (kind, code, document) in enumerate(records):
                    revision = document["revision"]
                    held = db.execute(
                        "SELECT revision FROM master_data WHERE kind = ? AND code = ?",
                        (kind, code),
                    ).fetchone()
                    if held and revision <= held["revision"]:
                        raise StaleRevision(
                            f"{kind} {code}: revision {revision} arrives while the MES holds "
                            f"revision {held['revision']}"
                        )
                    # The record keeps its place (id) in the order of first receipt.
                    db.execute(
                        "INSERT INTO master_data (kind, code, revision, active, payload,"
                        " received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, code) DO"
                        " UPDATE SET revision = excluded.revision, active = excluded.active,"
                        " payload = excluded.payload, received_at = excluded.received_at",
                        (
                            kind,
                            code,
                            revision,
                            int(document.get("active", True)),
                            json.dumps(document),
                            now,
                        ),
                    )
                    status = "updated" if held else "created"
                    db.execute(
                        "INSERT INTO master_data_receipts (idempotency_key, position, kind, code,"
                        " revision, status, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (idempotency_key, position, kind, code, revision, status, now),
                    )
                    answers.append(
                        {"status": status, "kind": kind, "code": code, "revision": revision}
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return answers

    def _master_item(self, row):
        item = dict(row)
        item.pop("id")
        item["active"] = bool(item["active"])
        item["payload"] = json.loads(item["payload"])
        item["deliveries"] = self._db.execute(
            "SELECT COALESCE(SUM(deliveries), 0) FROM master_data_receipts"
            " WHERE kind = ? AND code = ?",
            (row["kind"], row["code"]),
        ).fetchone()[0]
        return item

    def master_data(self, kind=None):
        """The records held (of ``kind``), in the order they were first received: kind,
        code, revision, active, payload (the latest document), deliveries (of every
        revision) and received_at (of the latest revision)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM master_data" + (" WHERE kind = ?" if kind else "") + " ORDER BY id",
                (kind,) if kind else (),
            ).fetchall()
            return [self._master_item(row) for row in rows]

    def master_data_record(self, kind, code):
        """One record held, as :meth:`master_data` lists it, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM master_data WHERE kind = ? AND code = ?", (kind, code)
            ).fetchone()
            return self._master_item(row) if row else None

    def master_data_states(self, kind, codes):
        """{code: (revision, active)} of the records of ``kind`` among ``codes`` held."""
        codes = list(dict.fromkeys(codes))
        if not codes:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT code, revision, active FROM master_data WHERE kind = ?"
                f" AND code IN ({', '.join('?' * len(codes))})",
                (kind, *codes),
            ).fetchall()
        return {row["code"]: (row["revision"], bool(row["active"])) for row in rows}

    def master_data_duplicates(self):
        """How many master data deliveries were duplicates of one received before."""
        with self._lock:
            return self._db.execute(
                "SELECT COALESCE(SUM(deliveries - 1), 0) FROM master_data_receipts"
                " WHERE position = 0"
            ).fetchone()[0]

    def material_lots(self):
        """The lots Odoo sent, ``[(product, lot, status)]`` in the order first received."""
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM master_data WHERE kind = 'lot' ORDER BY id"
            ).fetchall()
        lots = [json.loads(row["payload"]) for row in rows]
        return [(lot["product"], lot["lot"], lot["status"]) for lot in lots]

    def lots_for(self, product):
        """The released lots of ``product`` Odoo sent, in the order first received."""
        return [
            lot
            for code, lot, status in self.material_lots()
            if code == product and status == "released"
        ]

    # events

    def add_event(self, mes_order_id, make_event):
        """Append the order's next event; ``make_event(number)`` builds it from its number."""
        with self._lock:
            number = (
                self._db.execute(
                    "SELECT COUNT(*) FROM events WHERE mes_order_id = ?", (mes_order_id,)
                ).fetchone()[0]
                + 1
            )
            event = make_event(number)
            self._db.execute(
                "INSERT INTO events (event_id, mes_order_id, body, created_at) VALUES (?, ?, ?, ?)",
                (event["event_id"], mes_order_id, json.dumps(event), _now()),
            )
            return event

    def undelivered(self, limit=50):
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE delivered_at IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [(r["seq"], json.loads(r["body"])) for r in rows]

    def mark_delivered(self, seq, result):
        with self._lock:
            self._db.execute(
                "UPDATE events SET delivered_at = ?, result = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE seq = ?",
                (_now(), result, seq),
            )

    def mark_failed(self, seqs, error):
        with self._lock:
            self._db.executemany(
                "UPDATE events SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(error, s) for s in seqs],
            )

    def events(self, after=0, limit=1000):
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
            out = []
            for r in rows:
                item = dict(r)
                item["body"] = json.loads(item["body"])
                out.append(item)
            return out
