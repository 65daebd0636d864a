from datetime import datetime, time, timedelta

from odoo import fields

from odoo.addons.mes_base.tests.common import day, odoo_at
from odoo.addons.mes_base.tests.test_events import EventCase
from odoo.addons.queue_job.tests.common import trap_jobs


class MaintenanceCase(EventCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.press = cls.env["maintenance.equipment"].create(
            {
                "name": "Press 1",
                "workcenter_id": cls.wc_asm.id,
                "effective_date": day(-50),
            }
        )
        cls.wc_asm.mes_breakdown_threshold = 15
        cls.failure = cls.env.ref("mrp.block_reason1")  # Equipment Failure
        cls.material = cls.env.ref("mrp.block_reason0")  # Material Availability
        mapping = cls.env["mes.mapping"]
        mapping.create(
            {
                "backend_id": cls.backend.id,
                "mapping_type": "workcenter",
                "mes_code": "LINE-1",
                "workcenter_id": cls.wc_asm.id,
            }
        )
        mapping.create(
            {
                "backend_id": cls.backend.id,
                "mapping_type": "downtime_reason",
                "mes_code": "BRK",
                "loss_id": cls.failure.id,
                "mes_breakdown": True,
            }
        )
        mapping.create(
            {
                "backend_id": cls.backend.id,
                "mapping_type": "downtime_reason",
                "mes_code": "MAT",
                "loss_id": cls.material.id,
            }
        )

    def _down(self, ref, start, reason="BRK"):
        return self._send(
            None,
            "downtime_started",
            {
                "downtime_id": ref,
                "resource": "LINE-1",
                "reason": reason,
                "started_at": fields.Datetime.to_datetime(start).isoformat() + "Z",
            },
        )

    def _up(self, ref, end):
        return self._send(
            None,
            "downtime_ended",
            {
                "downtime_id": ref,
                "resource": "LINE-1",
                "ended_at": fields.Datetime.to_datetime(end).isoformat() + "Z",
            },
        )

    def _requests(self):
        return self.env["maintenance.request"].search([("equipment_id", "=", self.press.id)])


class TestBreakdowns(MaintenanceCase):
    def test_breakdown_over_threshold_is_one_corrective_request_closed_by_its_end(self):
        start = self._down("DT-1", odoo_at(0, "08:00:00"))
        self._assert_processed(start)
        self.assertFalse(self._requests(), "how long it lasts is not known at its start")
        end = self._up("DT-1", odoo_at(0, "08:45:00"))
        self._assert_processed(end)
        request = self._requests()
        self.assertEqual(len(request), 1)
        self.assertEqual(request.maintenance_type, "corrective")
        self.assertEqual(request.mes_workcenter_id, self.wc_asm)
        self.assertEqual(request.mes_downtime_ref, "DT-1")
        self.assertEqual(request.mes_reason, "BRK")
        self.assertEqual(request.mes_breakdown_start, datetime.combine(day(0), time(8, 0)))
        self.assertEqual(request.mes_breakdown_end, datetime.combine(day(0), time(8, 45)))
        self.assertEqual(request.request_date, day(0))
        self.assertAlmostEqual(request.duration, 0.75)
        self.assertTrue(request.stage_id.done)
        self.assertEqual(request.close_date, day(0))
        self.assertIn("Equipment Failure", request.name)
        log = start.productivity_ids
        self.assertEqual(log.maintenance_request_id, request)
        self.assertTrue(log.mes_breakdown)

    def test_ongoing_breakdown_opens_its_request_once_past_the_threshold(self):
        now = fields.Datetime.now().replace(microsecond=0)
        start = self._down("DT-2", now - timedelta(minutes=5))
        log = start.productivity_ids
        productivity = self.env["mrp.workcenter.productivity"]
        productivity._cron_mes_breakdowns()
        self.assertFalse(log.maintenance_request_id, "5 minutes: under the threshold")
        log.date_start = now - timedelta(minutes=20)
        productivity._cron_mes_breakdowns()
        request = log.maintenance_request_id
        self.assertTrue(request)
        self.assertFalse(request.stage_id.done)
        self.assertAlmostEqual(request.duration, 20 / 60, places=2)
        # Still down ten minutes later: the same request, its duration grows.
        log.date_start = now - timedelta(minutes=30)
        productivity._cron_mes_breakdowns()
        self.assertEqual(self._requests(), request)
        self.assertAlmostEqual(request.duration, 0.5, places=2)
        self._assert_processed(self._up("DT-2", now))
        self.assertEqual(self._requests(), request)
        self.assertTrue(request.stage_id.done)
        self.assertAlmostEqual(request.duration, 0.5, places=2)

    def test_short_or_other_downtime_opens_no_request(self):
        self._assert_processed(self._down("DT-3", odoo_at(0, "09:00:00")))
        self._assert_processed(self._up("DT-3", odoo_at(0, "09:10:00")))  # 10 min <= 15
        self._assert_processed(self._down("DT-4", odoo_at(0, "10:00:00"), reason="MAT"))
        self._assert_processed(self._up("DT-4", odoo_at(0, "12:00:00")))  # no breakdown
        self.assertFalse(self._requests())
        self.assertFalse(
            self.env["maintenance.request"].search([("mes_downtime_ref", "in", ("DT-3", "DT-4"))])
        )

    def test_mttr_and_mtbf_as_odoo_computes_them_from_breakdowns(self):
        # Two breakdowns of the press: two days, then one day to repair.
        self._assert_processed(self._down("DT-5", odoo_at(-19, "08:00:00")))
        self._assert_processed(self._up("DT-5", odoo_at(-17, "08:00:00")))
        self._assert_processed(self._down("DT-6", odoo_at(-10, "22:00:00")))
        self._assert_processed(self._up("DT-6", odoo_at(-9, "02:00:00")))
        requests = self._requests().sorted("request_date")
        self.assertEqual(
            [(r.request_date, r.close_date) for r in requests],
            [(day(-19), day(-17)), (day(-10), day(-9))],
        )
        self.assertEqual([round(r.duration, 2) for r in requests], [48.0, 4.0])
        self.press.invalidate_recordset()
        # Odoo: MTTR = mean of whole days from request to close; MTBF = days from the
        # equipment's effective date to its latest failure, per failure.
        self.assertEqual(self.press.mttr, 1)  # (2 + 1) / 2, an integer field
        self.assertEqual(self.press.latest_failure_date, day(-10))
        self.assertEqual(self.press.mtbf, 20)  # 40 days / 2 failures
        self.assertEqual(self.press.estimated_next_failure, day(10))

    def test_breakdowns_on_the_planner_dashboard(self):
        now = fields.Datetime.now().replace(microsecond=0)
        start = self._down("DT-9", now - timedelta(minutes=40))
        self.env["mrp.workcenter.productivity"]._cron_mes_breakdowns()
        planner = self.env["res.users"].create(
            {
                "name": "MES planner (maintenance)",
                "login": "mes_maint_planner",
                "groups_id": [
                    (
                        6,
                        0,
                        (
                            self.env.ref("mes_base.group_mes_user")
                            | self.env.ref("maintenance.group_equipment_manager")
                        ).ids,
                    )
                ],
            }
        )
        board = self.env["mes.dashboard"].with_user(planner).get_dashboard("planner")
        section = next(s for s in board["sections"] if s["key"] == "maintenance")
        tiles = {tile["key"]: tile for tile in section["tiles"]}
        for key, records in (
            ("breakdowns", start.productivity_ids),
            ("breakdown_requests", start.productivity_ids.maintenance_request_id),
        ):
            action = tiles[key]["action"]
            found = self.env[action["res_model"]].with_user(planner).search(action["domain"])
            self.assertIn(records, found, key)
            self.assertEqual(tiles[key]["value"], len(found), key)

    def test_end_reported_late_archives_a_request_under_the_threshold(self):
        now = fields.Datetime.now().replace(microsecond=0)
        start = self._down("DT-8", now - timedelta(minutes=40))
        self.env["mrp.workcenter.productivity"]._cron_mes_breakdowns()
        request = start.productivity_ids.maintenance_request_id
        self.assertTrue(request, "40 minutes without an end: a request")
        # The end comes after an outage of the MES link: it stopped after 10 minutes.
        self._assert_processed(self._up("DT-8", now - timedelta(minutes=30)))
        self.assertTrue(request.archive)
        self.assertFalse(start.productivity_ids.maintenance_request_id)
        self.assertIn("end late", request.message_ids[0].body)


class TestBlockedReport(MaintenanceCase):
    def _status_messages(self):
        return self.env["mes.message"].search(
            [("message_type", "=", "resource_status"), ("workcenter_id", "=", self.wc_asm.id)],
            order="id",
        )

    def test_equipment_under_maintenance_blocks_its_work_center_at_the_mes(self):
        self.backend.report_maintenance = True
        new, in_progress = self.env.ref("maintenance.stage_0"), self.env.ref("maintenance.stage_1")
        repaired = self.env.ref("maintenance.stage_3")
        with trap_jobs() as trap:
            request = self.env["maintenance.request"].create(
                {"name": "Replace bearing", "equipment_id": self.press.id, "stage_id": new.id}
            )
            self.assertFalse(self._status_messages(), "a new request does not block yet")
            request.stage_id = in_progress
            blocked = self._status_messages()
            self.assertEqual(len(blocked), 1)
            self.assertEqual(self.wc_asm.mes_reported_status, "blocked")
            trap.perform_enqueued_jobs()
        self.assertEqual(blocked.state, "acknowledged")
        status = self.simulator.store.resources()["T-ASM"]
        self.assertEqual(status["status"], "blocked")
        self.assertIn("Replace bearing", status["reason"])
        with trap_jobs() as trap:
            request.stage_id = repaired
            trap.perform_enqueued_jobs()
        available = self._status_messages() - blocked
        self.assertEqual(available.state, "acknowledged")
        self.assertNotEqual(available.external_id, blocked.external_id)
        self.assertEqual(self.simulator.store.resources()["T-ASM"]["status"], "available")
        self.assertEqual(self.wc_asm.mes_reported_status, "available")

    def test_only_the_latest_status_is_delivered(self):
        self.backend.report_maintenance = True
        in_progress, repaired = (
            self.env.ref("maintenance.stage_1"),
            self.env.ref("maintenance.stage_3"),
        )
        received = len(self.simulator.store.status_receipts())
        self.simulator.down = True
        with trap_jobs() as trap:
            request = self.env["maintenance.request"].create(
                {"name": "Bearing", "equipment_id": self.press.id, "stage_id": in_progress.id}
            )
            blocked = self._status_messages()
            request.stage_id = repaired
            available = self._status_messages() - blocked
            # The MES was down: "blocked" never arrived; it is replaced by "available".
            self.assertEqual(blocked.state, "cancelled")
            self.simulator.down = False
            trap.perform_enqueued_jobs()
        self.assertEqual(available.state, "acknowledged")
        self.assertEqual(self.simulator.store.resources()["T-ASM"]["status"], "available")
        self.assertEqual(len(self.simulator.store.status_receipts()), received + 1)
        # An archived request blocks nothing.
        with trap_jobs():
            request.write({"stage_id": in_progress.id})
            self.assertEqual(self.wc_asm.mes_reported_status, "blocked")
            request.archive = True
        self.assertEqual(self.wc_asm.mes_reported_status, "available")

    def test_nothing_reported_unless_asked_or_for_the_mes_own_breakdown(self):
        in_progress = self.env.ref("maintenance.stage_1")
        with trap_jobs():
            self.env["maintenance.request"].create(
                {"name": "Oil change", "equipment_id": self.press.id, "stage_id": in_progress.id}
            )
        self.assertFalse(self._status_messages(), "the backend does not report maintenance")
        self.backend.report_maintenance = True
        with trap_jobs():
            self._assert_processed(self._down("DT-7", odoo_at(0, "08:00:00")))
            self._assert_processed(self._up("DT-7", odoo_at(0, "09:00:00")))
            breakdown = self._requests().filtered("mes_productivity_id")
            breakdown.write({"stage_id": in_progress.id})
        # The oil change (asked before the backend reported) now counts: one "blocked".
        self.assertEqual(self._status_messages().mapped("state"), ["pending"])
        self.assertIn("Oil change", self._status_messages().payload)
        self.assertNotIn(breakdown.name, self._status_messages().payload)
