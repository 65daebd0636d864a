import re
from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from .common import INBOUND_KEY
from .test_events import EventCase

METRICS = "/mes/api/v1/metrics"


@tagged("post_install", "-at_install")
class TestMonitoring(EventCase, HttpCase):
    """What the MES managers' monitoring reads: liveness, and metrics in the Prometheus
    text format, for the backends of the key holder's companies only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, "mes_metrics_manager", groups="base.group_user,mes_base.group_mes_manager"
        )
        cls.planner = new_test_user(
            cls.env, "mes_metrics_planner", groups="base.group_user,mes_base.group_mes_user"
        )

    def _key(self, user):
        return (
            self.env["res.users.apikeys"]
            .with_user(user)
            ._generate(
                scope="rpc",
                name="monitoring",
                expiration_date=fields.Datetime.now() + timedelta(days=30),
            )
        )

    def _scrape(self, key, status=200):
        response = self.url_open(METRICS, headers={"Authorization": f"Bearer {key}"})
        self.assertEqual(response.status_code, status, response.text[:300])
        return response

    def _samples(self, text):
        """{(metric, frozenset of labels): value} of an exposition."""
        samples = {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
            self.assertTrue(match, line)
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2)))
            samples[(match.group(1), labels)] = float(match.group(3))
        return samples

    def test_health_answers_without_a_key(self):
        response = self.url_open("/mes/api/v1/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "pass"})

    def test_metrics_need_an_mes_managers_key(self):
        response = self.url_open(METRICS)
        self.assertEqual(response.status_code, 401)
        self._scrape("not-a-key", status=401)
        self._scrape(self._key(self.planner), status=403)
        # The MES's own intake key opens the intake only.
        self._scrape(INBOUND_KEY, status=401)
        response = self._scrape(self._key(self.manager))
        self.assertEqual(
            response.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8"
        )

    def test_faults_show_in_the_metrics_while_they_last(self):
        key = self._key(self.manager)
        # The MES is down while an order is sent: the export waits for its next try.
        self.simulator.down = True
        production = self.env["mrp.production"].create(
            {"product_id": self.pump.id, "product_qty": 1, "bom_id": self.bom.id}
        )
        production.action_confirm()
        export = production.mes_message_ids
        job = Job.load(self.env, export.job_uuid)
        with self.assertRaises(RetryableJobError):
            job.perform()
        # What queue_job's runner does with a job that must be tried again.
        job.postpone(result="MES not reachable: HTTP 503", seconds=60)
        job.set_pending(reset_retry=False)
        job.store()
        self.assertEqual((export.state, export.error_code), ("pending", "retrying"))
        # An MES code nobody mapped.
        unmapped = self._consume(production, self.screw, 4)
        self.assertEqual(unmapped.state, "processed")
        unmapped = self._send(
            production,
            "material_consumed",
            {"product": "MES-9999", "quantity": 1, "uom": "Units"},
        )
        self.assertEqual(unmapped.error_code, "unmapped_product")
        self.env["mes.error.cause"]._cron_sync()

        samples = self._samples(self._scrape(key).text)
        backend = ("backend", "TEST")
        self.assertEqual(samples[("mes_exports_retrying", frozenset({backend}))], 1)
        open_error = frozenset({backend, ("direction", "inbound"), ("state", "error")})
        self.assertEqual(samples[("mes_messages_open", open_error)], 1)
        pending = frozenset({backend, ("direction", "outbound"), ("state", "pending")})
        self.assertEqual(samples[("mes_messages_open", pending)], 1)
        cause = frozenset({backend, ("cause", "unmapped_product"), ("severity", "error")})
        self.assertEqual(samples[("mes_error_causes_open", cause)], 1)
        age = samples[("mes_messages_open_oldest_age_seconds", open_error)]
        self.assertGreaterEqual(age, 0)
        self.assertLess(age, 600)
        # Two reports received and one posted in the last 15 minutes; one order sent.
        self.assertEqual(
            samples[("mes_messages_received_per_minute", frozenset({backend}))], 2 / 15
        )
        self.assertEqual(samples[("mes_messages_sent_per_minute", frozenset({backend}))], 1 / 15)
        self.assertEqual(samples[("mes_messages_posted_per_minute", frozenset({backend}))], 1 / 15)
        contact = samples[("mes_last_contact_age_seconds", frozenset({backend}))]
        self.assertLess(contact, 600)
        self.assertIn(
            ("mes_post_latency_seconds", frozenset({backend, ("quantile", "0.5")})), samples
        )

        # Fixed: the MES is back and the code is mapped; the faults are gone.
        self.simulator.down = False
        job = Job.load(self.env, export.job_uuid)
        job.perform()
        self._map("product", "MES-9999", product_id=self.screw)
        unmapped.action_retry()
        self.assertEqual(unmapped.state, "processed")
        self.env["mes.error.cause"]._cron_sync()
        samples = self._samples(self._scrape(key).text)
        self.assertEqual(samples[("mes_exports_retrying", frozenset({backend}))], 0)
        self.assertNotIn(("mes_messages_open", open_error), samples)
        self.assertNotIn(("mes_messages_open", pending), samples)
        self.assertNotIn(("mes_error_causes_open", cause), samples)

    def test_a_manager_of_another_company_reads_only_its_own(self):
        other = self.env["res.company"].create({"name": "Other plant"})
        outsider = new_test_user(
            self.env,
            "mes_metrics_other",
            groups="base.group_user,mes_base.group_mes_manager",
            company_id=other.id,
            company_ids=[other.id],
        )
        text = self._scrape(self._key(outsider)).text
        self.assertNotIn('backend="TEST"', text)
        self.assertIn('backend="TEST"', self._scrape(self._key(self.manager)).text)
