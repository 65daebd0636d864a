import json
from datetime import timedelta

from lxml import etree

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.tests.common import trap_jobs

from mes_connector import order_idempotency_key, validate_order
from mes_connector.b2mml import production_schedule_to_order

from .common import MesCase, recent


class TestExport(MesCase):
    def test_confirm_writes_outbox_message_and_enqueues_delivery(self):
        production = self._production(qty=3)
        with trap_jobs() as trap:
            production.action_confirm()
            message = production.mes_message_ids
            self.assertEqual(len(message), 1)
            trap.assert_jobs_count(1, only=message._send)
        self.assertEqual(message.direction, "outbound")
        self.assertEqual(message.state, "pending")
        self.assertEqual(production.mes_state, "pending")
        self.assertEqual(production.mes_revision, 1)
        document = json.loads(message.payload)
        validate_order(document)
        self.assertEqual(document["order_id"], production.name)
        self.assertEqual(document["product"]["code"], "T-PUMP")
        self.assertEqual(document["quantity"], 3)
        self.assertEqual(
            {c["product"]["code"]: c["quantity"] for c in document["components"]},
            {"T-HOUS": 3, "T-SCR": 12},
        )
        housing = next(c for c in document["components"] if c["product"]["code"] == "T-HOUS")
        self.assertEqual(housing["product"]["tracking"], "lot")
        self.assertEqual(housing["operation_sequence"], 10)
        self.assertEqual([o["resource"] for o in document["operations"]], ["T-ASM", "T-PACK"])
        self.assertEqual(document["finished_lots"], [])
        uuid = self.env["ir.config_parameter"].get_param("database.uuid")
        self.assertEqual(
            message.external_id, order_idempotency_key(f"{uuid}/TEST", production.name, 1)
        )
        self.assertTrue(message.job_uuid)

    def test_by_products_are_sent(self):
        self.env.user.groups_id += self.env.ref("mrp.group_mrp_byproducts")
        chips = self.env["product.product"].create(
            {"name": "Chips", "default_code": "T-CHIPS", "is_storable": True}
        )
        self.bom.byproduct_ids = [
            Command.create(
                {
                    "product_id": chips.id,
                    "product_qty": 0.5,
                    "operation_id": self.bom.operation_ids[0].id,
                }
            )
        ]
        production = self._production(qty=4)
        with trap_jobs():
            production.action_confirm()
        document = json.loads(production.mes_message_ids.payload)
        self.assertEqual(
            document["byproducts"],
            [
                {
                    "product": {"code": "T-CHIPS", "name": "Chips", "tracking": "none"},
                    "quantity": 2.0,
                    "uom": "Units",
                    "operation_sequence": 10,
                }
            ],
        )

    def test_pre_assigned_finished_lot_is_sent(self):
        self.pump.tracking = "lot"
        lot = self.env["stock.lot"].create({"name": "PUMP-LOT-9", "product_id": self.pump.id})
        production = self._production(qty=2)
        production.lot_producing_id = lot
        with trap_jobs():
            production.action_confirm()
        document = json.loads(production.mes_message_ids.payload)
        self.assertEqual(document["finished_lots"], ["PUMP-LOT-9"])
        self.assertEqual(document["product"]["tracking"], "lot")

    def test_b2mml_backend_sends_a_production_schedule(self):
        self.backend.payload_format = "b2mml"
        production = self._production(qty=4)
        with trap_jobs() as trap:
            production.action_confirm()
            message = production.mes_message_ids
            self.assertEqual(message.payload_format, "xml")
            self.assertIn("<ProductionSchedule", message.payload)

            # B2MML groups components under their operation: compare them in one order.
            def normalised(order):
                components = sorted(order["components"], key=lambda c: c["product"]["code"])
                return dict(order, components=components)

            self.assertEqual(
                normalised(production_schedule_to_order(message.payload.encode())),
                normalised(json.loads(production.mes_document)),
            )
            trap.perform_enqueued_jobs()
        self.assertEqual(message.state, "acknowledged")
        held = self.simulator.store.order(production.name)
        self.assertEqual((held["quantity"], held["payload"]["product"]["code"]), (4, "T-PUMP"))

    def test_b2mml_orders_may_travel_in_their_transaction(self):
        self.backend.write(
            {"payload_format": "b2mml", "b2mml_transaction": True, "b2mml_logical_id": "ODOO-7"}
        )
        production = self._production(qty=4)
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
        first = production.mes_message_ids
        self.assertEqual(first.state, "acknowledged")  # the simulator read it
        document = etree.fromstring(first.payload.encode())
        ns = {"b": "http://www.mesa.org/xml/B2MML-V0600"}
        self.assertEqual(etree.QName(document).localname, "ProcessProductionSchedule")
        self.assertEqual(
            (
                document.findtext("b:ApplicationArea/b:Sender/b:LogicalID", namespaces=ns),
                document.findtext("b:ApplicationArea/b:BODID", namespaces=ns),
            ),
            ("ODOO-7", first.external_id),
        )
        self.assertEqual(self.simulator.store.order(production.name)["quantity"], 4)
        # Its next revision changes it.
        with trap_jobs() as trap:
            production.with_context(tracking_disable=True).product_qty = 5
            self.env.cr.precommit.run()
            trap.perform_enqueued_jobs()
        second = production.mes_message_ids.filtered(lambda m: m.revision == 2)
        self.assertEqual(
            etree.QName(etree.fromstring(second.payload.encode())).localname,
            "ChangeProductionSchedule",
        )
        self.assertEqual(second.state, "acknowledged")
        self.assertEqual(self.simulator.store.order(production.name)["quantity"], 5)

    def test_mes_answering_in_b2mml_transactions(self):
        """An MES that answers a Process with an AcknowledgeProductionSchedule names its
        order there; one that takes orders for later (echoing Odoo's id) still takes
        their cancellation: the order is cancelled on the MES, not left 'sent'."""
        self.backend.write({"payload_format": "b2mml", "b2mml_transaction": True})
        self.simulator.answer = "bod"
        self.addCleanup(setattr, self.simulator, "answer", "json")
        production = self._production(qty=2)
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
        held = self.simulator.store.order(production.name)
        self.assertEqual(
            (production.mes_state, production.mes_order_id),
            ("acknowledged", held["mes_order_id"]),
        )
        self.simulator.async_ack = True
        self.addCleanup(setattr, self.simulator, "async_ack", False)
        later = self._production(qty=3)
        with trap_jobs() as trap:
            later.action_confirm()
            trap.perform_enqueued_jobs()
        self.assertEqual((later.mes_state, later.mes_order_id), ("sent", False))
        with trap_jobs() as trap:
            later.action_cancel()
            trap.perform_enqueued_jobs()
        cancel = later.mes_message_ids.filtered(lambda m: m.order_action == "cancel")
        self.assertEqual(cancel.state, "acknowledged")
        self.assertEqual(later.mes_state, "cancelled")
        self.assertEqual(self.simulator.store.order(later.name)["status"], "cancelled")

    def test_delivery_reaches_mes_once(self):
        production = self._production()
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
        message = production.mes_message_ids
        self.assertEqual(message.state, "acknowledged")
        self.assertEqual(production.mes_state, "acknowledged")
        received = self.simulator.store.order(production.name)
        self.assertEqual(received["mes_order_id"], production.mes_order_id)
        self.assertEqual(received["deliveries"], 1)
        # A second delivery of the same message (a retry after a lost answer) is a
        # duplicate at the MES, and the order is still there once.
        message.state = "pending"
        message._send()
        self.assertEqual(self.simulator.store.order(production.name)["deliveries"], 2)
        self.assertEqual(message.state, "acknowledged")

    def test_mes_that_takes_orders_for_later_acknowledges_by_reporting(self):
        self.simulator.async_ack = True
        production = self._production(qty=1)
        try:
            with trap_jobs() as trap:
                production.action_confirm()
                trap.perform_enqueued_jobs()
        finally:
            self.simulator.async_ack = False
        export = production.mes_message_ids
        self.assertEqual((export.state, production.mes_state), ("sent", "sent"))
        mes_id = self.simulator.store.order(production.name)["mes_order_id"]
        event = {
            "schema": "mes.event/1",
            "event_id": f"ACK-{production.id}",
            "event_type": "order_started",
            "order_ref": production.name,
            "mes_order_id": mes_id,
            "occurred_at": recent(),
            "data": {},
        }
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            self.env["mes.message"].browse(answer["message_id"])._process()
        self.assertEqual((production.mes_state, production.mes_order_id), ("acknowledged", mes_id))
        self.assertEqual(export.state, "acknowledged")

    def test_mes_down_keeps_message_pending_and_retries(self):
        production = self._production()
        self.simulator.down = True
        with trap_jobs() as trap:
            production.action_confirm()
            with self.assertRaisesRegex(RetryableJobError, "HTTP 503"):
                trap.perform_enqueued_jobs()
        self.assertEqual(production.mes_message_ids.state, "pending")
        self.assertEqual(production.mes_state, "pending")
        self.assertIsNone(self.simulator.store.order(production.name))

    def test_mes_rejection_shows_mes_reason(self):
        production = self._production()
        with trap_jobs():
            production.action_confirm()
        message = production.mes_message_ids
        document = json.loads(message.payload)
        document["quantity"] = -1
        message.sudo().payload = json.dumps(document)
        message._send()
        self.assertEqual(message.state, "rejected")
        self.assertEqual(message.error_code, "mes_http_422")
        self.assertIn("quantity", message.error_text)
        self.assertEqual(production.mes_state, "rejected")

    def test_product_without_code_blocks_confirmation(self):
        self.pump.default_code = False
        production = self._production()
        with self.assertRaisesRegex(UserError, "Internal Reference"):
            production.action_confirm()
        self.assertFalse(self.env["mes.message"].search([("order_ref", "=", production.name)]))

    def test_no_backend_no_export(self):
        self.backend.active = False
        production = self._production()
        production.action_confirm()
        self.assertEqual(production.mes_state, "not_sent")
        self.assertFalse(production.mes_message_ids)

    def test_failed_job_marks_message_failed(self):
        production = self._production()
        production.action_confirm()
        message = production.mes_message_ids
        job = self.env["queue.job"].search([("uuid", "=", message.job_uuid)])
        self.assertEqual(job.max_retries, self.backend.export_max_retries)
        eta = fields.Datetime.now() + timedelta(seconds=30)
        job.write({"state": "pending", "retry": 2, "result": "MES is not reachable", "eta": eta})
        self.assertEqual(message.state, "pending")
        self.assertEqual(message.attempt_count, 2)
        self.assertIn("MES is not reachable", message.error_text)
        self.assertEqual(message.next_attempt_at, eta)
        job.write({"state": "failed", "exc_message": "Max. retries (20) reached: MES down"})
        self.assertEqual(message.state, "failed")
        self.assertEqual(production.mes_state, "failed")
        self.assertIn("Max. retries", message.error_text)
        with trap_jobs() as trap:
            message.action_retry()
            trap.assert_jobs_count(1, only=message._send)
        # Tried at once (the MES is back): delivered.
        self.assertEqual((message.state, production.mes_state), ("acknowledged", "acknowledged"))


