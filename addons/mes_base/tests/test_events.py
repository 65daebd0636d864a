import json
import logging
from datetime import datetime, time, timedelta
from unittest.mock import patch

from psycopg2 import errors as pg_errors

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import TransactionCase, new_test_user

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.tests.common import trap_jobs

from mes_connector.exceptions import MesTransientError

from ..models import mes_message_importer as importer
from ..models.mes_message_intake import LANES_IN_REQUEST
from .common import MesCase, at, day, recent


class TestLaneJobFunction(TransactionCase):
    def test_a_lanes_job_may_commit_the_messages_it_applies(self):
        for name, method in (("run_lane", "_run_lane"), ("process", "_process")):
            function = self.env.ref(f"mes_base.job_function_mes_message_{name}")
            self.assertEqual((function.method, function.allow_commit), (method, True))
            self.assertEqual(function.channel_id.complete_name, "root.mes.import")


class EventCase(MesCase):
    """The MES owns consumption; events are built per type and run through intake."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write({"consumption_owner": "mes", "tolerance_over": 10, "tolerance_under": 10})
        cls.lot_b = cls.env["stock.lot"].create({"name": "LOT-B", "product_id": cls.housing.id})
        cls.env["stock.quant"]._update_available_quantity(
            cls.housing, cls.stock_location, 30, lot_id=cls.lot_b
        )
        cls.counter = 0

    def _confirmed(self, qty=5, product=None, bom=None):
        production = self.env["mrp.production"].create(
            {
                "product_id": (product or self.pump).id,
                "product_qty": qty,
                "bom_id": (bom or self.bom).id,
            }
        )
        with trap_jobs():
            production.action_confirm()
        return production

    def _send(self, production, event_type, data, sequence=None, order_ref=None, occurred_at=None):
        """Store one event through intake and process it; returns the message."""
        message = self._store(production, event_type, data, sequence, order_ref, occurred_at)
        message._process()
        return message

    def _store(self, production, event_type, data, sequence=None, order_ref=None, occurred_at=None):
        type(self).counter += 1
        ref = order_ref or (production.name if production else None)
        if sequence is None and ref:
            # As the MES numbers them: 1, 2, 3, ... per order.
            sequence = (
                self.env["mes.message"].search_count(
                    [
                        ("backend_id", "=", self.backend.id),
                        ("direction", "=", "inbound"),
                        ("order_ref", "=", ref),
                    ]
                )
                + 1
            )
        event = {
            "schema": "mes.event/1",
            "event_id": f"T-{self.counter}",
            "event_type": event_type,
            "sequence": sequence or 0,
            "occurred_at": occurred_at or recent(),
            "data": data,
        }
        if production or order_ref:
            event["order_ref"] = order_ref or production.name
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
        self.assertEqual(answer["status"], "accepted", answer)
        return self.env["mes.message"].browse(answer["message_id"])

    def _consume(self, production, product, qty, uom="Units", **extra):
        data = {"product": product.default_code, "quantity": qty, "uom": uom, **extra}
        return self._send(production, "material_consumed", data)

    def _complete(self, production, qty=None, **extra):
        data = dict(extra)
        if qty is not None:
            data.update(quantity=qty, uom="Units")
        return self._send(production, "order_completed", data)

    def _done_lines(self, production, product):
        moves = (production.move_raw_ids | production.move_finished_ids).filtered(
            lambda m: m.product_id == product and m.state == "done"
        )
        result = {}
        for line in moves.move_line_ids:
            result[line.lot_id.name or ""] = result.get(line.lot_id.name or "", 0) + line.quantity
        return result

    def _assert_processed(self, *messages):
        for message in messages:
            self.assertEqual(
                message.state, "processed", f"{message.error_code}: {message.error_text}"
            )


class TestMaterial(EventCase):
    def test_consumption_by_lot_posts_exactly_what_was_reported(self):
        production = self._confirmed(qty=5)
        messages = [
            self._consume(production, self.housing, 3, lot="LOT-B"),
            self._consume(production, self.housing, 2, lot="LOT-A"),
            self._consume(production, self.screw, 21),
        ]
        self._assert_processed(*messages)
        done = self._complete(production, qty=5)
        self._assert_processed(done)
        self.assertEqual(production.state, "done")
        self.assertEqual(self._done_lines(production, self.housing), {"LOT-A": 2, "LOT-B": 3})
        self.assertEqual(self._done_lines(production, self.screw), {"": 21})
        self.assertEqual(self._done_lines(production, self.pump), {"": 5})
        # Genealogy: the finished move lines point to the consumed lot lines, which is what
        # Odoo's traceability report follows.
        finished = production.move_finished_ids.move_line_ids
        self.assertEqual(set(finished.consume_line_ids.lot_id.mapped("name")), {"LOT-A", "LOT-B"})

    def test_consumption_is_not_posted_when_odoo_backflushes(self):
        self.backend.consumption_owner = "odoo"
        production = self._confirmed(qty=2)
        message = self._consume(production, self.screw, 50)
        self._assert_processed(message)
        self.assertIn("not posted", message.result_text)
        self._assert_processed(self._complete(production, qty=2))
        self.assertEqual(self._done_lines(production, self.screw), {"": 8})
        self.assertEqual(self._done_lines(production, self.housing), {"LOT-A": 2})

    def test_unit_conversion_grams_into_kilograms(self):
        kg = self.env.ref("uom.product_uom_kgm")
        resin = self.env["product.product"].create(
            {
                "name": "Resin",
                "default_code": "T-RESIN",
                "is_storable": True,
                "uom_id": kg.id,
                "uom_po_id": kg.id,
            }
        )
        self.env["stock.quant"]._update_available_quantity(resin, self.stock_location, 100)
        self.bom.bom_line_ids = [Command.create({"product_id": resin.id, "product_qty": 0.5})]
        production = self._confirmed(qty=5)
        self._consume(production, self.housing, 5, lot="LOT-A")
        self._consume(production, self.screw, 20)
        message = self._consume(production, resin, 2400, uom="g")
        self._assert_processed(message)
        resin_move = production.move_raw_ids.filtered(lambda m: m.product_id == resin)
        self.assertAlmostEqual(resin_move.quantity, 2.4)
        self.assertEqual(resin_move.product_uom, kg)
        self._assert_processed(self._complete(production, qty=5))
        self.assertEqual(self._done_lines(production, resin), {"": 2.4})

    def test_unit_of_another_category_is_an_error(self):
        production = self._confirmed()
        message = self._consume(production, self.screw, 3, uom="kg")
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "unmapped_uom")
        self.assertIn("'kg'", message.error_text)

    def test_unmapped_product_code_is_an_error_then_mapping_and_retry_post_it(self):
        production = self._confirmed(qty=5)
        message = self._send(
            production, "material_consumed", {"product": "MES-4711", "quantity": 20, "uom": "Units"}
        )
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "unmapped_product")
        self.assertIn("'MES-4711'", message.error_text)
        self.assertIn("data.product", message.error_text)
        # Shown under its order on the dashboards even though it failed; what the MES
        # reported is kept as columns.
        self.assertEqual(message.production_id, production)
        self.assertFalse(message.product_id)
        self.assertEqual(
            (message.reported_product, message.reported_quantity, message.reported_uom),
            ("MES-4711", 20, "Units"),
        )
        self._map("product", "MES-4711", product_id=self.screw)
        with trap_jobs() as trap:
            message.action_retry()
            trap.perform_enqueued_jobs()
        self._assert_processed(message)
        self.assertEqual(message.product_id, self.screw)
        screw_move = production.move_raw_ids.filtered(lambda m: m.product_id == self.screw)
        self.assertEqual(screw_move.quantity, 20)

    def test_serials_of_a_serial_tracked_component(self):
        chip = self.env["product.product"].create(
            {"name": "Chip", "default_code": "T-CHIP", "is_storable": True, "tracking": "serial"}
        )
        serials = self.env["stock.lot"].create(
            [{"name": f"SN-{i}", "product_id": chip.id} for i in range(3)]
        )
        for serial in serials:
            self.env["stock.quant"]._update_available_quantity(
                chip, self.stock_location, 1, lot_id=serial
            )
        self.bom.bom_line_ids = [Command.create({"product_id": chip.id, "product_qty": 1})]
        production = self._confirmed(qty=2)
        wrong = self._consume(production, chip, 2, serials=["SN-0"])
        self.assertEqual(wrong.error_code, "serial_count")
        wrong.action_cancel("MES sent the serials again, complete")
        ok = self._consume(production, chip, 2, serials=["SN-0", "SN-2"])
        self._assert_processed(ok)
        self._consume(production, self.housing, 2, lot="LOT-A")
        self._consume(production, self.screw, 8)
        self._assert_processed(self._complete(production, qty=2))
        self.assertEqual(self._done_lines(production, chip), {"SN-0": 1, "SN-2": 1})

    def test_unknown_lot_waits_until_received(self):
        production = self._confirmed(qty=1)
        with trap_jobs():
            message = self._consume(production, self.housing, 1, lot="LOT-LATER")
        self.assertEqual(message.state, "waiting")
        self.assertIn("LOT-LATER", message.error_text)
        self.assertEqual(message.error_cause, "unknown_lot: LOT-LATER (T-HOUS)")
        self.assertEqual(
            (message.error_code, message.cause_code, message.cause_value),
            ("waiting", "unknown_lot", "LOT-LATER (T-HOUS)"),
        )
        self.assertEqual((message.product_id, message.reported_lot), (self.housing, "LOT-LATER"))
        lot = self.env["stock.lot"].create({"name": "LOT-LATER", "product_id": self.housing.id})
        self.env["stock.quant"]._update_available_quantity(
            self.housing, self.stock_location, 1, lot_id=lot
        )
        with trap_jobs():
            message._process()
        self._assert_processed(message)
        self.assertEqual(
            (message.error_code, message.cause_code, message.cause_value, message.error_cause),
            (False, False, False, False),
        )

    def test_component_outside_bom_is_an_error_unless_accepted(self):
        extra = self.env["product.product"].create(
            {"name": "Glue", "default_code": "T-GLUE", "is_storable": True}
        )
        production = self._confirmed(qty=1)
        message = self._consume(production, extra, 1)
        self.assertEqual(message.error_code, "component_not_in_order")
        self.assertIn("T-GLUE", message.error_text)
        self.backend.accept_extra_components = True
        with trap_jobs():
            message.action_retry()
            message._process()
        self._assert_processed(message)
        glue = production.move_raw_ids.filtered(lambda m: m.product_id == extra)
        self.assertEqual(glue.quantity, 1)
        self._consume(production, self.housing, 1, lot="LOT-A")
        self._consume(production, self.screw, 4)
        self._assert_processed(self._complete(production, qty=1))
        self.assertEqual(self._done_lines(production, extra), {"": 1})

    def test_consumption_outside_tolerance_stops_completion(self):
        production = self._confirmed(qty=5)
        self._consume(production, self.housing, 5, lot="LOT-A")
        self._consume(production, self.screw, 30)  # 20 expected, +50 %
        message = self._complete(production, qty=5)
        self.assertEqual(message.state, "error")
        self.assertEqual(message.error_code, "consumption_tolerance")
        self.assertIn("Screw", message.error_text)
        self.assertIn("+50.0%", message.error_text)
        self.assertNotEqual(production.state, "done")
        self.backend.tolerance_over = 60
        with trap_jobs():
            message.action_retry()
            message._process()
        self._assert_processed(message)
        self.assertEqual(self._done_lines(production, self.screw), {"": 30})

    def test_unreported_component_is_not_consumed_when_mes_owns_consumption(self):
        self.backend.tolerance_under = 100
        production = self._confirmed(qty=2)
        self._consume(production, self.screw, 8)
        self._assert_processed(self._complete(production, qty=2))
        self.assertEqual(self._done_lines(production, self.housing), {})
        self.assertEqual(self._done_lines(production, self.screw), {"": 8})


class TestOutput(EventCase):
    def test_finished_lot_and_by_product(self):
        self.env.user.groups_id += self.env.ref("mrp.group_mrp_byproducts")
        valve = self.env["product.product"].create(
            {"name": "Valve", "default_code": "T-VALVE", "is_storable": True, "tracking": "lot"}
        )
        chips = self.env["product.product"].create(
            {
                "name": "Metal chips",
                "default_code": "T-CHIPS",
                "is_storable": True,
                "tracking": "lot",
            }
        )
        bom = self.env["mrp.bom"].create(
            {
                "product_tmpl_id": valve.product_tmpl_id.id,
                "product_qty": 1,
                "bom_line_ids": [Command.create({"product_id": self.screw.id, "product_qty": 2})],
                "byproduct_ids": [Command.create({"product_id": chips.id, "product_qty": 0.1})],
            }
        )
        production = self._confirmed(qty=10, product=valve, bom=bom)
        self._consume(production, self.screw, 20)
        out1 = self._send(
            production,
            "output_produced",
            {"product": "T-VALVE", "quantity": 6, "uom": "Units", "lot": "V-2611"},
        )
        out2 = self._send(
            production,
            "output_produced",
            {"product": "T-VALVE", "quantity": 4, "uom": "Units", "lot": "V-2611"},
        )
        byp = self._send(
            production,
            "output_produced",
            {"product": "T-CHIPS", "quantity": 1.2, "uom": "Units", "lot": "CH-1"},
        )
        self._assert_processed(out1, out2, byp)
        self.assertEqual(production.qty_producing, 10)
        other_lot = self._send(
            production,
            "output_produced",
            {"product": "T-VALVE", "quantity": 1, "uom": "Units", "lot": "V-OTHER"},
        )
        self.assertEqual(other_lot.error_code, "second_finished_lot")
        other_lot.action_cancel("second lot reported by mistake")
        self._assert_processed(self._complete(production))
        self.assertEqual(production.state, "done")
        self.assertEqual(self._done_lines(production, valve), {"V-2611": 10})
        self.assertEqual(self._done_lines(production, chips), {"CH-1": 1.2})

    def test_completion_without_any_output_is_an_error(self):
        production = self._confirmed(qty=2)
        message = self._complete(production)
        self.assertEqual(message.error_code, "nothing_produced")

    def test_completion_left_open_for_planner(self):
        self.backend.close_on_completion = False
        production = self._confirmed(qty=2)
        self._consume(production, self.housing, 2, lot="LOT-A")
        self._consume(production, self.screw, 8)
        self._assert_processed(self._complete(production, qty=2))
        self.assertEqual(production.state, "progress")
        self.assertEqual(production.qty_producing, 2)

    def test_backorder_for_the_rest_when_asked(self):
        self.backend.write({"backorder_policy": "always", "tolerance_under": 100})
        production = self._confirmed(qty=10)
        self._consume(production, self.housing, 6, lot="LOT-A")
        self._consume(production, self.screw, 24)
        self._assert_processed(self._complete(production, qty=6))
        self.assertEqual(production.state, "done")
        self.assertEqual(production.qty_produced, 6)
        backorder = production.procurement_group_id.mrp_production_ids - production
        self.assertEqual(len(backorder), 1)
        self.assertEqual(backorder.product_qty, 4)


class TestScrapDowntimeOperations(EventCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tag_damaged = cls.env["stock.scrap.reason.tag"].create({"name": "Damaged (test)"})
        cls.loss_breakdown = cls.env.ref("mrp.block_reason1")
        cls.env["mes.mapping"].create(
            [
                {
                    "backend_id": cls.backend.id,
                    "mapping_type": "scrap_reason",
                    "mes_code": "DMG",
                    "scrap_tag_id": cls.tag_damaged.id,
                },
                {
                    "backend_id": cls.backend.id,
                    "mapping_type": "downtime_reason",
                    "mes_code": "BRK",
                    "loss_id": cls.loss_breakdown.id,
                },
                {
                    "backend_id": cls.backend.id,
                    "mapping_type": "workcenter",
                    "mes_code": "LINE-1",
                    "workcenter_id": cls.wc_asm.id,
                },
            ]
        )

    def test_scrap_with_mapped_reason_is_linked_to_order_and_operation(self):
        production = self._confirmed(qty=3)
        before = self.env["stock.quant"]._get_available_quantity(
            self.housing, self.stock_location, lot_id=self.lot_b, strict=True
        )
        message = self._send(
            production,
            "scrap_reported",
            {
                "product": "T-HOUS",
                "quantity": 2,
                "uom": "Units",
                "lot": "LOT-B",
                "reason": "DMG",
                "operation": 10,
            },
        )
        self._assert_processed(message)
        scrap = message.scrap_ids
        self.assertEqual(scrap.state, "done")
        self.assertEqual(scrap.production_id, production)
        self.assertEqual(scrap.workorder_id.operation_id.sequence, 10)
        self.assertEqual(scrap.scrap_reason_tag_ids, self.tag_damaged)
        self.assertEqual(scrap.scrap_qty, 2)
        self.assertEqual(scrap.lot_id, self.lot_b)
        # The operation's work center: the dashboards count the message under it.
        self.assertEqual(message.workcenter_id, self.wc_asm)
        self.assertEqual(message.reported_reason, "DMG")
        after = self.env["stock.quant"]._get_available_quantity(
            self.housing, self.stock_location, lot_id=self.lot_b, strict=True
        )
        self.assertEqual(before - after, 2)
        unmapped = self._send(
            production,
            "scrap_reported",
            {"product": "T-SCR", "quantity": 1, "uom": "Units", "reason": "BENT"},
        )
        self.assertEqual(unmapped.error_code, "unmapped_scrap_reason")
        self.assertIn("'BENT'", unmapped.error_text)

    def test_downtime_open_while_it_lasts_and_closed_by_its_end(self):
        start = self._send(
            None,
            "downtime_started",
            {
                "downtime_id": "DT-1",
                "resource": "LINE-1",
                "reason": "BRK",
                "started_at": at(0, "08:00:00"),
            },
        )
        self._assert_processed(start)
        self.assertEqual(start.workcenter_id, self.wc_asm)  # resource LINE-1 is mapped
        log = start.productivity_ids
        self.assertEqual(log.workcenter_id, self.wc_asm)
        self.assertEqual(log.loss_id, self.loss_breakdown)
        self.assertEqual(log.date_start, datetime.combine(day(0), time(8, 0)))
        self.assertFalse(log.date_end)
        self.assertEqual(self.wc_asm.working_state, "blocked")
        end = self._send(
            None,
            "downtime_ended",
            {"downtime_id": "DT-1", "resource": "LINE-1", "ended_at": at(0, "08:45:00")},
        )
        self._assert_processed(end)
        self.assertEqual(log.date_end, datetime.combine(day(0), time(8, 45)))
        self.assertAlmostEqual(log.duration, 45.0)
        self.assertEqual(self.wc_asm.working_state, "normal")

    def test_an_open_downtime_does_not_stop_other_orders_reports_on_its_work_center(self):
        # A breakdown of LINE-1 is open (its end not reported yet): Odoo shows the work
        # center blocked. The MES reports work done there meanwhile (another station of the
        # line, or the downtime's end still on its way): what it reports happened is posted.
        self._send(
            None,
            "downtime_started",
            {
                "downtime_id": "DT-9",
                "resource": "LINE-1",
                "reason": "BRK",
                "started_at": at(0, "08:00:00"),
            },
        )
        self.assertEqual(self.wc_asm.working_state, "blocked")
        production = self._confirmed(qty=4)
        workorder = production.workorder_ids.filtered(lambda w: w.operation_id.sequence == 10)
        self.assertEqual(workorder.workcenter_id, self.wc_asm)
        started = self._send(production, "order_started", {})
        done = self._send(
            production,
            "operation_completed",
            {
                "operation": 10,
                "resource": "LINE-1",
                "good_quantity": 4,
                "uom": "Units",
                "run_minutes": 30,
                "ended_at": at(0, "08:40:00"),
            },
        )
        self._assert_processed(started, done)
        self.assertEqual(workorder.state, "done")
        self.assertEqual(workorder.qty_produced, 4)
        # Odoo's own users are still told the work center is blocked.
        self.assertEqual(self.wc_asm.working_state, "blocked")
        self.assertEqual(workorder.working_state, "blocked")
        other = self._confirmed(qty=1)
        with self.assertRaisesRegex(UserError, "unblock the work center"):
            other.workorder_ids.filtered(lambda w: w.workcenter_id == self.wc_asm).button_start()

    def test_downtime_end_before_its_start_waits(self):
        with trap_jobs():
            end = self._send(
                None,
                "downtime_ended",
                {"downtime_id": "DT-2", "resource": "LINE-1", "ended_at": at(0, "09:30:00")},
            )
        self.assertEqual(end.state, "waiting")
        self.assertIn("DT-2", end.error_text)
        self._send(
            None,
            "downtime_started",
            {
                "downtime_id": "DT-2",
                "resource": "LINE-1",
                "reason": "BRK",
                "started_at": at(0, "09:00:00"),
            },
        )
        with trap_jobs():
            end._process()
        self._assert_processed(end)
        self.assertAlmostEqual(end.productivity_ids.duration, 30.0)

    def test_operation_progress_and_completion_log_time(self):
        production = self._confirmed(qty=4)
        workorder = production.workorder_ids.filtered(lambda w: w.operation_id.sequence == 10)
        progress = self._send(
            production,
            "operation_progress",
            {
                "operation": 10,
                "resource": "LINE-1",
                "good_quantity": 2,
                "uom": "Units",
                "setup_minutes": 15,
                "run_minutes": 30,
                "ended_at": at(0, "10:00:00"),
                "worker": "Ann",
            },
        )
        self._assert_processed(progress)
        self.assertEqual(workorder.state, "progress")
        self.assertEqual(workorder.qty_produced, 2)
        logs = progress.productivity_ids.sorted("date_start")
        self.assertEqual(
            [(log.date_start, log.date_end, log.loss_id) for log in logs],
            [
                (
                    datetime.combine(day(0), time(9, 15)),
                    datetime.combine(day(0), time(9, 30)),
                    self.env.ref("mrp.block_reason2"),
                ),
                (
                    datetime.combine(day(0), time(9, 30)),
                    datetime.combine(day(0), time(10, 0)),
                    self.env.ref("mrp.block_reason7"),
                ),
            ],
        )
        self.assertIn("Ann", logs[0].description)
        completed = self._send(
            production,
            "operation_completed",
            {
                "operation": 10,
                "good_quantity": 2,
                "reject_quantity": 1,
                "uom": "Units",
                "run_minutes": 20,
                "ended_at": at(0, "11:00:00"),
            },
        )
        self._assert_processed(completed)
        self.assertEqual(workorder.state, "done")
        self.assertEqual(workorder.qty_produced, 4)
        self.assertEqual(workorder.mes_reject_qty, 1)
        self.assertAlmostEqual(workorder.duration, 65.0)
        unknown = self._send(production, "operation_progress", {"operation": 99})
        self.assertEqual(unknown.error_code, "unknown_operation")

    def test_reported_setup_counts_in_full_outside_working_hours(self):
        production = self._confirmed(qty=1)
        # A Sunday night: outside the work center's calendar, the MES still spent the time.
        report = self._send(
            production,
            "operation_progress",
            {
                "operation": 10,
                "setup_minutes": 15,
                "run_minutes": 45,
                "ended_at": at(2, "03:00:00"),
            },
        )
        self._assert_processed(report)
        self.assertEqual(sorted(report.productivity_ids.mapped("duration")), [15.0, 45.0])
        self.assertEqual(
            report.productivity_ids.loss_id.mapped("loss_type"), ["availability", "productive"]
        )
        workorder = production.workorder_ids.filtered(lambda w: w.operation_id.sequence == 10)
        self.assertAlmostEqual(workorder.duration, 60.0)

    def test_finished_operation_does_not_consume_for_the_mes(self):
        # Finishing a work order fills in its components from the bill of materials; when the
        # MES owns consumption, only what it reports is posted, before or after that.
        production = self._confirmed(qty=2)
        self._send(production, "operation_completed", {"operation": 10, "run_minutes": 5})
        self._send(production, "operation_completed", {"operation": 20, "run_minutes": 5})
        self.assertEqual(set(production.workorder_ids.mapped("state")), {"done"})
        self._consume(production, self.housing, 1, lot="LOT-B")
        self._consume(production, self.housing, 1, lot="LOT-A")
        self._consume(production, self.screw, 7.5)
        self._assert_processed(self._complete(production, qty=2))
        self.assertEqual(self._done_lines(production, self.housing), {"LOT-A": 1, "LOT-B": 1})
        self.assertEqual(self._done_lines(production, self.screw), {"": 7.5})
        lines = production.move_raw_ids.move_line_ids
        self.assertTrue(all(lines.mapped("mes_message_id")))

    def test_order_held_and_resumed(self):
        production = self._confirmed(qty=1)
        self._assert_processed(self._send(production, "order_started", {"operator": "Bo"}))
        self.assertEqual(production.state, "progress")
        self._assert_processed(self._send(production, "order_held", {"reason": "no material"}))
        self.assertTrue(production.mes_hold)
        self.assertIn("no material", production.message_ids[0].body)
        self._assert_processed(self._send(production, "order_resumed", {}))
        self.assertFalse(production.mes_hold)


class TestOrdering(EventCase):
    def _intake(self, production, number, data):
        event = self._event(production, f"GAP-{production.id}-{number}")
        event.update(event_type="material_consumed", sequence=number, data=data)
        return self.env["mes.message"]._intake(self.backend, json.dumps(event), event)

    def test_a_gap_in_the_mes_numbering_waits_until_filled_then_all_apply_in_order(self):
        production = self._confirmed(qty=2)
        screws = {"product": "T-SCR", "quantity": 8, "uom": "Units"}
        housings = {"product": "T-HOUS", "quantity": 2, "uom": "Units", "lot": "LOT-A"}
        with trap_jobs() as trap:
            third = self.env["mes.message"].browse(
                self._intake(production, 3, housings)["message_id"]
            )
            trap.perform_enqueued_jobs()
        # Nothing of 1 and 2 has arrived: nothing is posted, the message says what it awaits.
        self.assertEqual(third.state, "waiting")
        self.assertEqual(third.error_cause, f"missing_sequence: {production.name} #1, 2")
        self.assertIn("numbered 1, 2 (this one is number 3", third.error_text)
        self.assertFalse(production.move_raw_ids.filtered("picked"))
        with trap_jobs() as trap:
            second = self.env["mes.message"].browse(
                self._intake(production, 2, screws)["message_id"]
            )
            # One job per lane: the lane's job, planned for later, is brought forward.
            trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
            trap.perform_enqueued_jobs()
        self.assertEqual(second.state, "waiting")
        self.assertEqual(second.error_cause, f"missing_sequence: {production.name} #1")
        # Number 3 is held up behind number 2 now, and no longer says it misses it.
        self.assertEqual(
            (third.state, third.error_cause, third.error_text), ("received", False, False)
        )
        with trap_jobs() as trap:
            first = self.env["mes.message"].browse(
                self._intake(production, 1, screws)["message_id"]
            )
            trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
            trap.perform_enqueued_jobs()
        self._assert_processed(first, second, third)
        screw_move = production.move_raw_ids.filtered(lambda m: m.product_id == self.screw)
        self.assertEqual(screw_move.quantity, 16)
        self.assertEqual(third.move_ids.move_line_ids.lot_id, self.lot_a)

    def test_a_gap_never_filled_becomes_an_error_naming_the_missing_numbers(self):
        production = self._confirmed(qty=2)
        self.backend.waiting_timeout = 30
        screws = {"product": "T-SCR", "quantity": 1, "uom": "Units"}
        with trap_jobs():
            self._intake(production, 1, screws)
            late = self.env["mes.message"].browse(self._intake(production, 5, screws)["message_id"])
            late._process()
        self.assertEqual(late.state, "waiting")
        late.sudo().waiting_since = fields.Datetime.now() - timedelta(minutes=31)
        with trap_jobs():
            late._process()
        self.assertEqual(late.state, "error")
        self.assertEqual(late.error_code, "waited_too_long")
        self.assertEqual(
            late.error_cause, f"waited_too_long: missing_sequence: {production.name} #2, 3, 4"
        )
        self.assertEqual(
            (late.cause_code, late.cause_value),
            ("missing_sequence", f"{production.name} #2, 3, 4"),
        )
        self.assertIn("numbered 2, 3, 4", late.error_text)

    def test_the_highest_number_the_schema_allows_names_the_first_missing_ones(self):
        production = self._confirmed(qty=2)
        screws = {"product": "T-SCR", "quantity": 1, "uom": "Units"}
        with trap_jobs():
            self._intake(production, 1, screws)
            last = self.env["mes.message"].browse(
                self._intake(production, 2**31 - 1, screws)["message_id"]
            )
            last._process()
        self.assertEqual(last.state, "waiting")
        shown = ", ".join(str(n) for n in range(2, 22))
        self.assertEqual(last.error_cause, f"missing_sequence: {production.name} #{shown}, ...")

    def test_a_backend_whose_mes_does_not_number_its_events_applies_them_as_they_come(self):
        production = self._confirmed(qty=2)
        self.backend.sequence_numbering = "none"
        with trap_jobs() as trap:
            answer = self._intake(
                production, 7, {"product": "T-SCR", "quantity": 3, "uom": "Units"}
            )
            trap.perform_enqueued_jobs()
        self._assert_processed(self.env["mes.message"].browse(answer["message_id"]))

    def test_later_message_is_applied_after_the_earlier_one_whichever_job_runs(self):
        production = self._confirmed(qty=2)
        first = self._store(
            production,
            "material_consumed",
            {"product": "T-SCR", "quantity": 8, "uom": "Units"},
            sequence=1,
        )
        second = self._store(
            production,
            "material_consumed",
            {"product": "T-HOUS", "quantity": 2, "uom": "Units", "lot": "LOT-A"},
            sequence=2,
        )
        with trap_jobs():
            result = second._process()
        self._assert_processed(first, second)
        self.assertEqual(result, "2 message(s) applied")
        self.assertLessEqual(first.processed_at, second.processed_at)

    def test_consumption_before_its_order_is_confirmed_waits_then_posts(self):
        production = self.env["mrp.production"].create(
            {"product_id": self.pump.id, "product_qty": 2, "bom_id": self.bom.id}
        )
        with trap_jobs():
            message = self._send(
                production, "material_consumed", {"product": "T-SCR", "quantity": 8, "uom": "Units"}
            )
        self.assertEqual(message.state, "waiting")
        self.assertIn("confirmed", message.error_text)
        with trap_jobs():
            production.action_confirm()
            message._process()
        self._assert_processed(message)
        self.assertEqual(
            production.move_raw_ids.filtered(lambda m: m.product_id == self.screw).quantity, 8
        )

    def test_different_orders_do_not_wait_for_each_other(self):
        one = self._confirmed(qty=1)
        two = self._confirmed(qty=1)
        blocked = self._send(
            one, "material_consumed", {"product": "NOPE", "quantity": 1, "uom": "Units"}, sequence=1
        )
        self.assertEqual(blocked.state, "error")
        behind = self._send(
            one, "material_consumed", {"product": "T-SCR", "quantity": 4, "uom": "Units"}
        )
        other = self._send(
            two, "material_consumed", {"product": "T-SCR", "quantity": 4, "uom": "Units"}
        )
        # An error stops its own order's lane only.
        self.assertEqual(behind.state, "received")
        self._assert_processed(other)


class TestExactlyOnce(EventCase):
    def _shift(self, production):
        return [
            (
                "material_consumed",
                {"product": "T-HOUS", "quantity": 3, "uom": "Units", "lot": "LOT-A"},
            ),
            ("material_consumed", {"product": "T-SCR", "quantity": 12, "uom": "Units"}),
            ("order_completed", {"quantity": 3, "uom": "Units"}),
        ]

    def _deliver(self, production, prefix, twice=False, crash=False):
        messages = self.env["mes.message"]
        for number, (event_type, data) in enumerate(self._shift(production), start=1):
            event = {
                "schema": "mes.event/1",
                "event_id": f"{prefix}-{number}",
                "event_type": event_type,
                "order_ref": production.name,
                "sequence": number,
                "occurred_at": recent(),
                "data": data,
            }
            for _delivery in range(2 if twice else 1):
                with trap_jobs():
                    answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            messages |= messages.browse(answer["message_id"])
        for message in messages:
            # The first job posts the whole order (it carries on with the following
            # messages); the jobs of the others then find nothing to do.
            if crash and message.state == "received":
                # The worker dies after posting, before its transaction commits.
                savepoint = self.env.cr.savepoint()
                message._process()
                self.assertEqual(message.state, "processed")
                self.env.flush_all()
                savepoint.close(rollback=True)
                self.env.invalidate_all()
                self.assertEqual(message.state, "received")
            message._process()
            message._process()  # a second run of the same job changes nothing
        return messages

    def _result(self, production):
        return {
            product.default_code: self._done_lines(production, product)
            for product in (self.housing, self.screw, self.pump)
        }

    def test_twice_and_after_crash_same_result_as_once(self):
        clean = self._confirmed(qty=3)
        self._deliver(clean, "CLEAN")
        twice = self._confirmed(qty=3)
        self.assertEqual(len(self._deliver(twice, "TWICE", twice=True)), 3)
        crashed = self._confirmed(qty=3)
        self._deliver(crashed, "CRASH", crash=True)
        expected = {"T-HOUS": {"LOT-A": 3}, "T-SCR": {"": 12}, "T-PUMP": {"": 3}}
        for production in (clean, twice, crashed):
            self.assertEqual(production.state, "done")
            self.assertEqual(self._result(production), expected)
            self.assertEqual(len(production.mes_message_ids.filtered("direction")), 4)


class TestLanes(EventCase):
    def test_one_job_applies_its_orders_messages_until_one_needs_a_person(self):
        production = self._confirmed(qty=2)
        other = self._confirmed(qty=2)
        screws = {"product": "T-SCR", "quantity": 4, "uom": "Units"}
        started = self._store(production, "order_started", {}, sequence=1)
        first = self._store(production, "material_consumed", screws, sequence=2)
        unknown = self._store(
            production, "material_consumed", dict(screws, product="NOPE"), sequence=3
        )
        after = self._store(production, "material_consumed", screws, sequence=4)
        elsewhere = self._store(other, "order_started", {}, sequence=1)
        with trap_jobs() as trap:
            result = started._process()
            trap.assert_jobs_count(0)
        self.assertEqual(
            (started | first | unknown | after).mapped("state"),
            ["processed", "processed", "error", "received"],
        )
        self.assertEqual(
            result,
            f"2 message(s) applied; then {unknown.display_name}: "
            f"error {unknown.error_code}: {unknown.error_text}",
        )
        self.assertEqual(elsewhere.state, "received", "another order has its own job")
        # Automatic state changes leave no chatter (people's actions do).
        self.assertFalse(
            self.env["mail.message"].search_count(
                [("model", "=", "mes.message"), ("res_id", "in", (started | first | unknown).ids)]
            )
        )
        # A person's cancel of the message in error lets the lane go on.
        with trap_jobs() as trap:
            unknown.action_cancel("not ours")
            trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
            trap.perform_enqueued_jobs()
        self._assert_processed(after)

    def test_a_batch_on_many_orders_queues_their_lanes_by_one_job(self):
        orders = [self._confirmed(qty=1) for _i in range(LANES_IN_REQUEST + 1)]
        events = [
            dict(self._event(production, f"MANY-{production.id}"), event_type="order_started")
            for production in orders
        ]
        for event in events:
            event["data"] = {}
        messages = self.env["mes.message"]
        run_lane = messages._run_lane
        with trap_jobs() as trap:
            answers = messages._intake_batch(self.backend, events)
            self.assertEqual({a["status"] for a in answers}, {"accepted"})
            # The answer waits for one job, not one per order.
            stored = messages.browse([a["message_id"] for a in answers])
            self.assertEqual([j.method_name for j in trap.enqueued_jobs], ["_queue_lanes"])
            self.assertEqual(trap.enqueued_jobs[0].recordset, stored)
            trap.perform_enqueued_jobs()
            trap.assert_jobs_count(len(orders), only=run_lane)
            self.assertEqual(
                sorted(job.args[0] for job in trap.enqueued_jobs),
                sorted(message._lane_key() for message in stored),
            )
            trap.perform_enqueued_jobs()
        self._assert_processed(*stored)
        self.assertEqual({p.state for p in orders}, {"progress"})
        # A job queued by the version before (no lane keys): the lanes of its messages
        # still received.
        late = self._confirmed(qty=1)
        event = dict(self._event(late, f"LATE-{late.id}"), event_type="order_started", data={})
        with trap_jobs() as trap:
            [answer] = messages._intake_batch(self.backend, [event], enqueue=False)
            received = messages.browse(answer["message_id"])
            self.assertEqual(received._queue_lanes(), "1 messages queued")
            self.assertEqual(
                [job.args[0] for job in trap.enqueued_jobs], [f"o:{self.backend.id}:{late.name}"]
            )
            self.assertEqual((stored | received)._queue_lanes(), "1 messages queued")
        # As many orders as a request queues itself: their lanes at once.
        fewer = [self._confirmed(qty=1) for _i in range(LANES_IN_REQUEST)]
        with trap_jobs() as trap:
            messages._intake_batch(
                self.backend,
                [
                    dict(self._event(p, f"FEW-{p.id}"), event_type="order_started", data={})
                    for p in fewer
                ],
            )
            trap.assert_jobs_count(LANES_IN_REQUEST, only=run_lane)
            self.assertEqual(
                {j.method_name for j in trap.enqueued_jobs}, {"_run_lane"}, "no job between"
            )

    def test_a_message_held_up_by_an_earlier_one_stops_saying_what_it_waited_for(self):
        production = self._confirmed(qty=1)
        screws = {"product": "T-SCR", "quantity": 1, "uom": "Units"}
        second = self._store(production, "material_consumed", screws, sequence=2)
        with trap_jobs():
            second._process()
        self.assertEqual(
            (second.state, second.cause_code, second.cause_value),
            ("waiting", "missing_sequence", f"{production.name} #1"),
        )
        housing = {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": "LOT-LATE"}
        first = self._store(production, "material_consumed", housing, sequence=1)
        with trap_jobs():
            first._process()
        self.assertEqual(
            (first.state, first.cause_code, first.cause_value, first.error_cause),
            ("waiting", "unknown_lot", "LOT-LATE (T-HOUS)", "unknown_lot: LOT-LATE (T-HOUS)"),
        )
        # Number 1 has come: number 2 waits for nothing of its own, only behind number 1.
        self.assertEqual(
            (second.state, second.error_code, second.cause_code, second.error_text),
            ("received", False, False, False),
        )
        self.assertFalse(second.next_attempt_at)

    def test_a_lane_with_work_and_no_job_is_queued_again_by_the_safety_net(self):
        messages = self.env["mes.message"]
        jobs = self.env["queue.job"].sudo()
        # Stored with their jobs trapped: as if each lane's job was lost.
        lost = self._store(self._confirmed(qty=1), "order_started", {}, sequence=1)
        fresh = self._store(self._confirmed(qty=1), "order_started", {}, sequence=1)
        waiting = self._store(self._confirmed(qty=1), "order_started", {}, sequence=2)
        with trap_jobs():
            waiting._process()
        self.assertEqual(waiting.state, "waiting")
        self.env.flush_all()
        long_ago = fields.Datetime.now() - timedelta(minutes=3)
        self.env.cr.execute(
            "UPDATE mes_message SET create_date = %s WHERE id IN %s",
            (long_ago, (lost.id, waiting.id)),
        )
        # The waiting lane has its next try queued: left as it is.
        waiting.with_user(self.backend.user_id).sudo()._enqueue(eta=600)
        lane_job = jobs.search([("identity_key", "=", f"mes-lane:{waiting._lane_key()}")])
        self.assertEqual(len(lane_job), 1)
        eta = lane_job.eta
        self.assertTrue(eta)
        self.assertEqual(messages._cron_requeue_lanes(), 1)
        queued = jobs.search([("identity_key", "=", f"mes-lane:{lost._lane_key()}")])
        self.assertEqual((len(queued), queued.state, queued.eta), (1, "pending", False))
        self.assertEqual(queued.args, [lost._lane_key()])
        self.assertFalse(jobs.search([("identity_key", "=", f"mes-lane:{fresh._lane_key()}")]))
        self.assertEqual(lane_job.eta, eta, "a waiting lane's next try is not brought forward")
        # Queued once: the next run has nothing to do.
        self.assertEqual(messages._cron_requeue_lanes(), 0)
        # Its job lost too, the waiting lane is queued once its next try is past.
        lane_job.unlink()
        waiting.sudo().next_attempt_at = long_ago
        self.assertEqual(messages._cron_requeue_lanes(), 1)
        self.assertEqual(
            len(jobs.search([("identity_key", "=", f"mes-lane:{waiting._lane_key()}")])), 1
        )
        # A lane stopped at a message in error waits for a person, and so does a lane
        # whose last job failed: neither is queued again and again.
        stopped = self._confirmed(qty=1)
        unknown = {"product": "NOPE", "quantity": 1, "uom": "Units"}
        in_error = self._store(stopped, "material_consumed", unknown, sequence=1)
        behind = self._store(stopped, "order_started", {}, sequence=2)
        with trap_jobs():
            in_error._process()
        self.assertEqual((in_error.state, behind.state), ("error", "received"))
        failing = self._store(self._confirmed(qty=1), "order_started", {}, sequence=1)
        failing.with_user(self.backend.user_id).sudo()._enqueue()
        failed_job = jobs.search([("identity_key", "=", f"mes-lane:{failing._lane_key()}")])
        self.env.flush_all()
        self.env.cr.execute("UPDATE queue_job SET state = 'failed' WHERE id = %s", failed_job.ids)
        self.env.cr.execute(
            "UPDATE mes_message SET create_date = %s WHERE id IN %s",
            (long_ago, (behind.id, failing.id)),
        )
        before = jobs.search_count([])
        self.assertEqual(messages._cron_requeue_lanes(), 0)
        self.assertEqual(jobs.search_count([]), before)
        # The failure shows on the message the failed job stopped at.
        self.assertEqual((failing.state, failing.error_code), ("error", "job_failed"))
        self.assertEqual(behind.state, "received")

    def test_a_lane_hands_over_to_a_new_job_after_its_bound(self):
        production = self._confirmed(qty=2)
        screws = {"product": "T-SCR", "quantity": 1, "uom": "Units"}
        messages = self.env["mes.message"]
        for number in range(1, 6):
            messages |= self._store(production, "material_consumed", screws, sequence=number)
        with trap_jobs() as trap:
            result = self.env["mes.message"]._run_lane(messages[0]._lane_key(), limit=2)
            self.assertEqual(result, "2 message(s) applied; the rest in a new job")
            self.assertEqual(messages.mapped("state"), ["processed"] * 2 + ["received"] * 3)
            trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
            trap.perform_enqueued_jobs()
        self._assert_processed(*messages)

    def test_a_lane_job_failing_outside_its_messages_handling_shows_on_the_message(self):
        production = self._confirmed(qty=2)
        first = self._store(production, "order_started", {}, sequence=1)
        second = self._store(production, "order_held", {}, sequence=2)
        first._enqueue()  # a real queue job, as the intake queues it
        job = first._job()
        self.assertEqual((job.method_name, job.state), ("_run_lane", "pending"))
        self.assertEqual(second._job(), job, "one job for the order's lane")
        # The worker died on something no message handling catches (a defect, the database).
        job.write({"state": "failed", "exc_name": "KeyError", "exc_message": "KeyError: 'x'"})
        self.assertEqual((first.state, first.error_code), ("error", "job_failed"))
        self.assertEqual(first.error_text, "KeyError: 'x'")
        self.assertEqual(second.state, "received", "behind it, in its lane")
        with trap_jobs() as trap:
            first.action_retry()
            trap.perform_enqueued_jobs()
        self._assert_processed(first, second)

    def test_new_work_brings_its_lanes_job_planned_for_later_forward(self):
        production = self._confirmed(qty=2)
        screws = {"product": "T-SCR", "quantity": 1, "uom": "Units"}

        def intake(number):
            event = self._event(production, f"FWD-{production.id}-{number}")
            event.update(event_type="material_consumed", sequence=number, data=screws)
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            return self.env["mes.message"].browse(answer["message_id"])

        second = intake(2)  # real queue jobs from here on
        queued = second._job()
        self.assertEqual((queued.state, queued.eta), ("pending", False))
        queued.state = "done"  # it ran: number 1 is missing, so number 2 waits
        second._process()
        self.assertEqual(second.state, "waiting")
        planned = second._job()
        self.assertNotEqual(planned, queued)
        self.assertTrue(planned.eta, "the lane comes back later")
        first = intake(1)
        # The number that was missing came: the same job runs now, no second one.
        self.assertEqual(first._job(), planned)
        self.assertEqual((planned.state, planned.eta), ("pending", False))
        self.assertEqual(
            self.env["queue.job"].search_count(
                [("identity_key", "=", f"mes-lane:{first._lane_key()}")]
            ),
            2,
        )

    def test_an_order_reference_with_colons_is_a_lane_of_its_own(self):
        production = self._confirmed(qty=2)
        production.name = "PLANT:2:MO/7"
        other = self._confirmed(qty=2)
        other.name = "PLANT:2"
        started = self._store(production, "order_started", {}, sequence=1)
        elsewhere = self._store(other, "order_started", {}, sequence=1)
        self.assertEqual(started._lane_key(), f"o:{self.backend.id}:PLANT:2:MO/7")
        with trap_jobs():
            self.assertEqual(started._process(), "1 message(s) applied")
        self._assert_processed(started)
        self.assertEqual(elsewhere.state, "received")

    def test_a_lane_taken_by_another_job_is_tried_again_shortly(self):
        production = self._confirmed(qty=2)
        message = self._store(production, "order_started", {}, sequence=1)
        key = message._lane_key()
        with self.env.registry.cursor() as other:
            other.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"mes:lane:{key}",))
            with self.assertRaises(RetryableJobError) as caught:
                self.env["mes.message"]._run_lane(key)
            self.assertTrue(caught.exception.ignore_retry)
            other.rollback()
        self.assertEqual(message.state, "received")

    def test_a_lane_meeting_another_transaction_is_tried_again_soon_not_failed(self):
        production = self._confirmed(qty=2)
        message = self._store(production, "order_started", {}, sequence=1)
        processor = type(self.env["mes.event.processor"])

        def conflict(*_args, **_kwargs):
            raise pg_errors.SerializationFailure("could not serialize access")

        with (
            patch.object(processor, "_process_order_started", conflict),
            self.assertRaises(RetryableJobError) as caught,
        ):
            self.env["mes.message"]._run_lane(message._lane_key())
        # Tried again within seconds, never counted as a failed try (a job that fails
        # its tries would put the message in error).
        self.assertTrue(caught.exception.ignore_retry)
        self.assertEqual(caught.exception.seconds, 1)
        self.assertEqual((message.state, message.error_code), ("received", False))
        self.assertIsNone(importer._APPLYING.lane)

    def test_a_conflict_while_a_lane_is_applied_is_logged_as_info_elsewhere_as_error(self):
        sql_log = logging.getLogger("odoo.sql_db")
        self.assertEqual(sum(isinstance(f, importer.ConflictLogFilter) for f in sql_log.filters), 1)

        def record(error):
            args = ("SELECT id FROM stock_quant ... FOR NO KEY UPDATE SKIP LOCKED", error)
            return logging.LogRecord(
                "odoo.sql_db", logging.ERROR, __file__, 1, "bad query: %s\nERROR: %s", args, None
            )

        conflict = "could not serialize access due to concurrent update"
        outside, other, inside = record(conflict), record("division by zero"), record(conflict)
        log_filter = importer.ConflictLogFilter()
        self.assertTrue(log_filter.filter(outside))
        importer._APPLYING.lane = "o:1:WH/MO/%d"
        try:
            self.assertTrue(log_filter.filter(other))
            self.assertTrue(log_filter.filter(inside))
        finally:
            importer._APPLYING.lane = None
        self.assertEqual(
            [r.levelname for r in (outside, other, inside)], ["ERROR", "ERROR", "INFO"]
        )
        self.assertTrue(inside.getMessage().startswith("MES lane o:1:WH/MO/%d, tried again"))
        self.assertIn(conflict, inside.getMessage())


class TestActions(EventCase):
    def test_cancel_with_reason_keeps_message(self):
        production = self._confirmed()
        message = self._send(
            production, "material_consumed", {"product": "NOPE", "quantity": 1, "uom": "Units"}
        )
        wizard = self.env["mes.message.cancel.wizard"].create(
            {"message_ids": [Command.set(message.ids)], "reason": "test order, ignore"}
        )
        wizard.action_confirm()
        self.assertEqual(message.state, "cancelled")
        self.assertEqual(message.cancel_reason, "test order, ignore")
        self.assertIn("test order, ignore", message.message_ids[0].body)

    def test_manager_corrects_payload_original_kept(self):
        production = self._confirmed(qty=2)
        message = self._send(
            production, "material_consumed", {"product": "T-SCRW", "quantity": 8, "uom": "Units"}
        )
        self.assertEqual(message.error_code, "unmapped_product")
        original = message.payload
        corrected = json.loads(original)
        corrected["data"]["product"] = "T-SCR"
        manager = new_test_user(self.env, "mes_integrator_c", groups="mes_base.group_mes_manager")
        message = message.with_user(manager)
        message.payload = json.dumps(corrected)
        self.assertEqual(message.payload_original, original)
        self.assertIn("corrected", message.message_ids[0].body)
        bad = dict(corrected, event_id="OTHER")
        with self.assertRaisesRegex(ValidationError, "event_id"):
            message.payload = json.dumps(bad)
        with self.assertRaisesRegex(ValidationError, "data.quantity"):
            message.payload = json.dumps(dict(corrected, data={**corrected["data"], "quantity": 0}))
        with trap_jobs():
            message.action_retry()
            message._process()
        self._assert_processed(message)
        with self.assertRaisesRegex(UserError, "in error or waiting"):
            message.payload = json.dumps(corrected)
        planner = new_test_user(self.env, "mes_planner_c", groups="mes_base.group_mes_user")
        other = self._send(
            production, "material_consumed", {"product": "T-X", "quantity": 1, "uom": "Units"}
        )
        with self.assertRaisesRegex(UserError, "Only MES managers"):
            other.with_user(planner).payload = json.dumps(corrected)

    def test_bulk_retry(self):
        production = self._confirmed(qty=2)
        messages = self._send(
            production, "material_consumed", {"product": "MES-S", "quantity": 4, "uom": "Units"}
        )
        with trap_jobs():
            messages |= self._send(
                production, "material_consumed", {"product": "MES-S", "quantity": 4, "uom": "Units"}
            )
        # The second stays behind the first, which is in error: the MES's order is kept.
        self.assertEqual(messages.mapped("state"), ["error", "received"])
        other_order = self._confirmed(qty=1)
        same_cause = self._send(
            other_order, "material_consumed", {"product": "MES-S", "quantity": 1, "uom": "Units"}
        )
        other_cause = self._send(
            other_order,
            "material_consumed",
            {"product": "MES-T", "quantity": 1, "uom": "Units"},
            sequence=0,
        )
        # One cause, one fix: messages are grouped by code and value, whatever their order.
        self.assertEqual(same_cause.error_cause, "unmapped_product: MES-S")
        self.assertEqual(messages[0].error_cause, same_cause.error_cause)
        self.assertEqual(other_cause.error_cause, "unmapped_product: MES-T")
        self._map("product", "MES-S", product_id=self.screw)
        with trap_jobs() as trap:
            messages.action_retry()
            trap.perform_enqueued_jobs()
        self._assert_processed(*messages)
        self.assertEqual(
            production.move_raw_ids.filtered(lambda m: m.product_id == self.screw).quantity, 8
        )


class TestPull(EventCase):
    def test_pull_reads_feed_from_cursor_once(self):
        production = self._confirmed(qty=1)
        store = self.simulator.store
        store.receive_order(
            {
                "order_id": production.name,
                "revision": 1,
                "action": "create",
                "quantity": 1,
                "uom": "Units",
            },
            f"pull-{production.name}",
        )
        self.simulator.complete_order(production.name)
        self.backend.write({"pull_enabled": True, "pull_cursor": 0})
        count = self.backend._pull_events()
        self.assertGreaterEqual(count, 1)
        cursor = self.backend.pull_cursor
        self.assertEqual(cursor, store.events()[-1]["seq"])
        pulled = self.env["mes.message"].search(
            [("order_ref", "=", production.name), ("direction", "=", "inbound")]
        )
        self.assertEqual(len(pulled), 1)
        self.assertEqual(pulled.state, "received")
        # Read again from the start: nothing is stored twice.
        self.backend.pull_cursor = 0
        self.backend._pull_events()
        self.assertEqual(
            self.env["mes.message"].search_count(
                [("order_ref", "=", production.name), ("direction", "=", "inbound")]
            ),
            1,
        )
        self.assertEqual(self.backend.pull_cursor, cursor)

    def test_cursor_does_not_move_when_storing_fails(self):
        self.backend.write({"pull_enabled": True, "pull_cursor": 0})
        production = self._confirmed(qty=1)
        self.simulator.store.receive_order(
            {
                "order_id": production.name,
                "revision": 1,
                "action": "create",
                "quantity": 1,
                "uom": "Units",
            },
            f"pull2-{production.name}",
        )
        self.simulator.complete_order(production.name)
        self.simulator.down = True
        with self.assertRaises(MesTransientError):
            self.backend._pull_events()
        self.assertEqual(self.backend.pull_cursor, 0)
        self.simulator.down = False


class TestWaitingTimeout(EventCase):
    def test_backoff_grows(self):
        production = self._confirmed()
        with trap_jobs() as trap:
            message = self._store(
                production,
                "material_consumed",
                {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": "NOT-YET"},
            )
            delays = []
            for _attempt in range(3):
                message._process()
                delays.append((message.next_attempt_at - fields.Datetime.now()).total_seconds())
            self.assertEqual(message.state, "waiting")
            self.assertEqual(message.attempt_count, 3)
            self.assertEqual(trap.jobs_count(only=self.env["mes.message"]._run_lane), 1)
        self.assertLess(delays[0], delays[1])
        self.assertLess(delays[1], delays[2])
        self.assertLessEqual(delays[2], timedelta(minutes=2).total_seconds())
