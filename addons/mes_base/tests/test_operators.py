"""Who did the work: operators by badge or mapped code, their labor beside machine time."""

from odoo.tests import new_test_user

from odoo.addons.queue_job.tests.common import trap_jobs

from .common import at
from .test_events import EventCase


class TestOperators(EventCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.anna_user = new_test_user(cls.env, "mes_op_anna", groups="mrp.group_mrp_user")
        employee = cls.env["hr.employee"]
        cls.anna = employee.create(
            {"name": "Anna Operator", "barcode": "B1001", "user_id": cls.anna_user.id}
        )
        cls.ben = employee.create({"name": "Ben Operator", "barcode": "B1002"})
        cls.carl = employee.create({"name": "Carl Setter"})
        cls.env["mes.mapping"].create(
            {
                "backend_id": cls.backend.id,
                "mapping_type": "operator",
                "mes_code": "SETTER-7",
                "employee_id": cls.carl.id,
            }
        )

    def _report(self, production, operators, run=30, setup=0, event="operation_progress"):
        return self._send(
            production,
            event,
            {
                "operation": 10,
                "good_quantity": 1,
                "uom": "Units",
                "setup_minutes": setup,
                "run_minutes": run,
                "ended_at": at(0, "10:00:00"),
                "operators": operators,
            },
        )

    def test_operators_by_badge_or_mapping_and_their_labor(self):
        production = self._confirmed(qty=2)
        crew = self._report(
            production,
            [{"operator": "B1001", "minutes": 40}, {"operator": "SETTER-7", "minutes": 15}],
            run=30,
            setup=10,
        )
        self._assert_processed(crew)
        self.assertEqual(
            [
                (line.employee_id, line.minutes, line.user_id)
                for line in crew.labor_ids.sorted("id")
            ],
            [(self.anna, 40, self.anna_user), (self.carl, 15, self.env["res.users"])],
        )
        self.assertEqual(crew.labor_ids.workcenter_id, self.wc_asm)
        self.assertEqual(crew.labor_ids.production_id, production)
        # Machine time as reported (10 setup, 30 run); a crew: the logs keep Odoo's user.
        self.assertEqual(sorted(crew.productivity_ids.mapped("duration")), [10.0, 30.0])
        self.assertNotIn(self.anna_user, crew.productivity_ids.user_id)
        self.assertIn("labor: Anna Operator 40 min, Carl Setter 15 min", crew.result_text)
        alone = self._report(production, [{"operator": "B1001", "minutes": 25}], run=25)
        self._assert_processed(alone)
        # One operator: the time log is hers.
        self.assertEqual(alone.productivity_ids.user_id, self.anna_user)
        labor = self.env["mes.labor"].search([("production_id", "=", production.id)])
        self.assertEqual(sum(labor.mapped("minutes")), 80)
        self.assertEqual(sorted(labor.mapped("hours")), [0.25, 25 / 60, 40 / 60])

    def test_an_unknown_operator_is_named_and_nothing_is_logged(self):
        production = self._confirmed(qty=2)
        message = self._report(
            production, [{"operator": "B1002", "minutes": 5}, {"operator": "X-9", "minutes": 5}]
        )
        self.assertEqual(message.error_code, "unmapped_operator")
        self.assertIn(
            "data.operators[1].operator: MES code 'X-9' is not mapped", message.error_text
        )
        self.assertFalse(self.env["mes.labor"].search([("production_id", "=", production.id)]))
        self.assertFalse(message.productivity_ids)
        # Mapped, then retried: Ben by his badge, X-9 as the mapping says.
        self.env["mes.mapping"].create(
            {
                "backend_id": self.backend.id,
                "mapping_type": "operator",
                "mes_code": "X-9",
                "employee_id": self.anna.id,
            }
        )
        with trap_jobs():
            message.action_retry()
        self._assert_processed(message)
        self.assertEqual(message.labor_ids.employee_id, self.ben | self.anna)

    def test_an_employee_of_another_company_is_not_found_by_badge(self):
        other = self.env["res.company"].create({"name": "Other plant (ops)"})
        self.env["hr.employee"].create(
            {"name": "Outsider", "barcode": "B9999", "company_id": other.id}
        )
        production = self._confirmed(qty=1)
        message = self._report(production, [{"operator": "B9999", "minutes": 5}])
        self.assertEqual(message.error_code, "unmapped_operator")