class TestRevisions(MesCase):
    def _exported(self, qty=5):
        production = self._production(qty=qty)
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
        self.assertEqual(production.mes_state, "acknowledged")
        return production

    def _commit(self):
        # Changes are compared once, in precommit, as at the end of a real transaction.
        self.env.cr.flush()

    def _exports(self, production):
        return production.mes_message_ids.filtered(lambda m: m.direction == "outbound").sorted(
            "revision"
        )

    def test_quantity_change_after_export_sends_revision_2(self):
        production = self._exported(qty=5)
        with trap_jobs() as trap:
            self.env["change.production.qty"].create(
                {"mo_id": production.id, "product_qty": 8}
            ).change_prod_qty()
            production.date_start = production.date_start  # several writes, one revision
            self._commit()
            exports = self._exports(production)
            self.assertEqual(exports.mapped("revision"), [1, 2])
            trap.perform_enqueued_jobs()
        change = json.loads(exports[1].payload)
        self.assertEqual(
            (change["revision"], change["action"], change["quantity"]), (2, "change", 8)
        )
        screws = next(c for c in change["components"] if c["product"]["code"] == "T-SCR")
        self.assertEqual(screws["quantity"], 32)
        held = self.simulator.store.order(production.name)
        self.assertEqual((held["revision"], held["quantity"]), (2, 8))
        self.assertEqual(production.mes_revision, 2)
        self.assertEqual(production.mes_state, "acknowledged")

    def test_write_that_changes_nothing_for_the_mes_sends_nothing(self):
        production = self._exported()
        with trap_jobs() as trap:
            production.write({"product_qty": production.product_qty, "origin": production.origin})
            production.user_id = self.env.user
            self._commit()
            trap.assert_jobs_count(0)
        self.assertEqual(len(self._exports(production)), 1)

    def test_cancel_sends_a_cancellation(self):
        production = self._exported()
        with trap_jobs() as trap:
            production.action_cancel()
            trap.perform_enqueued_jobs()
        cancel = self._exports(production)[-1]
        self.assertEqual(json.loads(cancel.payload)["action"], "cancel")
        self.assertEqual(cancel.state, "acknowledged")
        self.assertEqual(production.mes_state, "cancelled")
        self.assertEqual(self.simulator.store.order(production.name)["status"], "cancelled")

    def test_later_revision_never_overtakes_an_earlier_one(self):
        production = self._production(qty=5)
        self.simulator.down = True
        with trap_jobs():
            production.action_confirm()
            production.product_qty = 6
            self._commit()
            first, second = self._exports(production)
            with self.assertRaisesRegex(RetryableJobError, "HTTP 503"):
                first._send()
            self.simulator.down = False
            with self.assertRaisesRegex(RetryableJobError, "revision 1 .* not delivered"):
                second._send()
            self.assertIsNone(self.simulator.store.order(production.name))
            first._send()
            second._send()
        self.assertEqual((first.state, second.state), ("acknowledged", "acknowledged"))
        self.assertEqual(self.simulator.store.order(production.name)["revision"], 2)

    def test_mes_reports_do_not_echo_back_as_changes(self):
        production = self._exported()
        event = {
            "schema": "mes.event/1",
            "event_id": f"ECHO-{production.id}",
            "event_type": "order_started",
            "order_ref": production.name,
            "occurred_at": recent(),
            "data": {},
        }
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            self.env["mes.message"].browse(answer["message_id"])._process()
            self._commit()
        self.assertEqual(production.state, "progress")
        self.assertEqual(len(self._exports(production)), 1)


