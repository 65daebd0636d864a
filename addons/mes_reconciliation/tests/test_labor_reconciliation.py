"""Operator labor per operation beside machine time, in finance's reconciliation."""

from odoo.addons.mes_base.tests.common import at

from .test_reconciliation import ReconciliationCase


class TestLaborReconciliation(ReconciliationCase):
    def test_labor_per_work_center_and_operator_beside_machine_time(self):
        self.wc_asm.costs_hour = 60.0
        anna = self.env["hr.employee"].create(
            {"name": "Anna Operator", "barcode": "B1001", "hourly_cost": 30.0}
        )
        ben = self.env["hr.employee"].create(
            {"name": "Ben Operator", "barcode": "B1002", "hourly_cost": 20.0}
        )
        production = self._confirmed(qty=1)
        self._assert_processed(
            self._send(
                production,
                "operation_completed",
                {
                    "operation": 10,
                    "good_quantity": 1,
                    "uom": "Units",
                    "run_minutes": 60,
                    "ended_at": at(0, "10:00:00"),
                    # Two people on the machine's hour, one of them half of it.
                    "operators": [
                        {"operator": "B1001", "minutes": 60},
                        {"operator": "B1002", "minutes": 30},
                    ],
                },
            ),
            self._consume(production, self.housing, 1, lot="LOT-A"),
            self._consume(production, self.screw, 4),
            self._consume(production, self.resin, 200, uom="g"),
            self._complete(production, 1),
        )
        record = self._reconcile(production)
        self.assertEqual(record.status, "balanced")
        machine = self._line(record, "time", workcenter=self.wc_asm)
        self.assertLine(machine, 1.0, 1.0, 1.0, 0, 0, "balanced", unit_cost=60)
        labor = record.line_ids.filtered(lambda line: line.kind == "labor")
        self.assertEqual(
            sorted(
                (line.operator_name or "", line.reported_qty, line.posted_qty, line.lot_detail)
                for line in labor
            ),
            [
                ("", 1.5, 1.5, False),
                ("Anna Operator", 1.0, 1.0, True),
                ("Ben Operator", 0.5, 0.5, True),
            ],
        )
        total = labor.filtered(lambda line: not line.lot_detail)
        self.assertEqual(total.workcenter_id, self.wc_asm)
        # 1 h of Anna at 30 and half an hour of Ben at 20; no plan, no usage variance.
        self.assertAlmostEqual(total.posted_value, 40.0, places=2)
        self.assertEqual((total.usage_variance_qty, total.status), (0, "balanced"))
        self.assertEqual(
            {anna, ben},
            set(self.env["mes.labor"].search([("production_id", "=", production.id)]).employee_id),
        )
