import base64
import io
from datetime import timedelta
from unittest.mock import patch

import openpyxl

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user
from odoo.tools import mute_logger

from odoo.addons.mes_base.tests.common import at, odoo_at
from odoo.addons.mes_base.tests.test_events import EventCase
from odoo.addons.mes_reconciliation.models.mes_reconciliation import company_tz, local_date
from odoo.addons.queue_job.tests.common import trap_jobs


class ReconciliationCase(EventCase):
    """Pump: 1 housing (lot), 4 screws and 0.2 kg resin per unit; the MES reports resin in g."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write({"reconcile_tolerance_pct": 0.5, "tolerance_over": 20})
        cls.kg = cls.env.ref("uom.product_uom_kgm")
        cls.resin = cls.env["product.product"].create(
            {
                "name": "Resin",
                "default_code": "T-RES",
                "is_storable": True,
                "uom_id": cls.kg.id,
                "uom_po_id": cls.kg.id,
                "standard_price": 20.0,
            }
        )
        cls.housing.standard_price = 10.0
        cls.screw.standard_price = 0.5
        cls.bom.bom_line_ids = [Command.create({"product_id": cls.resin.id, "product_qty": 0.2})]
        cls.env["stock.quant"]._update_available_quantity(cls.resin, cls.stock_location, 10)
        cls.tag = cls.env["stock.scrap.reason.tag"].create({"name": "Damaged (recon)"})
        cls.env["mes.mapping"].create(
            {
                "backend_id": cls.backend.id,
                "mapping_type": "scrap_reason",
                "mes_code": "DMG",
                "scrap_tag_id": cls.tag.id,
            }
        )
        cls.finance = new_test_user(
            cls.env,
            "mes_recon_finance",
            groups="mes_reconciliation.group_mes_reconciliation,account.group_account_user",
        )

    def _run_order(self, qty=5):
        """The MES runs an order: lots, grams, scrap, completion."""
        production = self._confirmed(qty=qty)
        messages = [
            self._consume(production, self.housing, 3, lot="LOT-A"),
            self._consume(production, self.housing, 2, lot="LOT-B"),
            self._consume(production, self.screw, 21),
            self._consume(production, self.resin, 1100, uom="g"),
            self._send(
                production,
                "scrap_reported",
                {
                    "product": "T-HOUS",
                    "quantity": 1,
                    "uom": "Units",
                    "lot": "LOT-B",
                    "reason": "DMG",
                },
            ),
            self._complete(production, qty),
        ]
        self._assert_processed(*messages)
        self.assertEqual(production.state, "done")
        return production

    def _reconcile(self, production):
        return self.env["mes.reconciliation"]._refresh_productions(production)

    def _line(self, record, kind, product=None, lot="", workcenter=None):
        lines = record.line_ids.filtered(
            lambda line: (
                line.kind == kind
                and (product is None or line.product_id == product)
                and (line.lot_name or "") == lot
                and (workcenter is None or line.workcenter_id == workcenter)
            )
        )
        self.assertEqual(len(lines), 1, f"{kind} {product and product.name} {lot!r}: {lines}")
        return lines

    def assertLine(self, line, planned, reported, posted, variance, usage, status, **values):
        self.assertEqual(
            (line.planned_qty, line.reported_qty, line.posted_qty),
            (planned, reported, posted),
            "planned, reported, posted",
        )
        self.assertAlmostEqual(line.variance_qty, variance, places=6)
        self.assertAlmostEqual(line.usage_variance_qty, usage, places=6)
        self.assertEqual(line.status, status)
        for name, value in values.items():
            self.assertAlmostEqual(line[name], value, places=2, msg=name)


class TestOrderReconciliation(ReconciliationCase):
    def test_two_refreshes_of_one_order_at_once_both_finish(self):
        # Another refresh (the cron, a user's Refresh) created this order's reconciliation
        # and committed after this transaction began: invisible here, but the unique
        # constraint sees it. This refresh leaves it to that one and refreshes the rest.
        Reconciliation = self.env["mes.reconciliation"]
        self.env.flush_all()
        with self.env.registry.cursor() as other:
            # Orders committed before this test (the demo's), without a reconciliation.
            other.execute(
                "SELECT id FROM mrp_production p WHERE NOT EXISTS"
                " (SELECT 1 FROM mes_reconciliation r WHERE r.production_id = p.id)"
                " ORDER BY id LIMIT 2"
            )
            productions = self.env["mrp.production"].browse([row[0] for row in other.fetchall()])
            self.assertEqual(len(productions), 2)
            other.execute(
                "INSERT INTO mes_reconciliation (production_id, status) VALUES (%s, 'pending')"
                " RETURNING id",
                (productions[0].id,),
            )
            inserted = other.fetchone()
        try:
            records = Reconciliation._refresh_productions(productions)
            self.assertEqual(records.production_id, productions[1])
            self.assertEqual(records.status, "pending")
        finally:
            if inserted:
                with self.env.registry.cursor() as other:
                    other.execute("DELETE FROM mes_reconciliation WHERE id = %s", inserted)

    def test_balanced_order_per_component_lot_unit_and_scrap(self):
        production = self._run_order()
        record = self._reconcile(production)
        self.assertEqual(record.status, "balanced")
        self.assertFalse(record.unmatched)
        self.assertFalse(record.needs_explanation)
        tz = company_tz(self.company, self.env.user)
        self.assertEqual(record.date, local_date(production.date_finished, tz))
        self.assertEqual(record.warehouse_id, self.env.ref("stock.warehouse0"))
        # A lot-tracked component reads as one line (planned 5, reported and posted 5,
        # no usage variance, its value) with its lots below it as a breakdown.
        housing = self._line(record, "component", self.housing)
        self.assertLine(housing, 5, 5, 5, 0, 0, "balanced", unit_cost=10, posted_value=50)
        self.assertFalse(housing.lot_detail)
        lot_a = self._line(record, "component", self.housing, "LOT-A")
        self.assertLine(lot_a, 0, 3, 3, 0, 0, "balanced", posted_value=0, variance_value=0)
        self.assertTrue(lot_a.lot_detail)
        self.assertLine(
            self._line(record, "component", self.housing, "LOT-B"), 0, 2, 2, 0, 0, "balanced"
        )
        self.assertLine(
            self._line(record, "component", self.screw),
            20,
            21,
            21,
            0,
            1,
            "balanced",
            usage_variance_value=0.5,
        )
        # 1100 g reported, in kg: 1.1 against 1.0 planned, at 20 per kg.
        self.assertLine(
            self._line(record, "component", self.resin),
            1.0,
            1.1,
            1.1,
            0,
            0.1,
            "balanced",
            unit_cost=20,
            posted_value=22,
            usage_variance_value=2.0,
        )
        self.assertEqual(self._line(record, "component", self.resin).uom_id, self.kg)
        self.assertLine(
            self._line(record, "scrap", self.housing),
            0,
            1,
            1,
            0,
            1,
            "balanced",
            usage_variance_value=10,
        )
        self.assertLine(
            self._line(record, "scrap", self.housing, "LOT-B"),
            0,
            1,
            1,
            0,
            0,
            "balanced",
            usage_variance_value=0,
        )
        self.assertLine(self._line(record, "output", self.pump), 5, 5, 5, 0, 0, "balanced")
        self.assertEqual(record.variance_value, 0)
        self.assertAlmostEqual(record.usage_variance_value, 0.5 + 2.0 + 10, places=2)
        # Work center time: what the routing expected, nothing reported or posted.
        assembly = self._line(record, "time", workcenter=self.wc_asm)
        self.assertEqual(
            assembly.planned_qty,
            production.workorder_ids.filtered(
                lambda w: w.workcenter_id == self.wc_asm
            ).duration_expected
            / 60,
        )
        self.assertEqual(assembly.uom_id, self.env.ref("uom.product_uom_hour"))

    def test_period_date_is_the_companys_local_day(self):
        production = self._run_order()
        self.company.partner_id.tz = "Asia/Tokyo"  # UTC+9
        self.env.cr.execute(
            "UPDATE mrp_production SET date_finished = '2026-01-31 20:00:00' WHERE id = %s",
            (production.id,),
        )
        production.invalidate_recordset(["date_finished"])
        record = self._reconcile(production)
        self.assertEqual(str(record.date), "2026-02-01")
        # The month-end of February in Tokyo counts it; January's does not.
        close = self.env["mes.period.close"].create(
            {"date_from": "2026-02-01", "date_to": "2026-02-28"}
        )
        self.assertIn(production, close._productions())
        self.assertEqual(
            [str(bound) for bound in close._utc_bounds()],
            ["2026-01-31 15:00:00", "2026-02-28 15:00:00"],
        )
        january = self.env["mes.period.close"].create(
            {"date_from": "2026-01-01", "date_to": "2026-01-31"}
        )
        self.assertNotIn(production, january._productions())

    def test_manual_change_on_mes_order_is_flagged_unmatched_with_its_value(self):
        production = self._run_order()
        # Someone adds 2 screws by hand to the finished order, and scraps 1 screw on it.
        production.action_toggle_is_locked()
        screw_move = production.move_raw_ids.filtered(lambda m: m.product_id == self.screw)
        screw_move.write(
            {
                "move_line_ids": [
                    Command.create(
                        {
                            "product_id": self.screw.id,
                            "product_uom_id": self.uom_unit.id,
                            "quantity": 2,
                            "location_id": self.stock_location.id,
                            "location_dest_id": screw_move.location_dest_id.id,
                        }
                    )
                ]
            }
        )
        self.assertEqual(screw_move.quantity, 23)
        scrap = self.env["stock.scrap"].create(
            {"product_id": self.screw.id, "scrap_qty": 1, "production_id": production.id}
        )
        scrap.action_validate()
        record = self._reconcile(production)
        screws = self._line(record, "component", self.screw)
        self.assertLine(
            screws,
            20,
            21,
            23,
            2,
            1,
            "variance",
            unmatched_qty=2,
            variance_value=1.0,
            usage_variance_value=0.5,
        )
        self.assertTrue(screws.unmatched)
        scrapped = self._line(record, "scrap", self.screw)
        self.assertLine(scrapped, 0, 0, 1, 1, 0, "variance", unmatched_qty=1, variance_value=0.5)
        # What the MES did report stays balanced.
        self.assertEqual(self._line(record, "component", self.resin).status, "balanced")
        self.assertEqual(record.status, "variance")
        self.assertTrue(record.unmatched)
        self.assertAlmostEqual(record.variance_value, 1.5, places=2)
        self.assertTrue(record.needs_explanation)
        # Within a wider tolerance the screws are no variance, but the manual postings
        # still need an explanation.
        self.backend.reconcile_tolerance_pct = 10  # 2 of 23 is 8.7 %
        record.action_refresh()
        self.assertEqual(self._line(record, "component", self.screw).status, "tolerance")
        self.assertTrue(record.needs_explanation)
        record.with_user(self.finance).explanation = "Two screws lost at rework, booked by hand."
        self.assertFalse(record.needs_explanation)
        self.assertEqual(record.explained_by_id, self.finance)

    def test_work_center_time_reported_by_the_mes_and_a_manual_time_log(self):
        self.wc_asm.costs_hour = 60.0
        production = self._confirmed(qty=1)
        report = self._send(
            production,
            "operation_completed",
            {
                "operation": 10,
                "good_quantity": 1,
                "uom": "Units",
                "setup_minutes": 15,
                "run_minutes": 75,
                "ended_at": at(0, "10:00:00"),
            },
        )
        self._assert_processed(report)
        self.assertEqual(report.workcenter_id, self.wc_asm)
        self._assert_processed(
            self._consume(production, self.housing, 1, lot="LOT-A"),
            self._consume(production, self.screw, 4),
            self._consume(production, self.resin, 200, uom="g"),
            self._complete(production, 1),
        )
        record = self._reconcile(production)
        assembly = self._line(record, "time", workcenter=self.wc_asm)
        # 90 minutes reported and posted against the routing's 60.
        self.assertLine(
            assembly, 1.0, 1.5, 1.5, 0, 0.5, "balanced", unit_cost=60, usage_variance_value=30
        )
        self.assertTrue(assembly.mes_reported)
        # Pack: the MES reports no time for it; Odoo's own log is shown, not reconciled.
        pack = self._line(record, "time", workcenter=self.wc_pack)
        self.assertFalse(pack.mes_reported)
        self.assertEqual((pack.variance_qty, pack.status, pack.unmatched), (0, "balanced", False))
        self.assertEqual(record.status, "balanced")
        # Half an hour booked by hand on the assembly work order.
        workorder = production.workorder_ids.filtered(lambda w: w.workcenter_id == self.wc_asm)
        self.env["mrp.workcenter.productivity"].create(
            {
                "workcenter_id": self.wc_asm.id,
                "workorder_id": workorder.id,
                "loss_id": self.env.ref("mrp.block_reason7").id,
                "date_start": odoo_at(0, "12:00:00"),
                "date_end": odoo_at(0, "12:30:00"),
            }
        )
        record.action_refresh()
        assembly = self._line(record, "time", workcenter=self.wc_asm)
        self.assertLine(
            assembly, 1.0, 1.5, 2.0, 0.5, 0.5, "variance", unmatched_qty=0.5, variance_value=30
        )
        self.assertTrue(record.unmatched)

    def test_unposted_and_unmapped_reports_keep_the_order_pending(self):
        production = self._confirmed(qty=2)
        unmapped = self._send(
            production, "material_consumed", {"product": "MES-Q", "quantity": 2, "uom": "Units"}
        )
        self.assertEqual(unmapped.state, "error")
        with trap_jobs():
            waiting = self._consume(production, self.housing, 2, lot="LOT-A")
        self.assertEqual(waiting.state, "received")  # behind the message in error
        record = self._reconcile(production)
        self.assertEqual(record.status, "pending")
        self.assertEqual(record.pending_messages, 2)
        unknown = record.line_ids.filtered(lambda line: line.mes_code == "MES-Q (Units)")
        self.assertEqual(
            (unknown.reported_qty, unknown.pending_qty, unknown.status), (2, 2, "pending")
        )
        housing = self._line(record, "component", self.housing, "LOT-A")
        self.assertEqual((housing.reported_qty, housing.pending_qty, housing.posted_qty), (2, 2, 0))
        # Cancelled messages are no report at all.
        (unmapped | waiting).action_cancel("test: sent by mistake")
        record.action_refresh()
        self.assertFalse(record.line_ids.filtered(lambda line: line.mes_code or line.lot_name))
        self.assertEqual(record.pending_messages, 0)

    def test_scheduled_refresh_follows_new_messages(self):
        production = self._run_order()
        cron = self.env["mes.reconciliation"]._cron_refresh
        self.assertIn(production, cron())
        record = self.env["mes.reconciliation"].search([("production_id", "=", production.id)])
        self.assertEqual(record.status, "balanced")
        # An hour later nothing of the order changed: it is not refreshed again.
        for query in (
            "UPDATE mrp_production SET write_date = write_date - interval '1 hour' WHERE id = %s",
            "UPDATE mes_message SET write_date = write_date - interval '1 hour' "
            "WHERE production_id = %s",
            "UPDATE stock_move SET write_date = write_date - interval '1 hour' "
            "WHERE raw_material_production_id = %s OR production_id = %s",
        ):
            self.env.cr.execute(query, [production.id] * query.count("%s"))
        self.env.cr.execute(
            "UPDATE mrp_workcenter_productivity SET write_date = write_date - interval '1 hour' "
            "WHERE workorder_id IN %s",
            (tuple(production.workorder_ids.ids),),
        )
        self.env.invalidate_all()
        self.assertNotIn(production, cron())
        # The MES reports once more on the finished order: the message fails (closed order)
        # and the reconciliation shows it as pending after the next refresh.
        late = self._consume(production, self.screw, 1)
        self.assertEqual(late.error_code, "order_closed")
        self.assertIn(production, cron())
        self.assertEqual(record.status, "pending")
        self.assertEqual(self._line(record, "component", self.screw).reported_qty, 22)

    def test_one_order_that_cannot_be_computed_does_not_stop_the_others(self):
        good, bad = self._run_order(), self._run_order()
        recs = self.env["mes.reconciliation"]
        original = type(recs)._recompute_one

        def failing(record):
            if record.production_id == bad:
                raise ValueError("cannot value nan")
            return original(record)

        with (
            patch.object(type(recs), "_recompute_one", failing),
            mute_logger("odoo.addons.mes_reconciliation.models.mes_reconciliation"),
        ):
            records = recs._refresh_productions(good | bad)
        by_order = {r.production_id: r for r in records}
        self.assertEqual(by_order[good].status, "balanced")
        self.assertFalse(by_order[good].refresh_error)
        self.assertEqual(by_order[bad].status, "pending")
        self.assertEqual(by_order[bad].refresh_error, "ValueError: cannot value nan")
        self.assertFalse(by_order[bad].line_ids, "nothing half-computed is kept")
        # The next refresh that succeeds clears it.
        records.action_refresh()
        self.assertEqual(by_order[bad].status, "balanced")
        self.assertFalse(by_order[bad].refresh_error)


class TestMonthEnd(ReconciliationCase):
    def _close(self, production):
        # The order is the only one finished in its period (January 2031).
        self.env.cr.execute(
            "UPDATE mrp_production SET date_finished = '2031-01-15 10:00:00' WHERE id = %s",
            (production.id,),
        )
        production.invalidate_recordset(["date_finished"])
        return (
            self.env["mes.period.close"]
            .with_user(self.finance)
            .create({"date_from": "2031-01-01", "date_to": "2031-01-31"})
        )

    def test_checklist_blocks_until_errors_cleared_and_variances_explained(self):
        production = self._run_order()
        production.action_toggle_is_locked()
        scrap = self.env["stock.scrap"].create(
            {"product_id": self.screw.id, "scrap_qty": 1, "production_id": production.id}
        )
        scrap.action_validate()
        stray = self._send(
            self._confirmed(qty=1),
            "material_consumed",
            {"product": "MES-STRAY", "quantity": 1, "uom": "Units"},
        )
        close = self._close(production)
        close.action_run_checks()
        checks = {check.code: check for check in close.check_ids}
        self.assertFalse(checks["open_errors"].ok)
        self.assertGreaterEqual(checks["open_errors"].count, 1)
        self.assertFalse(checks["unexplained"].ok)
        self.assertEqual(checks["unexplained"].count, 1)
        self.assertFalse(close.all_ok)
        listed = self.env["mes.reconciliation"].search(
            checks["unexplained"].action_open()["domain"]
        )
        self.assertEqual(listed.production_id, production)
        # Refused with its reasons, kept in the period's chatter with who asked.
        answer = close.action_close()
        self.assertEqual(close.state, "open")
        self.assertEqual(answer["params"]["type"], "danger")
        self.assertIn(
            "cannot be closed yet: No MES message in error (", answer["params"]["message"]
        )
        note = close.message_ids[0]
        self.assertIn(f"Close refused (asked by {self.finance.name})", note.body)
        self.assertIn("✘ Variances above tolerance and manual postings explained (1)", note.body)
        self.assertIn(f"Checks run by {self.finance.name}", close.message_ids[1].body)
        checks = {check.code: check for check in close.check_ids}
        # Finance explains; the planner clears the errors.
        listed.with_user(self.finance).explanation = "Manual scrap after inspection."
        self.assertFalse(checks["exports"].ok)  # the test MES never took the exports
        self.env["mes.message"].search(
            [("state", "in", ("error", "failed", "rejected", "pending"))]
        ).action_cancel("test: cleared before close")
        self.assertEqual(stray.state, "cancelled")
        close.action_close()
        self.assertEqual(close.state, "closed")
        self.assertTrue(close.all_ok)
        self.assertEqual(close.closed_by_id, self.finance)
        with self.assertRaises(UserError):
            close.action_run_checks()
        # Finance cannot mark figures or the checklist by hand, nor reopen the period.
        with self.assertRaises(AccessError):
            listed.with_user(self.finance).write({"status": "balanced"})
        with self.assertRaises(AccessError):
            close.write({"state": "open"})
        with self.assertRaises(AccessError):
            close.action_reopen()
        with self.assertRaises(AccessError):
            close.check_ids[:1].with_user(self.finance).write({"ok": False})


class TestDigestAndExport(ReconciliationCase):
    def test_daily_digest_names_the_orders_with_variance(self):
        self.backend.digest_user_ids = self.finance
        balanced = self._run_order()
        varied = self._run_order()
        varied.action_toggle_is_locked()
        self.env["stock.scrap"].create(
            {"product_id": self.screw.id, "scrap_qty": 3, "production_id": varied.id}
        ).action_validate()
        mails_before = self.env["mail.mail"].search([])
        self.assertEqual(self.env["mes.reconciliation"]._cron_send_digest(), 1)
        mail = self.env["mail.mail"].search([]) - mails_before
        self.assertEqual(mail.recipient_ids, self.finance.partner_id)
        self.assertIn("1 new", mail.subject)
        self.assertIn(varied.name, mail.body_html)
        self.assertNotIn(balanced.name, mail.body_html)

    def test_xlsx_export_of_a_period(self):
        production = self._run_order()
        # The only order of its day.
        self.env.cr.execute(
            "UPDATE mrp_production SET date_finished = '2031-03-15 12:00:00' WHERE id = %s",
            (production.id,),
        )
        production.invalidate_recordset(["date_finished"])
        day = self._reconcile(production).date
        wizard = (
            self.env["mes.reconciliation.export"]
            .with_user(self.finance)
            .create({"date_from": day, "date_to": day})
        )
        action = wizard.action_export()
        self.assertIn("/file_data/", action["url"])
        book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(wizard.file_data)))
        self.assertEqual(book.sheetnames, ["Orders", "Lines"])
        orders = list(book["Orders"].iter_rows(values_only=True))
        self.assertEqual(orders[0][0], "Order")
        self.assertEqual([row[0] for row in orders[1:]], [production.name])
        self.assertEqual(orders[1][5], "Balanced")
        lines = list(book["Lines"].iter_rows(values_only=True))
        header = lines[0]
        resin = [row for row in lines[1:] if row[2] == self.resin.display_name]
        self.assertEqual(len(resin), 1)
        row = dict(zip(header, resin[0], strict=True))
        self.assertEqual(row["Unit"], "kg")
        self.assertAlmostEqual(row["MES reported"], 1.1)
        self.assertAlmostEqual(row["Usage variance value"], 2.0)


class TestFinanceScreens(ReconciliationCase):
    def test_export_proposes_last_month_and_says_so(self):
        wizard = self.env["mes.reconciliation.export"].with_user(self.finance).create({})
        first_of_this_month = fields.Date.today().replace(day=1)
        self.assertEqual(wizard.date_to, first_of_this_month - timedelta(days=1))
        self.assertEqual(wizard.date_from, wizard.date_to.replace(day=1))
        self.assertIn("last month", wizard._fields["date_from"].help)

    def test_refresh_from_the_list_brings_finished_orders_in_now(self):
        production = self._run_order()
        self.env["mes.reconciliation"].sudo().search(
            [("production_id", "=", production.id)]
        ).unlink()
        answer = self.env["mes.reconciliation"].with_user(self.finance).action_refresh_list()
        self.assertRegex(answer["params"]["message"], r"^[1-9]\d* order\(s\) brought up to date\.$")
        record = self.env["mes.reconciliation"].search([("production_id", "=", production.id)])
        self.assertEqual(record.status, "balanced")
        # Quantities of different units are never added up.
        for name in ("planned_qty", "reported_qty", "posted_qty", "variance_qty"):
            self.assertIsNone(self.env["mes.reconciliation.line"]._fields[name].aggregator, name)

    def test_analysis_names_each_line_and_keeps_to_finished_orders(self):
        production = self._run_order()
        record = self._reconcile(production)
        time = record.line_ids.filtered(lambda line: line.kind == "time")
        self.assertTrue(time)
        self.assertEqual(set(time.mapped("item")), set(time.workcenter_id.mapped("display_name")))
        component = record.line_ids.filtered(lambda line: line.kind == "component")[:1]
        self.assertEqual(component.item, component.product_id.display_name)
        action = self.env.ref("mes_reconciliation.mes_reconciliation_line_action")
        self.assertEqual(action.context, "{'search_default_finished': 1}")
        running = self._confirmed(qty=1)
        lines = self.env["mes.reconciliation.line"].search(
            [("production_state", "=", "done"), ("production_id", "in", (production | running).ids)]
        )
        self.assertEqual(lines.production_id, production)

    def test_orders_the_mes_never_had_are_not_reconciled(self):
        production = self._confirmed(qty=1)
        production.sudo().mes_state = "not_sent"  # as when its export was not sent
        production.action_assign()
        production.qty_producing = 1
        production.move_raw_ids.picked = True
        production.with_context(skip_consumption=True, skip_backorder=True).button_mark_done()
        self.assertEqual(production.state, "done")
        self.assertIn(production.mes_message_ids.direction, ("outbound", False))
        candidates = self.env["mes.reconciliation"]._refresh_candidates(limit=100000)
        self.assertNotIn(production, candidates)
        reported = self._run_order()
        self.assertIn(reported, self.env["mes.reconciliation"]._refresh_candidates(limit=100000))