class TestReleaseAndCutover(MesCase):
    def _confirm(self, production):
        with trap_jobs() as trap:
            production.action_confirm()
        return trap

    def test_manual_trigger_waits_for_release(self):
        self.backend.export_trigger = "manual"
        production = self._production()
        self._confirm(production)
        self.assertEqual(production.mes_state, "not_sent")
        other = self._production()
        self._confirm(other)
        with trap_jobs() as trap:
            (production | other).action_mes_release()
            trap.assert_jobs_count(2)
            trap.perform_enqueued_jobs()
        self.assertEqual((production | other).mapped("mes_state"), ["acknowledged"] * 2)
        with self.assertRaisesRegex(UserError, "confirmed"):
            self._production().action_mes_release()

    def test_planning_horizon(self):
        self.backend.write({"export_trigger": "horizon", "horizon_days": 2})
        soon = self._production()
        soon.date_start = fields.Datetime.now() + timedelta(days=1)
        later = self._production()
        later.date_start = fields.Datetime.now() + timedelta(days=10)
        self._confirm(soon | later)
        self.assertEqual((soon | later).mapped("mes_state"), ["not_sent", "not_sent"])
        widget = self.env["product.product"].create({"name": "Widget", "is_storable": True})
        no_code = self.env["mrp.production"].create(
            {"product_id": widget.id, "product_qty": 1, "date_start": soon.date_start}
        )
        self._confirm(no_code)
        with trap_jobs() as trap:
            self.env["mes.backend"]._cron_release_horizon()
            trap.assert_jobs_count(1)
        self.assertEqual((soon.mes_state, later.mes_state), ("pending", "not_sent"))
        # An order that cannot be sent does not stop the others, says why, and is tried
        # again at the next run once it is fixed.
        self.assertEqual(no_code.mes_state, "not_sent")
        self.assertIn("Internal Reference", no_code.mes_export_error)
        self.assertIn("Internal Reference", no_code.message_ids[0].body)
        widget.default_code = "T-WIDGET"
        with trap_jobs() as trap:
            self.env["mes.backend"]._cron_release_horizon()
            trap.assert_jobs_count(1)
        self.assertEqual((no_code.mes_state, no_code.mes_export_error), ("pending", False))

    def test_phased_go_live(self):
        self.wc_asm.mes_live = False
        self.wc_pack.mes_live = False
        production = self._production()
        self._confirm(production)
        self.assertEqual(production.mes_state, "not_sent")
        with self.assertRaisesRegex(UserError, "not live"):
            production.action_mes_release()
        self.wc_pack.mes_live = True  # one work center of the routing is live: it goes
        with trap_jobs() as trap:
            production.action_mes_release()
            trap.assert_jobs_count(1)
        warehouse = production.picking_type_id.warehouse_id
        warehouse.mes_live = False
        closed_plant = self._production()
        self._confirm(closed_plant)
        self.assertEqual(closed_plant.mes_state, "not_sent")

    def test_adopted_order_is_not_sent_and_its_events_post(self):
        self.backend.export_trigger = "manual"
        production = self._production(qty=2)
        self._confirm(production)
        wizard = self.env["mes.adopt.wizard"].create(
            {"production_id": production.id, "mes_order_id": " LEGACY-77 "}
        )
        with trap_jobs() as trap:
            wizard.action_confirm()
            production.action_confirm()
            trap.assert_jobs_count(0)
        self.assertEqual(
            (production.mes_state, production.mes_order_id, production.mes_adopted),
            ("acknowledged", "LEGACY-77", True),
        )
        self.assertFalse(production.mes_message_ids)
        with self.assertRaisesRegex(UserError, "already known"):
            production._mes_adopt("LEGACY-78")
        event = {
            "schema": "mes.event/1",
            "event_id": "LEGACY-77-1",
            "event_type": "order_completed",
            "order_ref": production.name,
            "mes_order_id": "LEGACY-77",
            "occurred_at": recent(),
            "data": {"quantity": 2, "uom": "Units"},
        }
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            message = self.env["mes.message"].browse(answer["message_id"])
            message._process()
        self.assertEqual(message.state, "processed", message.error_text)
        self.assertEqual(production.state, "done")


