import json
from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.queue_job.tests.common import trap_jobs

from .common import MesCase, recent


@tagged("post_install", "-at_install")
class TestDashboardTours(MesCase, HttpCase):
    """Each dashboard in the browser (Debian's chromium), as a user of its group."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write({"name": "Tour MES", "consumption_owner": "mes"})
        cls.planner = new_test_user(
            cls.env,
            "mes_tour_planner",
            password="mes_tour_planner",
            groups="mes_base.group_mes_user,stock.group_stock_user",
        )
        cls.integrator = new_test_user(
            cls.env,
            "mes_tour_integrator",
            password="mes_tour_integrator",
            groups="mes_base.group_mes_manager",
        )
        cls.storekeeper = new_test_user(
            cls.env,
            "mes_tour_store",
            password="mes_tour_store",
            groups="stock.group_stock_user,mrp.group_mrp_user",
        )

    def _confirmed(self, qty=1):
        production = self._production(qty=qty)
        with trap_jobs():
            production.action_confirm()
        return production

    def _consume(self, production, data, event_id):
        event = {
            "schema": "mes.event/1",
            "event_id": event_id,
            "event_type": "material_consumed",
            "order_ref": production.name,
            "sequence": 1,
            "occurred_at": recent(),
            "data": data,
        }
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            message = self.env["mes.message"].browse(answer["message_id"])
            message._process()
        return message

    def _waiting_for_lot(self, lot, event_id):
        """A confirmed order whose report of a housing of ``lot`` waits for the lot."""
        production = self._confirmed()
        waiting = self._consume(
            production,
            {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": lot},
            event_id,
        )
        self.assertEqual(waiting.state, "waiting")
        return production, waiting

    def _store_event(self, production, data, event_id, sequence=2):
        """Stored behind the others of its order, not processed."""
        event = {
            "schema": "mes.event/1",
            "event_id": event_id,
            "event_type": "material_consumed",
            "order_ref": production.name,
            "sequence": sequence,
            "occurred_at": recent(),
            "data": data,
        }
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
        return self.env["mes.message"].browse(answer["message_id"])

    def _action_url(self, xmlid):
        return f"/odoo/action-{xmlid}"

    def test_planner_follows_a_cause_and_retries_the_fixed_error(self):
        production = self._confirmed()
        message = self._consume(
            production, {"product": "TOUR-42", "quantity": 2, "uom": "Units"}, "TOUR-EV-1"
        )
        self.assertEqual(message.error_cause, "unmapped_product: TOUR-42")
        # The integrator maps the code; the planner retries from the dashboard.
        self._map("product", "TOUR-42", product_id=self.screw)
        self.start_tour(
            self._action_url("mes_base.mes_dashboard_planner_action"),
            "mes_planner_dashboard",
            login="mes_tour_planner",
        )
        # Tried at once, in the planner's request: posted, as the integration user.
        message.invalidate_recordset()
        self.assertEqual(message.state, "processed")
        self.assertEqual(message.attempt_count, 2)
        self.assertEqual(message.write_uid, self.backend.user_id)
        move = production.move_raw_ids.filtered(lambda m: m.product_id == self.screw)
        self.assertEqual(move.quantity, 2)

    def test_warehouse_sees_unknown_lots_and_negative_stock(self):
        self._consume(
            self._confirmed(),
            {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": "TOUR-LOT-9"},
            "TOUR-EV-2",
        )
        self.env["stock.quant"]._update_available_quantity(self.screw, self.stock_location, -499)
        production = self._confirmed()
        self._consume(production, {"product": "T-SCR", "quantity": 4, "uom": "Units"}, "TOUR-EV-3")
        production.move_raw_ids.filtered(lambda m: m.product_id == self.screw).picked = True
        production.move_raw_ids.filtered(lambda m: m.product_id != self.screw).picked = False
        production.with_context(skip_consumption=True).button_mark_done()
        self.assertEqual(production.state, "done")
        self.start_tour(
            self._action_url("mes_base.mes_dashboard_warehouse_action"),
            "mes_warehouse_dashboard",
            login="mes_tour_planner",
        )

    def test_integrator_sees_contact_and_backlog(self):
        self._production(qty=1).action_confirm()  # an export waiting in the queue
        self.start_tour(
            self._action_url("mes_base.mes_dashboard_health_action"),
            "mes_health_dashboard",
            login="mes_tour_integrator",
        )

    def test_users_without_the_group_cannot_open_them(self):
        self.authenticate("mes_tour_store", "mes_tour_store")
        for name in ("planner", "warehouse", "health"):
            result = self.url_open(
                "/web/dataset/call_kw/mes.dashboard/get_dashboard",
                data=json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "call",
                        "id": 1,
                        "params": {
                            "model": "mes.dashboard",
                            "method": "get_dashboard",
                            "args": [name],
                            "kwargs": {},
                        },
                    }
                ),
                headers={"Content-Type": "application/json"},
            ).json()
            self.assertEqual(result["error"]["data"]["name"], "odoo.exceptions.AccessError", name)
        self.authenticate("mes_tour_planner", "mes_tour_planner")
        menus = self.url_open("/web/webclient/load_menus/1").json()
        labels = {menu["name"] for menu in menus.values() if isinstance(menu, dict)}
        self.assertIn("Exceptions", labels)
        self.assertNotIn("Integration health", labels)

    def test_planner_fixes_a_missing_lot_from_the_dashboard(self):
        _production, waiting = self._waiting_for_lot("TOUR-LOT-5", "TOUR-FIX-1")
        self.start_tour(
            self._action_url("mes_base.mes_dashboard_planner_action"),
            "mes_planner_fixes_a_lot",
            login="mes_tour_planner",
        )
        lot = self.env["stock.lot"].search([("name", "=", "TOUR-LOT-5")])
        self.assertEqual(lot.product_id, self.housing)
        # Odoo's own rule: a lot belongs to its product's company (none here: shared).
        self.assertFalse(lot.company_id)
        # The lot known, the report posts at its next try (here: now).
        with trap_jobs():
            waiting._process()
        self.assertEqual(waiting.state, "processed", waiting.error_text)

    def test_integrator_is_refused_an_address_odoo_cannot_call(self):
        url = self.backend.base_url
        self.start_tour(
            f"/odoo/action-mes_base.mes_backend_action/{self.backend.id}",
            "mes_integrator_bad_url",
            login="mes_tour_integrator",
        )
        self.backend.invalidate_recordset(["base_url"])
        self.assertEqual(self.backend.base_url, url)

    def test_planner_sees_what_holds_up_an_order_and_opens_it(self):
        production, waiting = self._waiting_for_lot("TOUR-LOT-7", "TOUR-ORD-1")
        behind = self._store_event(
            production, {"product": "T-SCR", "quantity": 4, "uom": "Units"}, "TOUR-ORD-2"
        )
        # Its lane's job runs: the head still waits, the report behind it shows under
        # the order.
        with trap_jobs():
            behind._process()
        self.assertEqual((waiting.state, behind.state), ("waiting", "received"))
        self.assertEqual(behind.production_id, production)
        self.start_tour(
            f"/odoo/action-mrp.mrp_production_action/{production.id}",
            "mes_planner_order",
            login="mes_tour_planner",
        )

    def test_planner_reads_the_shop_floor_and_opens_a_stop(self):
        oven = self.env["mrp.workcenter"].create(
            {"name": "Tour Oven", "resource_calendar_id": False}
        )
        breakdown = self.env["mrp.workcenter.productivity.loss"].create(
            {
                "name": "Breakdown (tour)",
                "loss_id": self.env.ref("mrp.block_reason1").loss_id.id,
            }
        )
        now = fields.Datetime.now()
        self.env["mrp.workcenter.productivity"].create(
            {
                "workcenter_id": oven.id,
                "loss_id": breakdown.id,
                "date_start": now - timedelta(hours=3),
                "date_end": now - timedelta(hours=2, minutes=15),
                "company_id": self.company.id,
                "mes_backend_id": self.backend.id,
                "mes_downtime_ref": "TOUR-DT-1",
            }
        )
        self.start_tour(
            self._action_url("mes_base.mes_dashboard_shopfloor_action"),
            "mes_shop_floor_dashboard",
            login="mes_tour_planner",
        )
