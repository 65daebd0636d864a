"""Serial units, partial confirmations, rework and operators as the world treats them:
events twice and out of order, serials reused, other companies, other units of measure,
units reworked twice, lots made in parts; and their reconciliation."""

import json

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user

from odoo.addons.mes_base.tests.common import at, recent
from odoo.addons.mes_base.tests.test_rework import ReworkCase
from odoo.addons.queue_job.tests.common import trap_jobs


class TestUnitsEdges(ReworkCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        product = cls.env["product.product"]
        cls.gear = product.create(
            {"name": "Gear", "default_code": "T-GEAR", "is_storable": True, "tracking": "lot"}
        )
        cls.gear_bom = cls.env["mrp.bom"].create(
            {
                "product_tmpl_id": cls.gear.product_tmpl_id.id,
                "product_qty": 1,
                "consumption": "flexible",
                "bom_line_ids": [
                    Command.create({"product_id": cls.housing.id, "product_qty": 1}),
                    Command.create({"product_id": cls.screw.id, "product_qty": 4}),
                ],
            }
        )

    # Helpers

    def _internal(self, product, lot=None, company=None):
        domain = [
            ("product_id", "=", product.id),
            ("location_id.usage", "=", "internal"),
        ]
        if lot is not None:
            domain.append(("lot_id", "=", lot.id))
        if company is not None:
            domain.append(("company_id", "=", company.id))
        return sum(self.stock.search(domain).mapped("quantity"))

    def _ev(self, ref, event_type, **data):
        return self._send(None, event_type, data, order_ref=ref)

    def _sent(self, ref, serials, reason="LEAK"):
        unit = {"product": "T-VALVE", "quantity": len(serials), "uom": "Units", "serials": serials}
        return self._ev(ref, "rework_started", reason=reason, **unit)

    def _out(self, ref, serials, result, **extra):
        unit = {"product": "T-VALVE", "quantity": len(serials), "uom": "Units", "serials": serials}
        return self._ev(ref, "rework_completed", result=result, **unit, **extra)

    def _pumps_done(self, qty=5):
        production = self._confirmed(qty=qty)
        self._consume(production, self.housing, qty, lot="LOT-A")
        self._consume(production, self.screw, 4 * qty)
        self._assert_processed(self._complete(production, qty=qty))
        return production

    def _reconcile(self, productions):
        return self.env["mes.reconciliation"]._refresh_productions(productions)

    def _recon_lines(self, record):
        return sorted(
            (
                line.kind,
                line.product_id.default_code or "",
                line.lot_name or "",
                line.reported_qty,
                line.posted_qty,
                line.status,
            )
            for line in record.line_ids
            if line.status != "balanced"
        )

    def _cancel(self, message):
        message.action_cancel("sent by mistake")

    # 1. Serial units: idempotency, order, reuse

    def test_same_unit_event_twice_is_a_duplicate(self):
        """PASS expected: the same event id twice is answered duplicate, one unit."""
        production, ref = self._valves(3)
        event = {
            "schema": "mes.event/1",
            "event_id": "ATT-DUP-1",
            "event_type": "output_produced",
            "order_ref": ref,
            "sequence": 1,
            "occurred_at": recent(),
            "data": {"product": "T-VALVE", "quantity": 1, "uom": "Units", "serials": ["D-1"]},
        }
        with trap_jobs():
            first = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
            second = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
        self.assertEqual(first["status"], "accepted")
        self.assertEqual(second["status"], "duplicate", second)
        self.env["mes.message"].browse(first["message_id"])._process()
        self.assertEqual(len(self._family(production)), 2)

    def test_rework_before_its_unit_out_of_order_waits_then_posts(self):
        """PASS expected: a rework report ahead of the unit's report (sequence gap) waits."""
        production, ref = self._valves(2)
        self._assert_processed(self._unit(ref, "O-1", sensor="SEN-1"))
        early = self._store(
            None,
            "rework_started",
            {
                "product": "T-VALVE",
                "quantity": 1,
                "uom": "Units",
                "serials": ["O-2"],
                "reason": "LEAK",
            },
            sequence=3,
            order_ref=ref,
        )
        early._process()
        self.assertIn(early.state, ("received", "waiting"), early.error_text)
        unit = self._store(
            None,
            "output_produced",
            {
                "product": "T-VALVE",
                "quantity": 1,
                "uom": "Units",
                "serials": ["O-2"],
            },
            sequence=2,
            order_ref=ref,
        )
        unit._process()
        self._assert_processed(unit, early)
        self.assertEqual(self._at(self.rework_location, self.valve, self._serial("O-2")), 1)
        # O-2 was the last planned unit: posted, the order open for a replacement.
        self.assertEqual(self._family(production).mapped("state"), ["done", "done", "confirmed"])

    def test_unit_after_order_closed_short_is_refused(self):
        """PASS expected: a unit after the order was closed short is an error."""
        _production, ref = self._valves(3)
        self._assert_processed(self._unit(ref, "CS-1", sensor="SEN-1"), self._complete_ref(ref))
        late = self._unit(ref, "CS-2", sensor="SEN-2")
        self.assertEqual((late.state, late.error_code), ("error", "order_closed"))
        self.assertEqual(self._on_hand(self.sensor, self.sensors[1]), 1)
        self.assertFalse(self._serial("CS-2") and self._internal(self.valve, self._serial("CS-2")))

    def test_serial_scrapped_in_rework_may_be_produced_again(self):
        """PASS expected: Odoo allows a scrapped serial to be produced again."""
        _production, ref = self._two_valves()
        self._assert_processed(self._sent(ref, ["SN-2"]), self._out(ref, ["SN-2"], "scrapped"))
        _other, ref2 = self._valves(1)
        self._assert_processed(self._unit(ref2, "SN-2", sensor="SEN-3"), self._complete_ref(ref2))
        self.assertEqual(self._internal(self.valve, self._serial("SN-2")), 1)

    def test_replacement_unit_after_the_last_unit_went_to_rework(self):
        """The MES sends its last planned unit to rework and makes a replacement unit to
        fill the order: as a unit more than planned (which raises the quantity, see
        test_one_unit_more_than_planned_raises_the_quantity), it should be posted."""
        _production, ref = self._valves(2)
        self._assert_processed(
            self._unit(ref, "RP-1", sensor="SEN-1"), self._unit(ref, "RP-2", sensor="SEN-2")
        )
        self._assert_processed(self._sent(ref, ["RP-2"]))
        replacement = self._unit(ref, "RP-3", sensor="SEN-3")
        self._assert_processed(replacement)
        self._assert_processed(self._complete_ref(ref, quantity=3, uom="Units"))
        self.assertEqual(self._internal(self.valve, self._serial("RP-3")), 1)

    # 2. Units of measure

    def test_serial_units_of_an_order_in_dozens(self):
        """An order of 1 Dozen valves; the MES reports each unit (1 Units, its serial)."""
        production = self.env["mrp.production"].create(
            {
                "product_id": self.valve.id,
                "product_qty": 1,
                "product_uom_id": self.uom_dozen.id,
                "bom_id": self.valve_bom.id,
            }
        )
        with trap_jobs():
            production.action_confirm()
        ref = production.name
        # Odoo converts an order of a serial product to the product's unit on confirmation.
        self.assertEqual((production.product_qty, production.product_uom_id), (12, self.uom_unit))
        first = self._unit(ref, "DZ-1", sensor="SEN-1")
        self._assert_processed(first)
        done = self._family(production).filtered(lambda p: p.state == "done")
        self.assertEqual(len(done), 1)
        self.assertEqual(done.lot_producing_id.name, "DZ-1")
        self.assertEqual(self._internal(self.valve, self._serial("DZ-1")), 1)

    def test_completion_quantity_in_dozens_for_serial_units(self):
        """PASS expected: 3 units confirmed as 0.25 Dozen."""
        production, ref = self._valves(3)
        for serial, sensor in (("Z1", "SEN-1"), ("Z2", "SEN-2"), ("Z3", "SEN-3")):
            self._assert_processed(self._unit(ref, serial, sensor=sensor))
        self._assert_processed(self._complete_ref(ref, quantity=0.25, uom="Dozens"))
        self.assertEqual(self._family(production).mapped("state"), ["done"] * 3)

    # 3. Consumption owned by Odoo

    def test_odoo_owned_serial_units_one_by_one(self):
        """PASS expected: Odoo owns consumption; units reported one by one, one more than
        planned; each unit consumes the bill once."""
        self.backend.consumption_owner = "odoo"
        production, ref = self._valves(2)
        for serial in ("OW-1", "OW-2", "OW-3"):
            message = self._ev(
                ref,
                "output_produced",
                product="T-VALVE",
                quantity=1,
                uom="Units",
                serials=[serial],
            )
            self._assert_processed(message)
        self._assert_processed(self._complete_ref(ref))
        family = self._family(production)
        self.assertEqual(family.mapped("state"), ["done"] * 3)
        for serial in ("OW-1", "OW-2", "OW-3"):
            genealogy = self._genealogy(serial)
            self.assertEqual(genealogy["T-SCR"], [("", 4)], serial)
            self.assertEqual(len(genealogy["T-SENS"]), 1, serial)
        self.assertEqual(
            sum(self._on_hand(self.sensor, lot) for lot in self.sensors), 8 - 3, "sensors left"
        )

    # 4. Partial confirmations

    def test_partial_confirmation_with_close_on_completion_off(self):
        """close_on_completion off: a planner closes the order at the end. A shift's
        partial confirmation still posts its part (as documented on the backend)."""
        self.backend.close_on_completion = False
        production = self._confirmed(qty=10)
        ref = production.name
        self._consume(production, self.housing, 6, lot="LOT-A")
        self._consume(production, self.screw, 24)
        part = self._ev(ref, "order_completed", final=False, quantity=6, uom="Units")
        self._assert_processed(part)
        rest = production._mes_open_member()
        self.assertEqual((production.state, production.qty_produced), ("done", 6))
        self.assertEqual((rest.state, rest.product_qty), ("confirmed", 4))
        self._ev(ref, "material_consumed", product="T-HOUS", quantity=4, uom="Units", lot="LOT-A")
        self._ev(ref, "material_consumed", product="T-SCR", quantity=16, uom="Units")
        final = self._ev(ref, "order_completed", quantity=4, uom="Units")
        self._assert_processed(final)
        # The final confirmation leaves the rest open for a planner.
        self.assertEqual((rest.state, rest.qty_producing), ("progress", 4))

    def test_lot_product_partial_shifts_report_the_same_lot(self):
        """PASS expected: a lot-tracked product; shift two reports the same lot as shift one."""
        production = self._confirmed(qty=10, product=self.gear, bom=self.gear_bom)
        ref = production.name
        self._consume(production, self.housing, 6, lot="LOT-A")
        self._consume(production, self.screw, 24)
        self._assert_processed(
            self._ev(ref, "output_produced", product="T-GEAR", quantity=6, uom="Units", lot="G1"),
            self._ev(ref, "order_completed", final=False),
        )
        rest = production._mes_open_member()
        self.assertNotEqual(rest, production)
        self._assert_processed(
            self._ev(
                ref, "material_consumed", product="T-HOUS", quantity=4, uom="Units", lot="LOT-A"
            ),
            self._ev(ref, "material_consumed", product="T-SCR", quantity=16, uom="Units"),
            self._ev(ref, "output_produced", product="T-GEAR", quantity=4, uom="Units", lot="G1"),
            self._ev(ref, "order_completed"),
        )
        family = production._mes_family()
        self.assertEqual([(p.state, p.qty_produced) for p in family], [("done", 6), ("done", 4)])
        g1 = self._serial("G1", self.gear)
        self.assertEqual(self._internal(self.gear, g1), 10)
        records = self._reconcile(family)
        self.assertEqual(
            [(r.status, self._recon_lines(r)) for r in records], [("balanced", [])] * 2
        )

    # 5. Rework

    def test_same_serial_sent_to_rework_twice(self):
        """The MES resends 'SN-1 sent to rework' (a new event id): SN-1 is already in
        rework. The second report must not make a second rework of the one unit."""
        _production, ref = self._two_valves()
        self._assert_processed(self._sent(ref, ["SN-1"]))
        again = self._sent(ref, ["SN-1"])
        in_rework = self.env["mes.rework"].search(
            [("lot_id", "=", self._serial("SN-1").id), ("state", "=", "rework")]
        )
        self.assertEqual(
            (again.state, len(in_rework)),
            ("error", 1),
            f"second report {again.state} ({again.result_text or again.error_text}); "
            f"{len(in_rework)} reworks of the one unit SN-1",
        )

    def test_quantity_sent_to_rework_twice_counts_what_is_in_rework_as_stock(self):
        """5 pumps made, 3 sent to rework, then 3 more: only 2 are left in stock outside
        rework; the report must be refused (rework_not_in_stock)."""
        self.backend.rework_method = "return"
        production = self._pumps_done(5)
        ref = production.name
        self._assert_processed(
            self._ev(
                ref, "rework_started", product="T-PUMP", quantity=3, uom="Units", reason="LEAK"
            )
        )
        again = self._ev(
            ref, "rework_started", product="T-PUMP", quantity=3, uom="Units", reason="LEAK"
        )
        reworks = self.env["mes.rework"].search([("mes_order_ref", "=", ref)])
        self.assertEqual(
            (again.error_code, sum(reworks.mapped("quantity"))),
            ("rework_not_in_stock", 3),
            f"in rework by the records: {sum(reworks.mapped('quantity'))}, in the rework "
            f"location: {self._at(self.rework_location, self.pump)}",
        )

    def test_rework_of_more_of_a_lot_than_in_stock_is_refused(self):
        """PASS expected."""
        self.backend.rework_method = "return"
        production = self._confirmed(qty=5, product=self.gear, bom=self.gear_bom)
        ref = production.name
        self._consume(production, self.housing, 5, lot="LOT-A")
        self._consume(production, self.screw, 20)
        self._assert_processed(self._complete(production, qty=5, lot="G5"))
        message = self._ev(
            ref,
            "rework_started",
            product="T-GEAR",
            quantity=6,
            uom="Units",
            lot="G5",
            reason="LEAK",
        )
        self.assertEqual(message.error_code, "rework_not_in_stock")
        self.assertEqual(
            self._at(self.rework_location, self.gear, self._serial("G5", self.gear)), 0
        )

    def test_rework_takes_no_stock_of_another_company(self):
        """Company A's order made 5 pumps, all shipped; company B has 10 pumps (the
        product is shared). A's MES sends 3 pumps to rework: A has none, refused."""
        self.backend.rework_method = "return"
        other = self.env["res.company"].create({"name": "Plant B (edges)"})
        warehouse_b = self.env["stock.warehouse"].search([("company_id", "=", other.id)], limit=1)
        self.assertTrue(warehouse_b)
        production = self._pumps_done(5)
        self.stock._update_available_quantity(self.pump, self.stock_location, -5)
        self.stock._update_available_quantity(self.pump, warehouse_b.lot_stock_id, 10)
        message = self._ev(
            production.name,
            "rework_started",
            product="T-PUMP",
            quantity=3,
            uom="Units",
            reason="LEAK",
        )
        self.assertEqual(
            (message.error_code, self._internal(self.pump, company=other)),
            ("rework_not_in_stock", 10),
            message.result_text,
        )

    def test_rework_of_a_serial_the_order_did_not_make(self):
        """SN-X was bought (in stock, never produced). The MES names order REF: rework
        is recorded for what Odoo produced, SN-X is refused by name and stays put."""
        _production, ref = self._two_valves()
        lot = self.env["stock.lot"].create({"name": "SN-X", "product_id": self.valve.id})
        self.stock._update_available_quantity(self.valve, self.stock_location, 1, lot_id=lot)
        message = self._sent(ref, ["SN-X"])
        self.assertEqual((message.state, message.error_code), ("error", "rework_not_produced"))
        self.assertIn("SN-X of [T-VALVE] Valve was not produced", message.error_text)
        self.assertEqual(self._at(self.stock_location, self.valve, lot), 1)
        self.assertFalse(self.env["mes.rework"].search([("lot_id", "=", lot.id)]))

    def test_rework_completion_of_a_serial_rebuilt_already(self):
        """PASS expected: a second 'good' for a unit already rebuilt is refused."""
        _production, ref = self._two_valves()
        self._assert_processed(self._sent(ref, ["SN-1"]), self._out(ref, ["SN-1"], "good"))
        again = self._out(ref, ["SN-1"], "good")
        self.assertEqual(again.error_code, "not_in_rework")

    def test_second_rework_of_a_rebuilt_unit_unbuilds_what_it_is_made_of_now(self):
        """SN-1 reworked: its sensor SEN-1 replaced by SEN-6. Reworked again, its sensor
        SEN-6 replaced by SEN-7: the part scrapped is SEN-6, and SN-1 is made of SEN-7."""
        _production, ref = self._two_valves()
        new = lambda serial: [  # noqa: E731
            {"product": "T-SENS", "quantity": 1, "uom": "Units", "serials": [serial]}
        ]
        self._assert_processed(
            self._sent(ref, ["SN-1"]), self._out(ref, ["SN-1"], "good", components=new("SEN-6"))
        )
        self._assert_processed(self._sent(ref, ["SN-1"]))
        second = self._out(ref, ["SN-1"], "good", components=new("SEN-7"))
        self._assert_processed(second)
        rework = second.rework_ids
        self.assertEqual(
            rework.scrap_ids.lot_id.mapped("name"),
            ["SEN-6"],
            "the second rework scrapped the sensor SN-1 no longer had",
        )
        made_of = rework.rebuild_id.move_finished_ids.move_line_ids.consume_line_ids
        self.assertEqual(
            sorted((line.product_id.default_code, line.lot_id.name or "") for line in made_of),
            [("T-HOUS", "LOT-A"), ("T-SCR", ""), ("T-SENS", "SEN-7")],
        )
        # SEN-6 is nowhere in stock (scrapped), SEN-1 neither.
        self.assertEqual(self._internal(self.sensor, self.sensors[5]), 0)
        self.assertEqual(self._internal(self.sensor, self.sensors[0]), 0)

    def test_rework_of_a_lot_made_in_two_parts_rebuilds_all_of_it(self):
        """Gear lot G2 made in two shifts (6 + 4); 8 of it reworked good (rebuild):
        the rebuild must consume the parts of 8 gears."""
        production = self._confirmed(qty=10, product=self.gear, bom=self.gear_bom)
        ref = production.name
        self._consume(production, self.housing, 6, lot="LOT-A")
        self._consume(production, self.screw, 24)
        self._assert_processed(
            self._ev(ref, "output_produced", product="T-GEAR", quantity=6, uom="Units", lot="G2"),
            self._ev(ref, "order_completed", final=False),
            self._ev(
                ref, "material_consumed", product="T-HOUS", quantity=4, uom="Units", lot="LOT-B"
            ),
            self._ev(ref, "material_consumed", product="T-SCR", quantity=16, uom="Units"),
            self._ev(ref, "output_produced", product="T-GEAR", quantity=4, uom="Units", lot="G2"),
            self._ev(ref, "order_completed"),
        )
        self._assert_processed(
            self._ev(
                ref,
                "rework_started",
                product="T-GEAR",
                quantity=8,
                uom="Units",
                lot="G2",
                reason="LEAK",
            ),
        )
        good = self._ev(
            ref,
            "rework_completed",
            product="T-GEAR",
            quantity=8,
            uom="Units",
            lot="G2",
            result="good",
        )
        self._assert_processed(good)
        rebuild = good.rework_ids.rebuild_id
        consumed = {}
        for move in rebuild.move_raw_ids.filtered(lambda m: m.state == "done"):
            code = move.product_id.default_code
            consumed[code] = consumed.get(code, 0) + move.quantity
        self.assertEqual(consumed, {"T-HOUS": 8, "T-SCR": 32})
        leftovers = self.stock.search(
            [("location_id", "=", self.rework_location.id), ("quantity", "!=", 0)]
        )
        self.assertFalse(leftovers, leftovers.mapped(lambda q: (q.product_id.name, q.quantity)))

    # 6. Reconciliation of rework

    def test_one_rework_report_of_units_of_two_orders_reconciles_both(self):
        """SN-1 (made by -001) and SN-2 (made by -002) sent to rework and scrapped in one
        report each: each order's reconciliation is balanced."""
        production, ref = self._two_valves()
        self._assert_processed(
            self._sent(ref, ["SN-1", "SN-2"]), self._out(ref, ["SN-1", "SN-2"], "scrapped")
        )
        family = self._family(production)
        records = self._reconcile(family)
        self.assertEqual(
            {r.production_id.name: (r.status, self._recon_lines(r)) for r in records},
            {p.name: ("balanced", []) for p in family},
        )

    # 7. Operators and companies

    def test_operator_mapping_to_an_employee_of_another_company_is_refused(self):
        """PASS expected: check_company on the mapping."""
        other = self.env["res.company"].create({"name": "Plant C (edges)"})
        outsider = self.env["hr.employee"].create({"name": "Outsider C", "company_id": other.id})
        with self.assertRaises(Exception) as caught:
            self.env["mes.mapping"].create(
                {
                    "backend_id": self.backend.id,
                    "mapping_type": "operator",
                    "mes_code": "OUT-1",
                    "employee_id": outsider.id,
                }
            )
            self.env.flush_all()
        self.assertIsInstance(caught.exception, (UserError, ValidationError))

    def test_rework_and_labor_rows_are_per_company(self):
        """PASS expected: a user of company B reads no rework or labor row of company A."""
        employee = self.env["hr.employee"].create({"name": "Op A", "barcode": "BA1"})
        _production, ref = self._two_valves()
        self._assert_processed(self._sent(ref, ["SN-1"]))
        production = self._confirmed(qty=1)
        self._assert_processed(
            self._send(
                production,
                "operation_progress",
                {
                    "operation": 10,
                    "run_minutes": 10,
                    "ended_at": at(0, "10:00:00"),
                    "operators": [{"operator": "BA1", "minutes": 10}],
                },
            )
        )
        labor = self.env["mes.labor"].search([("employee_id", "=", employee.id)])
        rework = self.env["mes.rework"].search([("lot_id", "=", self._serial("SN-1").id)])
        self.assertTrue(labor and rework)
        other = self.env["res.company"].create({"name": "Plant B (rules)"})
        user_b = new_test_user(
            self.env,
            "mes_edges_b",
            groups="mes_base.group_mes_manager,mrp.group_mrp_manager",
            company_id=other.id,
            company_ids=[Command.set(other.ids)],
        )
        for model, record in (("mes.rework", rework), ("mes.labor", labor)):
            self.assertFalse(self.env[model].with_user(user_b).search([("id", "in", record.ids)]))
            with self.assertRaises(AccessError):
                record.with_user(user_b).read(["company_id"])

    def test_plain_mrp_user_has_no_new_rpc_surface(self):
        """PASS expected: an MRP user without MES rights reads no rework or labor, and the
        new models have no public method."""
        user = new_test_user(self.env, "mes_edges_mrp", groups="mrp.group_mrp_user")
        for model in ("mes.rework", "mes.labor"):
            with self.assertRaises(AccessError):
                self.env[model].with_user(user).search_read([], ["id"])
            with self.assertRaises(AccessError):
                self.env[model].with_user(user).create({"company_id": self.company.id})
            cls = type(self.env[model])
            public = sorted(
                name
                for klass in cls.__mro__
                if klass.__module__.startswith("odoo.addons.mes_")
                for name, value in vars(klass).items()
                if callable(value) and not name.startswith("_")
            )
            self.assertEqual(public, [], model)
        from odoo.service.model import get_public_method

        for name in ("_mes_family", "_mes_open_member", "_get_backorder_mo_vals"):
            with self.assertRaises(AccessError):
                get_public_method(self.env["mrp.production"].with_user(user), name)

    # Added after the first run

    def test_rework_refused_when_another_company_holds_more(self):
        """Company A holds 3 pumps in WH/Stock, company B 10 (the product is shared).
        A's MES sends A's 3 pumps to rework: they are A's, it must be posted."""
        self.backend.rework_method = "return"
        other = self.env["res.company"].create({"name": "Plant B2 (edges)"})
        warehouse_b = self.env["stock.warehouse"].search([("company_id", "=", other.id)], limit=1)
        production = self._pumps_done(3)
        self.stock._update_available_quantity(self.pump, warehouse_b.lot_stock_id, 10)
        message = self._ev(
            production.name,
            "rework_started",
            product="T-PUMP",
            quantity=3,
            uom="Units",
            reason="LEAK",
        )
        self._assert_processed(message)
        self.assertEqual(self._at(self.rework_location, self.pump), 3)

    def test_rework_good_of_a_lot_made_by_one_order_is_rebuilt(self):
        """Gear lot G3 made by one order of 5; 2 of it reworked good (rebuild)."""
        production = self._confirmed(qty=5, product=self.gear, bom=self.gear_bom)
        ref = production.name
        self._consume(production, self.housing, 5, lot="LOT-A")
        self._consume(production, self.screw, 20)
        self._assert_processed(self._complete(production, qty=5, lot="G3"))
        self._assert_processed(
            self._ev(
                ref,
                "rework_started",
                product="T-GEAR",
                quantity=2,
                uom="Units",
                lot="G3",
                reason="LEAK",
            ),
        )
        good = self._ev(
            ref,
            "rework_completed",
            product="T-GEAR",
            quantity=2,
            uom="Units",
            lot="G3",
            result="good",
        )
        self._assert_processed(good)
        g3 = self._serial("G3", self.gear)
        self.assertEqual(self._internal(self.gear, g3), 5)
        self.assertEqual(self._at(self.rework_location, self.gear, g3), 0)

    def test_units_of_an_order_of_another_company_wait(self):
        """PASS expected: the MES of company A names an order of company B: it waits."""
        other = self.env["res.company"].create({"name": "Plant D (edges)"})
        production = self.env["mrp.production"].create(
            {"product_id": self.valve.id, "product_qty": 2, "company_id": other.id}
        )
        with trap_jobs():
            production.action_confirm()
        message = self._unit(production.name, "OC-1", sensor="SEN-1")
        self.assertEqual((message.state, message.cause_code), ("waiting", "unknown_order"))
        self.assertFalse(self._serial("OC-1"))

    def test_labor_and_time_of_serial_units_reconcile(self):
        """PASS expected: operators' labor and machine time reported unit by unit, each
        under the unit's order, balanced."""
        self.env["hr.employee"].create({"name": "Op U", "barcode": "BU1"})
        production, ref = self._valves(2)
        for serial, sensor in (("LB-1", "SEN-1"), ("LB-2", "SEN-2")):
            self._assert_processed(
                self._ev(
                    ref,
                    "operation_progress",
                    operation=10,
                    run_minutes=12,
                    ended_at=at(0, "10:00:00"),
                    operators=[{"operator": "BU1", "minutes": 12}],
                ),
                self._unit(ref, serial, sensor=sensor),
            )
        self._assert_processed(self._complete_ref(ref))
        family = self._family(production)
        labor = self.env["mes.labor"].search([("production_id", "in", family.ids)])
        self.assertEqual(sorted(labor.production_id.mapped("name")), sorted(family.mapped("name")))
        records = self._reconcile(family)
        self.assertEqual(
            {r.production_id.name: self._recon_lines(r) for r in records},
            {p.name: [] for p in family},
        )
