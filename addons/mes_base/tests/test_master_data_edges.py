"""Master data to the MES on a plant's worst day: kits, variants, flexible hours,
renamed lots and codes, deletions, cancellations, other companies, stopped resyncs.

Each docstring says what the test guards against.
"""

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.queue_job.tests.common import trap_jobs

from ..models.mrp_production import APPLYING_MES_REPORT
from .common import MES_KEY
from .test_master_data import MasterDataCase

MES_KEY_B = MES_KEY


@tagged("post_install", "-at_install")
class TestMasterDataEdges(MasterDataCase):
    def _user(self, login, group, company=None):
        company = company or self.company
        return self.env["res.users"].create(
            {
                "name": login,
                "login": login,
                "company_id": company.id,
                "company_ids": [Command.set(company.ids)],
                "groups_id": [Command.set([self.env.ref(group).id])],
            }
        )

    def _kit(self, operation=None):
        """A kit (phantom bill) of 2 nuts, put on the pump's bill."""
        product = self.env["product.product"]
        self.nut = product.create({"name": "Nut", "default_code": "T-NUT", "is_storable": True})
        kit = product.create({"name": "Fastener kit", "default_code": "T-KIT"})
        self.kit_bom = self.env["mrp.bom"].create(
            {
                "product_tmpl_id": kit.product_tmpl_id.id,
                "type": "phantom",
                "bom_line_ids": [Command.create({"product_id": self.nut.id, "product_qty": 2})],
            }
        )
        self.bom.bom_line_ids = [
            Command.create(
                {
                    "product_id": kit.id,
                    "product_qty": 1,
                    "operation_id": operation.id if operation else False,
                }
            )
        ]
        return kit

    def _company_b(self):
        company_b = self.env["res.company"].create({"name": "Plant B"})
        self.backend.user_id.company_ids += company_b
        backend_b = self.env["mes.backend"].create(
            {
                "name": "MES of B",
                "code": "TEST-B",
                "company_id": company_b.id,
                "base_url": self.simulator.url,
                "outbound_api_key": MES_KEY_B,
                "master_data_enabled": True,
            }
        )
        return company_b, backend_b

    # Bills of materials

    def test_bom_of_two_units_states_its_components_for_two_units(self):
        """Guards against: the bill's components are multiplied by the bill's quantity
        (explode(product, bom.product_qty) takes a factor, not a quantity)."""
        self.bom.product_qty = 2
        document = self.bom._mes_master_document(self.backend)
        self.assertEqual(document["quantity"], 2)
        # 1 housing and 4 screws for 2 pumps, as the bill says (Odoo: 5 pumps -> 10 screws).
        production = self._production(qty=2)
        screws = production.move_raw_ids.filtered(lambda m: m.product_id == self.screw)
        self.assertEqual(screws.product_uom_qty, 4)
        self.assertEqual([c["quantity"] for c in document["components"]], [1.0, 4.0])

    def test_kit_components_keep_the_operation_of_their_kit_line(self):
        """Guards against: a kit exploded in a bill gives its components the kit line's own
        operation (one of the kit's bill, or none), not the operation of the line that
        names the kit, as Odoo's orders do."""
        pack = self.bom.operation_ids.filtered(lambda o: o.sequence == 20)
        self._kit(operation=pack)
        production = self._production(qty=1)
        nut_move = production.move_raw_ids.filtered(lambda m: m.product_id == self.nut)
        self.assertEqual(nut_move.operation_id, pack)  # what Odoo runs
        document = self.bom._mes_master_document(self.backend)
        nuts = [c for c in document["components"] if c["product"]["code"] == "T-NUT"]
        self.assertEqual([(c["quantity"], c["operation_sequence"]) for c in nuts], [(2.0, 20)])

    def test_a_changed_kit_sends_the_bills_it_is_exploded_in(self):
        """Guards against: kits are exploded into bills, but a change of the kit (2 nuts -> 3)
        schedules only the kit's own bill, which the MES never gets: the bills using it
        are never sent again."""
        self._kit()
        self._known()
        bom = self._master("bom", f"BOM-{self.bom.id}")
        self.assertEqual(bom.revision, 1)
        with trap_jobs() as trap:
            self.kit_bom.bom_line_ids.product_qty = 3
            self._commit()
            self._run_jobs(trap)
        held = self._held("bom", f"BOM-{self.bom.id}")
        nuts = [c for c in held["payload"]["components"] if c["product"]["code"] == "T-NUT"]
        self.assertEqual([c["quantity"] for c in nuts], [3.0])

    def test_a_line_bound_to_an_operation_of_another_bill_names_no_operation(self):
        """Guards against: a line whose operation belongs to another bill (RPC skips the
        view's domain) sends that other bill's operation sequence, which this bill does
        not have; Odoo's order gives the move no work order."""
        other = self.env["mrp.bom"].create(
            {
                "product_tmpl_id": self.housing.product_tmpl_id.id,
                "operation_ids": [
                    Command.create(
                        {"name": "Paint", "workcenter_id": self.wc_asm.id, "sequence": 30}
                    )
                ],
            }
        )
        self.bom.bom_line_ids.filtered(lambda line: line.product_id == self.screw).write(
            {"operation_id": other.operation_ids.id}
        )
        document = self.bom._mes_master_document(self.backend)
        sequences = {o["sequence"] for o in document["operations"]}
        for component in document["components"]:
            self.assertIn(component["operation_sequence"], sequences | {None}, component)

    def test_a_line_bound_to_an_archived_operation_names_no_operation(self):
        """Guards against: an operation archived by write (RPC, import) rather than
        action_archive leaves its lines bound to it: the bill sends a component on an
        operation it no longer lists."""
        self.bom.operation_ids[0].write({"active": False})
        document = self.bom._mes_master_document(self.backend)
        sequences = {o["sequence"] for o in document["operations"]}
        for component in document["components"]:
            self.assertIn(component["operation_sequence"], sequences | {None}, component)

    def test_template_bill_of_a_product_with_variants_does_not_block_orders(self):
        """Guards against: a bill for a product template with variants (the usual Odoo setup)
        raises 'set the variant on the bill' when an order of a variant is confirmed:
        no order of such a product can be confirmed once master data is on."""
        colour = self.env["product.attribute"].create(
            {
                "name": "Colour",
                "value_ids": [Command.create({"name": "Red"}), Command.create({"name": "Blue"})],
            }
        )
        template = self.env["product.template"].create(
            {
                "name": "Valve",
                "is_storable": True,
                "attribute_line_ids": [
                    Command.create(
                        {
                            "attribute_id": colour.id,
                            "value_ids": [Command.set(colour.value_ids.ids)],
                        }
                    )
                ],
            }
        )
        red, blue = template.product_variant_ids
        red.default_code, blue.default_code = "T-VALVE-R", "T-VALVE-B"
        bom = self.env["mrp.bom"].create(
            {
                "product_tmpl_id": template.id,
                "bom_line_ids": [Command.create({"product_id": self.screw.id, "product_qty": 2})],
            }
        )
        with trap_jobs() as trap:
            production = self._confirmed(qty=1, product=red, bom=bom)
            self._run_jobs(trap)
        self.assertEqual(production.mes_state, "acknowledged")

    # Work centers

    def test_work_center_with_flexible_hours_can_be_sent(self):
        """Guards against: a work center without working hours (Odoo 18: flexible hours) gives
        "calendar": an empty recordset, not null: its document is invalid and every
        order routed through it is refused at confirmation."""
        self.wc_pack.resource_calendar_id = False
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        self.assertIsNone(self._held("equipment", "T-PACK")["payload"]["calendar"])
        self.assertEqual(production.mes_state, "acknowledged")

    # Lots

    def test_a_renamed_lot_goes_to_the_mes_under_its_new_name(self):
        """Guards against: renaming a lot the MES knows retires its old code with a revision
        'active: false', which the lot schema has no field for: the retirement raises,
        the row shows 'Cannot be sent', the new name never goes and the MES goes on
        consuming the old one as released."""
        self._known()
        with trap_jobs() as trap:
            self.lot_a.name = "LOT-A2"
            self._commit()
            self._run_jobs(trap)
        row = self.env["mes.master.data"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("kind", "=", "lot"),
                ("lot_id", "=", self.lot_a.id),
            ]
        )
        self.assertNotIn("invalid", row.mapped("state"), row.mapped("status_detail"))
        self.assertEqual(self.simulator.usable_lots().get("T-HOUS"), ["LOT-A2"])

    def test_a_new_product_code_sends_its_lots_under_the_new_code(self):
        """Guards against: a new Internal Reference retires the material and re-sends the bills,
        but not the lots (their code is PRODUCT/LOT): the MES has no lot of the new
        material to consume, and no later order sends them (they count as known)."""
        self._known()
        with trap_jobs() as trap:
            self.housing.default_code = "T-HOUS-2"
            self._commit()
            self._run_jobs(trap)
            self._confirmed()
            self._run_jobs(trap)
        self.assertEqual(self.simulator.usable_lots().get("T-HOUS-2"), ["LOT-A"])

    def test_a_lot_that_cannot_be_described_does_not_block_confirmation(self):
        """Guards against: the lots in stock of the components are sent with the order's master
        data (the order does not wait for them), but one that cannot be described (a
        supplier lot number over the MES's 64 characters) makes the confirmation fail."""
        long_lot = self.env["stock.lot"].create({"name": "L" * 70, "product_id": self.housing.id})
        self.env["stock.quant"]._update_available_quantity(
            self.housing, self.stock_location, 3, lot_id=long_lot
        )
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        self.assertEqual(production.state, "confirmed")
        self.assertEqual(production.mes_state, "acknowledged")
        self.assertEqual(self._held("lot", "T-HOUS/LOT-A")["payload"]["status"], "released")

    def test_a_deleted_lot_is_no_longer_consumed_by_the_mes(self):
        """Guards against: a lot received by mistake and deleted stays 'released' at the
        MES (stock.lot has no unlink hook; its row loses the lot, ondelete set null)."""
        self._known()
        with trap_jobs() as trap:
            lot = self.env["stock.lot"].create({"name": "LOT-OOPS", "product_id": self.housing.id})
            self._commit()
            self._run_jobs(trap)
            self.assertIn("LOT-OOPS", self.simulator.usable_lots()["T-HOUS"])
            lot.unlink()
            self._commit()
            self._run_jobs(trap)
        self.assertNotIn("LOT-OOPS", self.simulator.usable_lots()["T-HOUS"])

    def test_lot_created_by_an_mes_report_is_not_sent(self):
        """a lot the MES reported (context mes_report) is the MES's own: not sent;
        one received in Odoo is."""
        self._known()
        with trap_jobs() as trap:
            self.env["stock.lot"].with_context(mes_report=APPLYING_MES_REPORT).create(
                {"name": "LOT-MES", "product_id": self.housing.id}
            )
            self._commit()
            self.assertEqual(trap.enqueued_jobs, [])
            self._run_jobs(trap)
        self.assertFalse(self._master("lot", "T-HOUS/LOT-MES"))

    def test_quality_hold_put_and_released_goes_to_the_mes(self):
        """a quality hold sends the lot 'hold' (the MES stops consuming it), its
        release 'released'."""
        if "mes_hold_ids" not in self.env["stock.lot"]._fields:
            self.skipTest("mes_quality is not installed")
        self._known()
        with trap_jobs() as trap:
            hold = (
                self.env["mes.quality.hold"]
                .sudo()
                .create(
                    {
                        "lot_id": self.lot_a.id,
                        "company_id": self.company.id,
                        "backend_id": self.backend.id,
                        "characteristic": "torque",
                        "mode": "block",
                        "held_at": "2026-01-01 00:00:00",
                    }
                )
            )
            self.lot_a._mes_schedule_status()
            self._commit()
            self._run_jobs(trap)
            self.assertEqual(self._held("lot", "T-HOUS/LOT-A")["payload"]["status"], "hold")
            self.assertNotIn("LOT-A", self.simulator.usable_lots().get("T-HOUS", []))
            hold._release("re-measured")
            self._commit()
            self._run_jobs(trap)
        held = self._held("lot", "T-HOUS/LOT-A")
        self.assertEqual((held["revision"], held["payload"]["status"]), (3, "released"))

    # Cancelled and refused revisions

    def test_a_cancelled_first_revision_is_written_again_for_the_next_order(self):
        """A material's revision an order waits for cannot be cancelled alone (the order
        would wait forever); cancelled with the order's, the next order writes it again."""
        with trap_jobs() as trap:
            first = self._confirmed()
            material = self._master("material", "T-SCR")
            with self.assertRaisesRegex(UserError, "wait for Material T-SCR"):
                material.message_ids.action_cancel("MES maintenance: not now")
            order = first.mes_message_ids.filtered(lambda m: m.direction == "outbound")
            bom = self._master("bom", f"BOM-{self.bom.id}")  # it names the screw too
            (material.message_ids | bom.message_ids | order).action_cancel("not now")
            self.assertEqual((material.state, bom.state), ("new", "new"))
            self.assertEqual(first.mes_state, "not_sent")
            second = self._confirmed()
            self._run_jobs(trap)
        self.assertEqual((material.state, bom.state), ("known", "known"))
        self.assertEqual((material.revision, bom.revision), (2, 2))
        self.assertEqual(second.mes_state, "acknowledged")

    def test_a_refused_revision_then_an_unchanged_save_sends_nothing(self):
        """refused, then a save that changes nothing the MES holds: no revision."""
        self.simulator.refuse_materials = {"T-SCR": "unknown class"}
        with trap_jobs() as trap:
            self._confirmed()
            self._run_jobs(trap)
            material = self._master("material", "T-SCR")
            self.assertEqual(material.state, "refused")
            self.screw.write({"name": self.screw.name, "default_code": "T-SCR"})
            self._commit()
            self.assertEqual(trap.enqueued_jobs, [])
        self.assertEqual(material.revision, 1)

    def test_a_write_that_changes_nothing_sends_nothing(self):
        """the same values written again (product, bill, work center) send nothing."""
        self._known()
        with trap_jobs() as trap:
            self.screw.write({"name": "Screw", "uom_id": self.uom_unit.id, "active": True})
            self.bom.write({"product_qty": 1, "code": self.bom.code})
            self.bom.bom_line_ids[1].product_qty = 4
            self.wc_asm.write({"default_capacity": 1, "name": "Test Assembly"})
            self._commit()
            self.assertEqual(trap.enqueued_jobs, [])

    # Resync

    def test_a_manager_stops_and_resumes_a_resync(self):
        """Guards against: Stop and Resume (shown to MES managers) write the run's state as the
        manager, who has read access only to mes.master.resync: AccessError."""
        manager = self._user("md-attack-manager", "mes_base.group_mes_manager")
        with trap_jobs():
            run = self.env["mes.master.resync"].browse(
                self.backend.with_user(manager).action_resync_master_data()["res_id"]
            )
            run.with_user(manager).action_stop()
            self.assertEqual(run.state, "stopped")
            run.with_user(manager).action_resume()
            self.assertEqual(run.state, "running")

    def test_a_stopped_run_is_not_resumed_beside_a_running_one(self):
        """Guards against: _start refuses a second running run of a backend, Resume does not:
        two runs of one MES write side by side (each record written twice)."""
        with trap_jobs():
            first = self.env["mes.master.resync"]._start(self.backend)
            first.action_stop()
            second = self.env["mes.master.resync"]._start(self.backend)
            with self.assertRaises(UserError):
                first.action_resume()
        self.assertEqual((first.state, second.state), ("stopped", "running"))

    def test_resync_sends_the_lots_in_stock_of_kit_components(self):
        """Guards against: a resync sends the lots in stock of components of normal
        bills only; a tracked component that reaches the order through a kit has its
        lots sent by the order, not by the resync (a go-live MES lacks them)."""
        self._kit()
        self.nut.tracking = "lot"
        nut_lot = self.env["stock.lot"].create({"name": "NUT-1", "product_id": self.nut.id})
        self.env["stock.quant"]._update_available_quantity(
            self.nut, self.stock_location, 100, lot_id=nut_lot
        )
        with trap_jobs() as trap:
            run = self.env["mes.master.resync"]._start(self.backend)
            while trap.enqueued_jobs:
                self._run_jobs(trap)
        self.assertEqual(run.state, "written")
        self.assertIsNotNone(self._held("material", "T-NUT"))
        self.assertEqual(self.simulator.usable_lots().get("T-NUT"), ["NUT-1"])

    def test_resync_actions_refused_to_planners_and_other_companies(self):
        """planners cannot stop, resume or write master data; a manager of
        another company cannot see this company's master data or runs, nor act on them."""
        self._known()
        planner = self._user("md-attack-planner", "mes_base.group_mes_user")
        company_b = self.env["res.company"].create({"name": "Plant B"})
        manager_b = self._user("md-attack-manager-b", "mes_base.group_mes_manager", company_b)
        with trap_jobs():
            run = self.env["mes.master.resync"]._start(self.backend)
        for method in ("action_stop", "action_resume"):
            with self.assertRaises(AccessError):
                getattr(run.with_user(planner), method)()
            with self.assertRaises(AccessError):
                getattr(run.with_user(manager_b), method)()
        self.assertEqual(run.state, "running")
        with self.assertRaises(AccessError):
            self._master("material", "T-SCR").with_user(planner).write({"code": "X"})
        self.assertEqual(self.env["mes.master.data"].with_user(manager_b).search_count([]), 0)
        self.assertEqual(self.env["mes.master.resync"].with_user(manager_b).search_count([]), 0)
        with self.assertRaises(AccessError):
            self.backend.with_user(manager_b).action_resync_master_data()
        # Planners read their company's master data.
        self.assertEqual(self.env["mes.master.data"].with_user(planner).search_count([]), 7)

    # Multi-company

    def test_a_product_moved_to_company_a_is_no_longer_sent_to_company_b(self):
        """Guards against: a shared product the MES of company B knows is moved to company A;
        its next rename still goes to company B's MES (rows are compared per backend,
        never against the product's company)."""
        _company_b, backend_b = self._company_b()
        master = self.env["mes.master.data"].sudo()
        with trap_jobs():
            master._ensure(backend_b, "material", self.screw)
            self.screw.product_tmpl_id.company_id = self.company
            self._commit()
            self.screw.name = "Screw, secret alloy of A"
            self._commit()
        row_b = self._master("material", "T-SCR", backend_b)
        names = [m.payload for m in row_b.message_ids]
        self.assertFalse([p for p in names if "secret alloy" in p])

    def test_idempotency_keys_differ_per_backend(self):
        """the same record and revision gets another key on another backend."""
        _company_b, backend_b = self._company_b()
        master = self.env["mes.master.data"].sudo()
        with trap_jobs():
            master._ensure(self.backend, "material", self.screw)
            master._ensure(backend_b, "material", self.screw)
        a = self._master("material", "T-SCR").message_ids
        b = self._master("material", "T-SCR", backend_b).message_ids
        self.assertEqual((a.revision, b.revision), (1, 1))
        self.assertNotEqual(a.external_id, b.external_id)

    def test_a_renamed_unit_goes_to_the_mes(self):
        """Guards against: materials and bills name their unit; renaming the unit
        (uom.uom has no hook) sends nothing: the MES keeps a unit Odoo no longer has,
        while the orders name the new one."""
        self._known()
        with trap_jobs() as trap:
            self.uom_unit.name = "Pieces"
            self._commit()
            self._run_jobs(trap)
        self.assertEqual(self._held("material", "T-SCR")["payload"]["uom"], "Pieces")

    # B2MML and other languages

    def test_b2mml_delivers_what_odoo_describes(self):
        """B2MML in a Sync BOD carries every field as the JSON document says,
        names in other scripts, a two-week calendar ending at 24:00, a by-product."""
        self.backend.write({"payload_format": "b2mml", "b2mml_transaction": True})
        self.screw.name = "Schraube Ø4 – 螺丝 «test» & <x>"  # noqa: RUF001
        calendar = self.env["resource.calendar"].create(
            {
                "name": "Équipes 2×8",  # noqa: RUF001
                "tz": "Asia/Tokyo",
                "two_weeks_calendar": True,
                "attendance_ids": [
                    Command.create(
                        {
                            "name": "s",
                            "dayofweek": str(day),
                            "hour_from": 0,
                            "hour_to": 24,
                            "week_type": week,
                        }
                    )
                    for week in ("0", "1")
                    for day in range(7)
                ],
            }
        )
        self.wc_asm.resource_calendar_id = calendar
        waste = self.env["product.product"].create(
            {"name": "Swarf", "default_code": "T-SWARF", "is_storable": True}
        )
        self.bom.byproduct_ids = [
            Command.create(
                {
                    "product_id": waste.id,
                    "product_qty": 0.25,
                    "operation_id": self.bom.operation_ids[0].id,
                }
            )
        ]
        with trap_jobs() as trap:
            production = self._confirmed()
            self._run_jobs(trap)
        self.assertEqual(production.mes_state, "acknowledged")
        for kind, record, code in (
            ("material", self.screw, "T-SCR"),
            ("material", waste, "T-SWARF"),
            ("equipment", self.wc_asm, "T-ASM"),
            ("bom", self.bom, f"BOM-{self.bom.id}"),
            ("lot", self.lot_a, "T-HOUS/LOT-A"),
        ):
            expected = dict(record._mes_master_document(self.backend), revision=1)
            self.assertEqual(self._held(kind, code)["payload"], expected, kind)

    def test_names_go_in_the_language_of_the_integration_user(self):
        """names in the integration user's language; a translation in another
        language changes nothing the MES holds."""
        self.env["res.lang"]._activate_lang("fr_FR")
        self.backend.user_id.lang = "fr_FR"
        self._known()
        with trap_jobs() as trap:
            self.screw.with_context(lang="fr_FR").name = "Vis"
            self._commit()
            self._run_jobs(trap)
            self.assertEqual(self._held("material", "T-SCR")["payload"]["name"], "Vis")
            self.screw.with_context(lang="en_US").name = "Screw M4"
            self._commit()
            self.assertEqual(trap.enqueued_jobs, [])
