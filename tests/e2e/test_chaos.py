"""The queue under real delivery: a shift delivered as real MES and middleware do.

The simulator runs a shift of 20 orders (breakdowns and other downtimes on the
assembly line all the orders share, scrap, lots, quality results). The test then
delivers its events itself, the way an MES with several senders and a middleware in
between does: every event 1 to 3 times, shuffled across and within orders, as single
events and as batches that overlap, from 6 concurrent clients that send again on any
transport error or 5xx. Odoo runs as deployed (workers behind nginx) and is killed
with -9 once during the delivery and once while the queue drains, and started again.

Afterwards: one inbound message per event, none in error, every order done, and what
Odoo posted per order, component, lot, scrap reason and downtime equals the
simulator's totals.

``MES_CHAOS_ORDERS`` sets the number of orders (``bench/bench_chaos.py`` runs 200).
"""

import json
import os
import random
import threading
import time
import uuid

import pytest
import requests

from .conftest import Simulator, new_inbound_key, wait_for
from .test_shift import (
    SHIFT,
    _assert_reconciled,
    _assert_same,
    _confirm_shift,
    _odoo_totals,
    _run_shift,
)

pytestmark = pytest.mark.e2e

SEED = 20261204
CLIENTS = 6
ORDERS = int(os.environ.get("MES_CHAOS_ORDERS", "20"))
SCALE = max(1, ORDERS // 20)
DELIVERY_SECONDS = 300 * SCALE


def _lots_for_a_bigger_run(rpc):
    """The demo's lots of the lot-tracked component hold enough for a few shifts of 20."""
    for lot in rpc("stock.lot", "search_read", [("name", "like", "PH-2611-")], ["product_id"]):
        quant = rpc(
            "stock.quant",
            "create",
            {
                "product_id": lot["product_id"][0],
                "lot_id": lot["id"],
                "location_id": rpc("stock.warehouse", "search_read", [], ["lot_stock_id"], limit=1)[
                    0
                ]["lot_stock_id"][0],
                "inventory_quantity": 1000 * SCALE,
            },
            context={"inventory_mode": True},
        )
        # Over JSON-RPC: the action answers None, which XML-RPC cannot carry.
        answer = requests.post(
            f"{rpc.url}/jsonrpc",
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "params": {
                    "service": "object",
                    "method": "execute_kw",
                    "args": [
                        *(rpc.db, rpc.uid, "admin"),
                        *("stock.quant", "action_apply_inventory", [[quant]], {}),
                    ],
                },
            },
            timeout=60,
        ).json()
        assert "error" not in answer, answer


