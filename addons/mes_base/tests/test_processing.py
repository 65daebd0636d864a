import json
from datetime import timedelta

from odoo import fields

from odoo.addons.queue_job.tests.common import trap_jobs

from .common import MesCase


class TestProcessing(MesCase):
    def _receive(self, event):
        with trap_jobs() as trap:
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            message = self.env["mes.message"].browse(answer["message_id"])
            if answer["status"] == "accepted":
                trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
        return answer, message

    def _confirmed(self, qty=5):
        production = self._production(qty=qty)
        with trap_jobs():
            production.action_confirm()
        return production

    def _available(self, product, lot=None):
        """On hand in WH/Stock (reserved or not), for one lot if given."""
        domain = [("product_id", "=", product.id), ("location_id", "=", self.stock_location.id)]
        if lot:
            domain.append(("lot_id", "=", lot.id))
        return sum(self.env["stock.quant"].search(domain).mapped("quantity"))

    def test_completion_posts_consumption_output_and_closes_order(self):
        production = self._confirmed(qty=5)
        housing_before = self._available(self.housing, self.lot_a)
        screws_before = self._available(self.screw)
        answer, message = self._receive(self._event(production, "EV-1"))
        self.assertEqual(answer["status"], "accepted")
        self.assertEqual(message.state, "received")
        message._process()
        self.assertEqual(message.state, "processed", message.error_text)
        self.assertEqual(production.state, "done")
        self.assertEqual(production.qty_produced, 5)
        self.assertEqual(self._available(self.pump), 5)
        self.assertEqual(housing_before - self._available(self.housing, self.lot_a), 5)
        self.assertEqual(screws_before - self._available(self.screw), 20)
        housing_move = production.move_raw_ids.filtered(lambda m: m.product_id == self.housing)
        self.assertEqual(housing_move.move_line_ids.lot_id, self.lot_a)
        self.assertEqual(message.production_id, production)
        self.assertEqual(
            set(message.move_ids.product_id.ids), {self.pump.id, self.housing.id, self.screw.id}
        )
        self.assertTrue(all(wo.state == "done" for wo in production.workorder_ids))

    def test_processing_twice_posts_once(self):
        production = self._confirmed(qty=2)
        _answer, message = self._receive(self._event(production, "EV-2"))
        message._process()
        stock_after_first = self._available(self.pump)
        self.assertEqual(message._process(), "0 message(s) applied")
        self.assertIn("nothing to do", message._process_one())
        self.assertEqual(self._available(self.pump), stock_after_first)
        self.assertEqual(production.qty_produced, 2)

    def test_unit_conversion(self):
        production = self._confirmed(qty=24)
        _answer, message = self._receive(self._event(production, "EV-3", quantity=2, uom="Dozens"))
        message._process()
        self.assertEqual(message.state, "processed", message.error_text)
        self.assertEqual(production.qty_produced, 24)

    def test_less_than_planned_closes_without_backorder(self):
        production = self._confirmed(qty=10)
        _answer, message = self._receive(self._event(production, "EV-4", quantity=7))
        message._process()
        self.assertEqual(production.state, "done")
        self.assertEqual(production.qty_produced, 7)
        self.assertEqual(len(production.procurement_group_id.mrp_production_ids), 1)
        consumed = production.move_raw_ids.filtered(lambda m: m.product_id == self.screw).quantity
        self.assertEqual(consumed, 28)

    def test_unknown_order_waits_then_is_an_error_naming_it(self):
        production = self._confirmed()
        event = self._event(production, "EV-5")
        event["order_ref"] = "NO/SUCH/ORDER"
        _answer, message = self._receive(event)
        with trap_jobs() as trap:
            message._process()
            self.assertEqual(message.state, "waiting")
            self.assertIn("NO/SUCH/ORDER", message.error_text)
            self.assertEqual(message.error_cause, "unknown_order: NO/SUCH/ORDER")
            trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
            self.assertGreater(trap.enqueued_jobs[0].eta, fields.Datetime.now())
        # After the backend's waiting time, it is an error that says what it waited for.
        message.waiting_since = fields.Datetime.now() - timedelta(minutes=61)
        with trap_jobs():
            message._process()
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "waited_too_long")
        self.assertIn("NO/SUCH/ORDER", message.error_text)
        # Still grouped with what it waited for: creating that order is the one fix.
        self.assertEqual(message.error_cause, "waited_too_long: unknown_order: NO/SUCH/ORDER")

    def test_unknown_unit_is_an_error_naming_it_and_retry_posts_after_fix(self):
        production = self._confirmed(qty=3)
        _answer, message = self._receive(self._event(production, "EV-6", uom="Stück"))
        message._process()
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "unmapped_uom")
        self.assertIn("data.uom", message.error_text)
        self.assertIn("'Stück'", message.error_text)
        self.assertEqual(production.state, "confirmed")
        self.assertFalse(production.move_raw_ids.filtered(lambda m: m.state == "done"))
        # The integrator adds the unit the MES uses; the planner retries.
        self.env["uom.uom"].create(
            {
                "name": "Stück",
                "category_id": self.uom_unit.category_id.id,
                "uom_type": "bigger",
                "factor_inv": 1,
            }
        )
        with trap_jobs():
            # One message retried is tried at once.
            message.action_retry()
        self.assertEqual(message.state, "processed", message.error_text)
        self.assertEqual(production.state, "done")

    def test_completion_on_done_order_is_an_error(self):
        production = self._confirmed(qty=1)
        _answer, first = self._receive(self._event(production, "EV-7"))
        first._process()
        _answer, second = self._receive(self._event(production, "EV-8"))
        second._process()
        self.assertEqual(second.state, "error")
        self.assertEqual(second.error_code, "order_closed")
        self.assertEqual(production.qty_produced, 1)

    def test_missing_lot_stock_is_an_error_and_nothing_is_posted(self):
        production = self._confirmed(qty=40)  # more housings than lot LOT-A holds
        _answer, message = self._receive(self._event(production, "EV-9"))
        message._process()
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "lot_missing")
        self.assertIn("Housing", message.error_text)
        self.assertEqual(production.state, "confirmed")
        self.assertEqual(self._available(self.pump), 0)

    def test_processing_runs_as_integration_user(self):
        production = self._confirmed(qty=1)
        with trap_jobs() as trap:
            event = self._event(production, "EV-10")
            self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            job = trap.enqueued_jobs[0]
        self.assertEqual(job.recordset.env.uid, self.backend.user_id.id)
        self.assertEqual(job.recordset.env.context["allowed_company_ids"], [self.company.id])
