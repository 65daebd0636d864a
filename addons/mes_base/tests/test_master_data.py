import json
from operator import attrgetter

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.tests.common import trap_jobs

from mes_connector.simulator import Store

from .common import MesCase


class MasterDataCase(MesCase):
    """The test backend sending master data to a strict simulated MES, empty for each
    test, and what tests of master data do."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.master_data_enabled = True

    def setUp(self):
        super().setUp()
        # Each test's MES starts empty: Odoo's side is rolled back after each test, and
        # its keys come again.
        store = self.simulator.store
        self.simulator.store = Store(":memory:")
        self.addCleanup(setattr, self.simulator, "store", store)
        self.simulator.strict = True
        self.simulator.refuse_materials = {}
        self.addCleanup(setattr, self.simulator, "strict", False)

    def _commit(self):
        # Changes are compared once, in precommit, as at the end of a real transaction.
        self.env.cr.flush()

    def _run_jobs(self, trap):
        """Run the queued jobs as queue_job's runner does, by priority, until none is
        left to run now: a job that asks to be tried later is rolled back and set aside
        (what wakes it queues it again). Returns the descriptions of those set aside."""
        postponed = []
        for _round in range(10):
            jobs = sorted(trap.enqueued_jobs, key=attrgetter("priority"))
            trap.enqueued_jobs = []
            if not jobs:
                break
            for job in jobs:
                try:
                    with self.env.cr.savepoint():
                        job.perform()
                except RetryableJobError as err:
                    postponed.append(str(err))
        return postponed

    def _master(self, kind, code, backend=None):
        return self.env["mes.master.data"].search(
            [
                ("backend_id", "=", (backend or self.backend).id),
                ("kind", "=", kind),
                ("code", "=", code),
            ]
        )

    def _held(self, kind, code):
        """What the simulated MES holds of a record (its latest document), or None."""
        for item in self.simulator.store.master_data(kind):
            if item["code"] == code:
                return item
        return None

    def _confirmed(self, qty=5, product=None, bom=None):
        production = self.env["mrp.production"].create(
            {
                "product_id": (product or self.pump).id,
                "product_qty": qty,
                "bom_id": (bom or self.bom).id,
            }
        )
        production.action_confirm()
        return production

    def _known(self):
        """The first order confirmed and sent: the MES knows its master data."""
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        self.assertEqual(production.mes_state, "acknowledged")
        return production


@tagged("post_install", "-at_install")
class TestMasterData(MasterDataCase):
    """Products, work centers, bills of materials and lots go to the MES before the
    orders that name them, and again when what the MES must know of them changes."""

    def test_first_order_sends_its_master_data_first_then_the_order(self):
        with trap_jobs() as trap:
            production = self._confirmed()
            order = production.mes_message_ids.filtered(lambda m: m.direction == "outbound")
            needs = order.needs_master_data_ids
            self.assertEqual(
                sorted(needs.mapped(lambda r: (r.kind, r.code))),
                [
                    ("bom", f"BOM-{self.bom.id}"),
                    ("equipment", "T-ASM"),
                    ("equipment", "T-PACK"),
                    ("material", "T-HOUS"),
                    ("material", "T-PUMP"),
                    ("material", "T-SCR"),
                ],
            )
            self.assertEqual(set(needs.mapped("state")), {"pending"})
            self.assertEqual(set(needs.mapped("revision")), {1})
            # The order says what it waits for.
            self.assertIn("Waits for its master data", production.mes_status_reason)
            self._run_jobs(trap)
        self.assertEqual(set(needs.mapped("state")), {"known"})
        self.assertEqual(set(needs.mapped("acknowledged_revision")), {1})
        self.assertEqual(order.state, "acknowledged")
        self.assertEqual(production.mes_state, "acknowledged")
        # The strict MES took the order: it knew every code.
        self.assertEqual(self.simulator.store.order(production.name)["revision"], 1)
        housing = self._held("material", "T-HOUS")
        self.assertEqual(
            (housing["revision"], housing["payload"]["tracking"], housing["payload"]["uom"]),
            (1, "lot", "Units"),
        )
        bom = self._held("bom", f"BOM-{self.bom.id}")["payload"]
        self.assertEqual(
            [
                (c["product"]["code"], c["quantity"], c["operation_sequence"])
                for c in bom["components"]
            ],
            [("T-HOUS", 1.0, 10), ("T-SCR", 4.0, None)],
        )
        self.assertEqual(
            [(o["sequence"], o["resource"]) for o in bom["operations"]],
            [(10, "T-ASM"), (20, "T-PACK")],
        )
        # The lot in stock of its tracked component, for the shop floor to consume.
        self.assertEqual(self._held("lot", "T-HOUS/LOT-A")["payload"]["status"], "released")
        asm = self._held("equipment", "T-ASM")["payload"]
        self.assertEqual(
            asm["calendar"]["attendances"][0], {"weekday": 0, "from": "08:00", "to": "12:00"}
        )

    def test_second_order_sends_no_master_data_again(self):
        with trap_jobs() as trap:
            self._confirmed()
            self._run_jobs(trap)
        count = self.env["mes.message"].search_count(
            [("backend_id", "=", self.backend.id), ("master_data_id", "!=", False)]
        )
        self.assertEqual(count, 7)  # and the lot in stock of the housing
        with trap_jobs() as trap:
            second = self._confirmed()
            self.assertEqual(len(trap.enqueued_jobs), 1)  # the order alone
            self._run_jobs(trap)
        self.assertEqual(second.mes_state, "acknowledged")
        self.assertEqual(
            self.env["mes.message"].search_count(
                [("backend_id", "=", self.backend.id), ("master_data_id", "!=", False)]
            ),
            7,
        )

    def test_without_master_data_a_strict_mes_refuses_the_order(self):
        self.backend.master_data_enabled = False
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        order = production.mes_message_ids.filtered(lambda m: m.direction == "outbound")
        self.assertEqual(order.state, "rejected")
        self.assertIn("T-PUMP", order.error_text)
        self.assertIn("unknown to the MES", order.error_text)
        self.assertFalse(self.env["mes.master.data"].search([("backend_id", "=", self.backend.id)]))

    def test_renamed_product_sends_one_revision_an_unrelated_write_none(self):
        self._known()
        material = self._master("material", "T-SCR")
        with trap_jobs() as trap:
            self.screw.list_price = 12.5
            self.screw.product_tmpl_id.description = "Unrelated"
            self._commit()
            self.assertEqual(trap.enqueued_jobs, [])
            self.screw.name = "Screw M4"
            self.screw.product_tmpl_id.write({"name": "Screw M4x10"})  # the same save, twice
            self._commit()
            self.assertEqual(len(trap.enqueued_jobs), 1)
            self._run_jobs(trap)
        self.assertEqual(material.revision, 2)
        self.assertEqual(
            material.message_ids.sorted("revision").mapped("state"), ["acknowledged"] * 2
        )
        held = self._held("material", "T-SCR")
        self.assertEqual((held["revision"], held["payload"]["name"]), (2, "Screw M4x10"))
        # Bills name their products by code: a new name changes none of them.
        self.assertEqual(self._master("bom", f"BOM-{self.bom.id}").revision, 1)

    def test_a_changed_bill_sends_its_next_version(self):
        self._known()
        bom = self._master("bom", f"BOM-{self.bom.id}")
        with trap_jobs() as trap:
            self.bom.bom_line_ids.filtered(
                lambda line: line.product_id == self.screw
            ).product_qty = 6
            self.bom.operation_ids[1].time_cycle_manual = 12
            self._commit()
            self._run_jobs(trap)
        self.assertEqual(bom.revision, 2)
        held = self._held("bom", f"BOM-{self.bom.id}")
        self.assertEqual(held["revision"], 2)
        self.assertEqual([c["quantity"] for c in held["payload"]["components"]], [1.0, 6.0])
        self.assertEqual(held["payload"]["operations"][1]["duration_minutes"], 12.0)

    def test_work_center_calendar_change_sends_its_equipment(self):
        self._known()
        calendar = self.env["resource.calendar"].create(
            {
                "name": "Two shifts",
                "tz": "Europe/Brussels",
                "attendance_ids": [
                    Command.create({"name": "Mon", "dayofweek": "0", "hour_from": 6, "hour_to": 22})
                ],
            }
        )
        with trap_jobs() as trap:
            self.wc_asm.resource_calendar_id = calendar
            self._commit()
            self._run_jobs(trap)
            calendar.attendance_ids.hour_to = 23.5
            self._commit()
            self._run_jobs(trap)
        held = self._held("equipment", "T-ASM")
        self.assertEqual(held["revision"], 3)
        self.assertEqual(
            held["payload"]["calendar"],
            {
                "name": "Two shifts",
                "timezone": "Europe/Brussels",
                "hours_per_day": calendar.hours_per_day,
                "attendances": [{"weekday": 0, "from": "06:00", "to": "23:30"}],
            },
        )
        self.assertEqual(self._master("equipment", "T-PACK").revision, 1)

    def test_new_code_retires_the_old_one(self):
        self._known()
        with trap_jobs() as trap:
            self.screw.default_code = "T-SCR-2"
            self._commit()
            self._run_jobs(trap)
        self.assertEqual(self._held("material", "T-SCR")["payload"]["active"], False)
        self.assertEqual(self._held("material", "T-SCR")["revision"], 2)
        self.assertEqual(self._held("material", "T-SCR-2")["revision"], 1)
        bom = self._held("bom", f"BOM-{self.bom.id}")
        self.assertEqual(bom["revision"], 2)
        self.assertEqual(
            [c["product"]["code"] for c in bom["payload"]["components"]], ["T-HOUS", "T-SCR-2"]
        )

    def test_refused_material_is_an_exception_and_its_orders_wait(self):
        self.simulator.refuse_materials = {"T-HOUS": "no storage class for lot items"}
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        housing = self._master("material", "T-HOUS")
        self.assertEqual(housing.state, "refused")
        self.assertIn("no storage class for lot items", housing.status_detail)
        refused = housing.message_ids
        self.assertEqual(refused.state, "rejected")
        self.assertIn("no storage class for lot items", refused.error_text)
        order = production.mes_message_ids.filtered(lambda m: m.direction == "outbound")
        self.assertEqual(order.state, "pending")
        self.assertIsNone(self.simulator.store.order(production.name))
        self.assertEqual(
            production.mes_status_reason,
            "Waits for its master data: material T-HOUS refused by the MES "
            f"({housing.status_detail.splitlines()[0]}); bill of materials BOM-{self.bom.id} "
            "on its way.",
        )
        # The bill naming it waits too; fixed at the MES, retried: all goes on.
        self.simulator.refuse_materials = {}
        with trap_jobs() as trap:
            refused.action_retry()
            self._run_jobs(trap)
        self.assertEqual(housing.state, "known")
        self.assertEqual(order.state, "acknowledged")
        self.assertEqual(self.simulator.store.order(production.name)["revision"], 1)

    def test_an_order_cancelled_while_it_waits_for_its_master_data_sends_nothing(self):
        self.simulator.refuse_materials = {"T-HOUS": "no storage class for lot items"}
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
            production.action_cancel()
            self._run_jobs(trap)
        revision = production.mes_message_ids.filtered(lambda m: m.direction == "outbound")
        self.assertEqual(revision.state, "cancelled")
        self.assertEqual(
            revision.cancel_reason,
            f"{production.name} was cancelled before the MES got it (it waited for its "
            "master data): nothing was sent.",
        )
        self.assertEqual((production.mes_state, production.mes_revision), ("not_sent", 0))
        self.assertIsNone(self.simulator.store.order(production.name))

    def test_a_later_revision_supersedes_a_refused_one(self):
        self.simulator.refuse_materials = {"T-SCR": "name too short"}
        with trap_jobs() as trap:
            self._confirmed()
            self._run_jobs(trap)
        material = self._master("material", "T-SCR")
        self.assertEqual(material.state, "refused")
        self.simulator.refuse_materials = {}
        with trap_jobs() as trap:
            self.screw.name = "Screw, zinc plated"
            self._commit()
            self._run_jobs(trap)
        first, second = material.message_ids.sorted("revision")
        self.assertEqual((first.state, second.state), ("cancelled", "acknowledged"))
        self.assertEqual(
            first.cancel_reason, "Superseded by revision 2: the MES gets the latest only."
        )
        self.assertEqual(material.state, "known")

    def test_lot_received_of_a_known_component_goes_to_the_mes(self):
        self._known()
        with trap_jobs() as trap:
            self.env["stock.lot"].create({"name": "LOT-NEW", "product_id": self.housing.id})
            finished = self.env["stock.lot"].create({"name": "P-1", "product_id": self.pump.id})
            self._commit()
            self._run_jobs(trap)
        held = self._held("lot", "T-HOUS/LOT-NEW")
        self.assertEqual(
            held["payload"],
            {
                "schema": "mes.material_lot/1",
                "revision": 1,
                "product": "T-HOUS",
                "lot": "LOT-NEW",
                "tracking": "lot",
                "status": "released",
                "expires_at": None,
            },
        )
        # The pump is no component: its lots are the MES's output, not sent.
        self.assertFalse(self._master("lot", "T-PUMP/P-1"))
        self.assertTrue(finished)
        self.assertIn("LOT-NEW", self.simulator.store.lots_for("T-HOUS"))

    def test_b2mml_backend_sends_master_data_in_b2mml(self):
        self.backend.write({"payload_format": "b2mml", "b2mml_transaction": True})
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        material = self._master("material", "T-HOUS").message_ids
        self.assertEqual(material.payload_format, "xml")
        self.assertIn("SyncMaterialInformation", material.payload)
        self.assertEqual(material.state, "acknowledged")
        self.assertEqual(self._held("material", "T-HOUS")["payload"]["tracking"], "lot")
        self.assertEqual(production.mes_state, "acknowledged")

    def test_a_product_without_code_cannot_go_and_says_so(self):
        nameless = self.env["product.product"].create({"name": "Glue", "is_storable": True})
        self.bom.bom_line_ids = [Command.create({"product_id": nameless.id, "product_qty": 1})]
        with self.assertRaisesRegex(UserError, "Glue has none"):
            self._confirmed()

    def test_a_product_the_mes_knows_losing_its_code_is_noted_not_refused(self):
        self._known()
        with trap_jobs() as trap:
            self.screw.default_code = False
            self._commit()
            self.assertEqual(trap.enqueued_jobs, [])
        material = self._master("material", "T-SCR")
        self.assertEqual(material.state, "invalid")
        self.assertIn("Internal Reference", material.status_detail)
        self.assertFalse(self.screw.default_code)  # the save stands

    def test_resync_writes_everything_once_and_goes_on_after_a_stop(self):
        self._known()
        other = self.env["mrp.bom"].create(
            {
                "product_tmpl_id": self.housing.product_tmpl_id.id,
                "bom_line_ids": [Command.create({"product_id": self.screw.id, "product_qty": 2})],
            }
        )
        with trap_jobs() as trap:
            action = self.backend.action_resync_master_data()
            run = self.env["mes.master.resync"].browse(action["res_id"])
            self.assertEqual(run.state, "running")
            # Demo work centers of the company count as well: all of them are written.
            planned = run.planned_count
            self._run_jobs(trap)  # material chunk, then it queues the next
            while trap.enqueued_jobs:
                self._run_jobs(trap)
        self.assertEqual(run.state, "written")
        self.assertEqual(run.written_count + run.skipped_count, planned)
        bom = self._master("bom", f"BOM-{other.id}")
        self.assertEqual((bom.revision, bom.state), (1, "known"))
        # Known before: written again once (a new MES may not have it).
        self.assertEqual(self._master("material", "T-SCR").revision, 2)
        self.assertEqual(run.refused_count, 0)
        self.assertEqual(run.to_deliver_count, 0)
        self.assertEqual(run.progress, 100.0)
        # A second run while one is running is refused; after, it writes all again.
        with trap_jobs():
            second = self.env["mes.master.resync"].browse(
                self.backend.action_resync_master_data()["res_id"]
            )
            with self.assertRaisesRegex(UserError, "already running"):
                self.backend.action_resync_master_data()
            second.action_stop()
            self.assertEqual(second.state, "stopped")

    def test_resync_chunk_run_twice_writes_once(self):
        with trap_jobs():
            run = self.env["mes.master.resync"]._start(self.backend)
        run._run_chunk("material", 0)
        written = run.written_count
        messages = self.env["mes.message"].search_count([("resync_id", "=", run.id)])
        # The same chunk again (a job queued twice): another job went on, nothing written.
        self.assertEqual(
            run._run_chunk("material", 0), "nothing to do: another job of this run went on"
        )
        self.assertEqual(
            self.env["mes.message"].search_count([("resync_id", "=", run.id)]), messages
        )
        self.assertEqual(run.written_count, written)

    def test_resync_is_for_mes_managers(self):
        self._known()
        user = self.env["res.users"].create(
            {
                "name": "Planner",
                "login": "md-planner",
                "groups_id": [Command.set([self.env.ref("mes_base.group_mes_user").id])],
            }
        )
        with self.assertRaises(AccessError):
            self.backend.with_user(user).action_resync_master_data()
        manager = self.env["res.users"].create(
            {
                "name": "Integrator",
                "login": "md-integrator",
                "groups_id": [Command.set([self.env.ref("mes_base.group_mes_manager").id])],
            }
        )
        with trap_jobs():
            action = self.backend.with_user(manager).action_resync_master_data()
        self.assertEqual(action["res_model"], "mes.master.resync")
        # Planners read master data; nobody writes it but the suite.
        self.assertEqual(self.env["mes.master.data"].with_user(user).search_count([]), 7)
        with self.assertRaises(AccessError):
            self.env["mes.master.data"].with_user(manager).create(
                {"backend_id": self.backend.id, "kind": "material", "code": "X"}
            )

    def test_document_shapes(self):
        material = self.housing._mes_master_document(self.backend)
        self.assertEqual(
            material,
            {
                "schema": "mes.material/1",
                "code": "T-HOUS",
                "name": "Housing",
                "uom": "Units",
                "tracking": "lot",
                "class": self.housing.categ_id.complete_name,
                "active": True,
            },
        )
        self.assertEqual(json.loads(json.dumps(material)), material)