def _requests_of_clients(events, rng):
    """What each client sends: each event 1-3 times in all, singles and overlapping batches."""
    copies = [event for event in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(copies)
    clients = [[] for _ in range(CLIENTS)]
    for event in copies:
        clients[rng.randrange(CLIENTS)].append(event)
    plans = []
    for mine in clients:
        plan, index = [], 0
        while index < len(mine):
            if rng.random() < 0.5:
                plan.append(mine[index])
                index += 1
                continue
            size = rng.randint(2, 12)
            # A batch also carries a few events other clients send too (a middleware
            # that resends the window around what it was told failed).
            batch = mine[index : index + size] + rng.sample(events, 3)
            rng.shuffle(batch)
            plan.append({"events": batch})
            index += size
        plans.append(plan)
    return plans


class Delivery:
    """The clients, sending until each request is answered as stored."""

    def __init__(self, url, key, plans):
        self.url = url
        self.key = key
        self.plans = plans
        self.sent = 0
        self.total = sum(len(plan) for plan in plans)
        self.resent = {"transport": 0, "5xx": 0}
        self.failures = []
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + DELIVERY_SECONDS

    def _send(self, session, body):
        while time.monotonic() < self.deadline:
            try:
                response = session.post(
                    self.url,
                    data=json.dumps(body),
                    headers={"Content-Type": "application/json", "X-API-Key": self.key},
                    timeout=120,
                )
            except requests.RequestException:
                with self.lock:
                    self.resent["transport"] += 1
                time.sleep(0.5)
                continue
            if response.status_code in (200, 202):
                return
            if response.status_code >= 500:
                with self.lock:
                    self.resent["5xx"] += 1
                time.sleep(float(response.headers.get("Retry-After") or 0.5))
                continue
            with self.lock:
                self.failures.append((response.status_code, response.text[:300]))
            return
        with self.lock:
            self.failures.append(("not stored in time", json.dumps(body)[:200]))

    def _client(self, plan):
        session = requests.Session()
        for body in plan:
            self._send(session, body)
            with self.lock:
                self.sent += 1

    def run(self, when_half_sent):
        threads = [threading.Thread(target=self._client, args=(plan,)) for plan in self.plans]
        for thread in threads:
            thread.start()
        wait_for(lambda: self.sent >= self.total // 2, DELIVERY_SECONDS, "half of the requests")
        when_half_sent()
        for thread in threads:
            thread.join()


def test_a_shift_delivered_duplicated_shuffled_concurrently_through_crashes_posts_the_mes_totals(
    production, tmp_path_factory
):
    rpc = production
    backend_id = rpc("mes.backend", "search", [("code", "=", "SIM")])[0]
    mes_key = uuid.uuid4().hex
    # The MES keeps its events in its feed; the test is the middleware that delivers them.
    feed = Simulator(None, "SIM", mes_key, None, tmp_path_factory.mktemp("chaos")).start()
    key = new_inbound_key(rpc, backend_id)
    rpc(
        "mes.backend",
        "write",
        [backend_id],
        {"base_url": feed.url, "outbound_api_key_input": mes_key, "pull_enabled": False},
    )
    try:
        if SCALE > 1:
            _lots_for_a_bigger_run(rpc)
        orders = _confirm_shift(rpc, [SHIFT[i % len(SHIFT)] for i in range(ORDERS)])
        mes = _run_shift(feed, orders)
        events = [
            item["body"]
            for item in feed.get("/events?after=0&limit=5000")["events"]
            if item["body"]["order_ref"] in orders
        ]
        assert len({e["event_id"] for e in events}) == len(events) > ORDERS * 5
        downtimes = [e for e in events if e["event_type"] == "downtime_started"]
        assert len({e["order_ref"] for e in downtimes}) >= 4, "downtimes of several orders"

        delivery = Delivery(
            f"{rpc.url}/mes/api/v1/SIM/events",
            key,
            _requests_of_clients(events, random.Random(SEED)),
        )
        began = time.monotonic()
        delivery.run(when_half_sent=rpc.crash_and_restart)
        delivered = time.monotonic()
        assert not delivery.failures, delivery.failures[:5]
        copies = sum(len(body.get("events", [body])) for plan in delivery.plans for body in plan)
        print(
            f"\n{ORDERS} orders, {len(events)} events, {copies} deliveries of them in "
            f"{delivery.total} requests from {CLIENTS} clients; sent again: {delivery.resent}; "
            f"delivered in {delivered - began:.1f} s with one crash"
        )

        inbound = [
            ("backend_id", "=", backend_id),
            ("direction", "=", "inbound"),
            ("order_ref", "in", list(orders)),
        ]
        assert rpc("mes.message", "search_count", inbound) == len(events)
        # Killed again while the queue drains.
        processed = [*inbound, ("state", "=", "processed")]
        at_kill = wait_for(
            lambda: rpc("mes.message", "search_count", processed),
            120,
            "the queue to start posting",
            interval=0.2,
        )
        assert at_kill < len(events), "the crash came after everything was posted"
        rpc.crash_and_restart()
        print(f"killed while draining, {at_kill} of {len(events)} posted")

        def done():
            errors = rpc(
                "mes.message",
                "search_read",
                [*inbound, ("state", "=", "error")],
                ["order_ref", "sequence", "error_cause", "error_text"],
            )
            assert not errors, errors
            states = rpc("mrp.production", "read", list(orders.values()), ["state"])
            return all(s["state"] == "done" for s in states) and rpc(
                "mes.message", "search_count", processed
            ) == len(events)

        wait_for(done, 600 * SCALE, "every order done and every message posted", interval=2)
        drained = time.monotonic()
        print(
            f"posted in {drained - delivered:.1f} s after the delivery with one crash "
            f"({len(events) / (drained - delivered):.1f} events/s, "
            f"{ORDERS / (drained - delivered):.2f} orders/s)"
        )
        assert rpc("mes.message", "search_count", inbound) == len(events)
        _assert_same(_odoo_totals(rpc, orders, backend_id), mes)
        _assert_reconciled(rpc, orders)
    finally:
        feed.stop()
