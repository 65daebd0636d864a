from odoo.tests import new_test_user

from odoo.addons.queue_job.tests.common import trap_jobs

from .test_events import EventCase


class TestErrorCauses(EventCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.responsible = new_test_user(cls.env, "mes_cause_resp", groups="mes_base.group_mes_user")
        cls.shift_lead = new_test_user(cls.env, "mes_cause_lead", groups="mes_base.group_mes_user")
        cls.outsider = new_test_user(cls.env, "mes_cause_out", groups="base.group_user")
        cls.leads = cls.env["res.groups"].create(
            {"name": "Shift leads", "users": [(6, 0, (cls.shift_lead | cls.outsider).ids)]}
        )
        cls.backend.write(
            {"notify_user_ids": [(6, 0, cls.responsible.ids)], "notify_group_id": cls.leads.id}
        )

    def _causes(self, name):
        return self.env["mes.error.cause"].search(
            [("backend_id", "=", self.backend.id), ("name", "=", name)]
        )

    def _unmapped(self, code, production=None):
        return self._send(
            production or self._confirmed(qty=1),
            "material_consumed",
            {"product": code, "quantity": 1, "uom": "Units"},
        )

    def test_one_activity_per_cause_and_user_until_cleared(self):
        first = self._unmapped("MES-C1")
        self.assertEqual(first.state, "error")
        # An error asks the sync to run soon.
        cron = self.env.ref("mes_base.ir_cron_mes_error_causes")
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]))
        self.env["mes.error.cause"]._cron_sync()
        cause = self._causes("unmapped_product: MES-C1")
        self.assertEqual(len(cause), 1)
        self.assertEqual((cause.state, cause.severity), ("open", "error"))
        self.assertEqual(first.error_cause_id, cause)
        # The responsible user and the group's MES users; not the one who cannot see messages.
        self.assertEqual(cause.activity_ids.user_id, self.responsible | self.shift_lead)
        self.assertIn("MES-C1", cause.activity_ids[0].summary)
        # More messages of the same cause: no more activities.
        second = self._unmapped("MES-C1")
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(self._causes("unmapped_product: MES-C1"), cause)
        self.assertEqual(len(cause.activity_ids), 2)
        self.assertEqual(second.error_cause_id, cause)
        self.assertEqual(cause.message_ids_count, 2)
        # Another cause: its own activities.
        other = self._unmapped("MES-C2")
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(len(other.error_cause_id.activity_ids), 2)
        # The fix, then a retry that fails again the same way: still the one open cause.
        with trap_jobs() as trap:
            cause.action_retry_messages()
            self.assertEqual((first.state, second.state), ("received", "received"))
            self.env["mes.error.cause"]._cron_sync()
            self.assertEqual(cause.state, "open", "retried messages not yet posted")
            trap.perform_enqueued_jobs()
        self.assertEqual(first.state, "error")
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(self._causes("unmapped_product: MES-C1"), cause)
        self.assertEqual(len(cause.activity_ids), 2)
        self._map("product", "MES-C1", product_id=self.screw)
        with trap_jobs() as trap:
            cause.action_retry_messages()
            trap.perform_enqueued_jobs()
        self._assert_processed(first, second)
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(cause.state, "cleared")
        self.assertTrue(cause.cleared_at)
        self.assertFalse(cause.activity_ids)
        self.assertIn("Cleared", cause.message_ids.mapped("body")[0])
        self.assertEqual(other.error_cause_id.state, "open")
        # The same cause again later (the mapping removed): a new record, new activities.
        self.env["mes.mapping"].search([("mes_code", "=", "MES-C1")]).unlink()
        again = self._unmapped("MES-C1")
        self.env["mes.error.cause"]._cron_sync()
        self.assertNotEqual(again.error_cause_id, cause)
        self.assertEqual(again.error_cause_id.state, "open")
        self.assertEqual(len(again.error_cause_id.activity_ids), 2)

    def test_cancelled_messages_clear_their_cause(self):
        message = self._unmapped("MES-C3")
        self.env["mes.error.cause"]._cron_sync()
        cause = message.error_cause_id
        message.action_cancel("sent by mistake by the MES")
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(cause.state, "cleared")

    def test_severity_below_the_backend_threshold_opens_no_activity(self):
        self.backend.notify_severity = "critical"
        message = self._unmapped("MES-C4")
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(message.error_cause_id.severity, "error")
        self.assertFalse(message.error_cause_id.activity_ids)
        # A refused export is critical.
        production = self._confirmed(qty=1)
        export = self.env["mes.message"].search(
            [("production_id", "=", production.id), ("direction", "=", "outbound")]
        )
        export.sudo().write(
            {"state": "rejected", "error_code": "mes_http_422", "cause_code": "mes_http_422"}
        )
        self.env["mes.error.cause"]._cron_sync()
        self.assertEqual(export.error_cause_id.severity, "critical")
        self.assertEqual(len(export.error_cause_id.activity_ids), 2)
        self.backend.notify_severity = "never"
        self._unmapped("MES-C5")
        export2 = self.env["mes.message"].search(
            [("production_id", "=", self._confirmed(qty=1).id), ("direction", "=", "outbound")]
        )
        export2.sudo().write(
            {"state": "rejected", "error_code": "mes_http_500", "cause_code": "mes_http_500"}
        )
        self.env["mes.error.cause"]._cron_sync()
        self.assertFalse(export2.error_cause_id.activity_ids)