class TestAccessAndCancelPaths(MesCase):
    def _exported(self, production):
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
        return production

    def test_mrp_user_without_mes_group_confirms_and_cancels(self):
        worker = new_test_user(
            self.env, "mrp_only", groups="mrp.group_mrp_user,stock.group_stock_user"
        )
        production = self._production().with_user(worker)
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
            self.assertEqual(production.sudo().mes_state, "acknowledged")
            production.action_cancel()
            trap.perform_enqueued_jobs()
        self.assertEqual(production.sudo().mes_state, "cancelled")

    def test_merged_orders_are_cancelled_in_the_mes(self):
        first = self._exported(self._production(qty=1))
        second = self._exported(self._production(qty=2))
        with trap_jobs() as trap:
            (first | second).action_merge()
            trap.perform_enqueued_jobs()
        for production in first | second:
            self.assertEqual(production.state, "cancel")
            self.assertEqual(production.mes_state, "cancelled")
            self.assertEqual(self.simulator.store.order(production.name)["status"], "cancelled")

    def test_planner_changes_messages_only_through_actions(self):
        planner = new_test_user(self.env, "mes_planner_x", groups="mes_base.group_mes_user")
        production = self._exported(self._production())
        export = production.mes_message_ids.with_user(planner)
        with self.assertRaises(AccessError):
            export.write({"state": "error"})
        with self.assertRaisesRegex(UserError, "can be retried"):
            export.action_retry()
        self.assertEqual(export.state, "acknowledged")

    def test_message_whose_job_failed_can_be_retried(self):
        production = self._production()
        production.action_confirm()  # jobs stored, not run
        export = production.mes_message_ids
        job = self.env["queue.job"].search([("uuid", "=", export.job_uuid)])
        # A failure the hook could not copy (the message row was locked): state unchanged.
        self.env.cr.execute("UPDATE queue_job SET state = 'failed' WHERE id = %s", (job.id,))
        self.env.invalidate_all()
        self.assertEqual(export.state, "pending")
        with trap_jobs() as trap:
            export.action_retry()
            trap.assert_jobs_count(1, only=export._send)

    def test_a_revision_below_one_still_standing_is_not_withdrawn_alone(self):
        production = self._exported(self._production(qty=3))
        self.simulator.down = True
        with trap_jobs():
            production.product_qty = 4
            self.env.cr.flush()
            production.product_qty = 5
            self.env.cr.flush()
        second, third = production.mes_message_ids.filtered("revision").sorted("revision")[1:]
        self.assertEqual((second.revision, third.revision), (2, 3))
        with self.assertRaisesRegex(UserError, "Revision 2 of .* revision 3 comes after it"):
            second.action_cancel("wrong quantity")
        self.assertEqual(second.state, "pending")
        # Latest first, or both at once: the order is back at the revision the MES holds.
        (second | third).action_cancel("wrong quantities")
        self.assertEqual((production.mes_state, production.mes_revision), ("acknowledged", 1))
        self.simulator.down = False
        with trap_jobs() as trap:
            production.product_qty = 6
            self.env.cr.flush()
            trap.perform_enqueued_jobs()
        fourth = production.mes_message_ids.filtered(lambda m: m.state != "cancelled").sorted(
            "revision"
        )[-1]
        self.assertEqual((fourth.revision, fourth.state), (2, "acknowledged"))
        self.assertEqual(self.simulator.store.order(production.name)["revision"], 2)

    def test_withdrawn_revision_gives_its_number_to_the_next(self):
        production = self._exported(self._production(qty=3))
        self.simulator.down = True
        with trap_jobs():
            production.product_qty = 4
            self.env.cr.flush()
        change = production.mes_message_ids.filtered(lambda m: m.revision == 2)
        self.assertEqual(production.mes_revision, 2)
        change.action_cancel("superseded")
        self.assertEqual((production.mes_state, production.mes_revision), ("acknowledged", 1))
        self.simulator.down = False
        with trap_jobs() as trap:
            production.action_cancel()
            cancel = production.mes_message_ids.filtered(lambda m: m.state != "cancelled").sorted(
                "revision"
            )[-1]
            self.assertEqual((cancel.revision, cancel.order_action), (2, "cancel"))
            self.assertEqual(cancel.external_id, change.external_id)
            trap.perform_enqueued_jobs()
        self.assertEqual(cancel.state, "acknowledged")
        held = self.simulator.store.order(production.name)
        self.assertEqual((held["status"], held["revision"]), ("cancelled", 2))
        self.assertEqual(production.mes_state, "cancelled")


class TestFinishedBeforeTheMesTookIt(MesCase):
    def test_an_order_finished_in_odoo_first_is_not_sent(self):
        production = self._production(qty=1)
        with trap_jobs() as trap:
            production.action_confirm()
            export = production.mes_message_ids
            self.assertEqual(export.state, "pending")
            # Closed by hand while the MES was away.
            production.action_assign()
            production.qty_producing = 1
            production.move_raw_ids.picked = True
            production.with_context(skip_consumption=True, skip_backorder=True).button_mark_done()
            self.assertEqual(production.state, "done")
            trap.perform_enqueued_jobs()
        self.assertEqual(export.state, "cancelled")
        self.assertEqual(
            export.cancel_reason,
            f"Not sent: {production.name} was finished in Odoo before the MES took it.",
        )
        self.assertEqual(production.mes_state, "not_sent")
        self.assertIsNone(self.simulator.store.order(production.name))
