from odoo.tests import HttpCase, new_test_user, tagged

from .test_reconciliation import ReconciliationCase


@tagged("post_install", "-at_install")
class TestReconciliationTour(ReconciliationCase, HttpCase):
    def test_finance_explains_a_manual_posting_in_the_browser(self):
        new_test_user(
            self.env,
            "mes_tour_finance",
            password="mes_tour_finance",
            groups="mes_reconciliation.group_mes_reconciliation",
        )
        production = self._run_order()
        production.action_toggle_is_locked()
        self.env["stock.scrap"].create(
            {"product_id": self.screw.id, "scrap_qty": 1, "production_id": production.id}
        ).action_validate()
        record = self._reconcile(production)
        self.assertTrue(record.needs_explanation)
        self.start_tour(
            "/odoo/action-mes_reconciliation.mes_reconciliation_action",
            "mes_reconciliation_explain",
            login="mes_tour_finance",
        )
        record.invalidate_recordset()
        self.assertEqual(record.explanation, "Manual scrap after inspection, approved by QA.")
        self.assertFalse(record.needs_explanation)
        self.assertEqual(record.explained_by_id.login, "mes_tour_finance")

    def test_finance_reads_a_lot_tracked_component_on_one_line(self):
        new_test_user(
            self.env,
            "mes_tour_finance_lots",
            password="mes_tour_finance_lots",
            groups="mes_reconciliation.group_mes_reconciliation",
        )
        production = self._confirmed(qty=5)
        self._assert_processed(
            self._consume(production, self.housing, 4, lot="LOT-A"),
            self._consume(production, self.housing, 2, lot="LOT-B"),
            self._consume(production, self.screw, 20),
            self._consume(production, self.resin, 1000, uom="g"),
            self._complete(production, 5),
        )
        record = self._reconcile(production)
        housing = record.line_ids.filtered(
            lambda line: line.product_id == self.housing and not line.lot_detail
        )
        self.assertEqual((housing.usage_variance_qty, housing.usage_variance_value), (1, 10))
        self.start_tour(
            f"/odoo/action-mes_reconciliation.mes_reconciliation_action/{record.id}",
            "mes_reconciliation_lots",
            login="mes_tour_finance_lots",
        )
