"""Serial-numbered output, unit by unit, and partial confirmations across shifts."""

from odoo import Command

from odoo.addons.queue_job.tests.common import trap_jobs

from .test_events import EventCase


class UnitCase(EventCase):
    """A valve tracked by serial: a lot-tracked housing, a serial-tracked sensor and
    four screws per valve."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        product = cls.env["product.product"]
        cls.sensor = product.create(
            {"name": "Sensor", "default_code": "T-SENS", "is_storable": True, "tracking": "serial"}
        )
        cls.valve = product.create(
            {"name": "Valve", "default_code": "T-VALVE", "is_storable": True, "tracking": "serial"}
        )
        cls.valve_bom = cls.env["mrp.bom"].create(
            {
                "product_tmpl_id": cls.valve.product_tmpl_id.id,
                "product_qty": 1,
                "consumption": "flexible",
                "operation_ids": [
                    Command.create(
                        {"name": "Assemble", "workcenter_id": cls.wc_asm.id, "sequence": 10}
                    )
                ],
                "bom_line_ids": [
                    Command.create({"product_id": cls.housing.id, "product_qty": 1}),
                    Command.create({"product_id": cls.sensor.id, "product_qty": 1}),
                    Command.create({"product_id": cls.screw.id, "product_qty": 4}),
                ],
            }
        )
        cls.sensors = cls.env["stock.lot"].create(
            [{"name": f"SEN-{n}", "product_id": cls.sensor.id} for n in range(1, 9)]
        )
        for lot in cls.sensors:
            cls.env["stock.quant"]._update_available_quantity(
                cls.sensor, cls.stock_location, 1, lot_id=lot
            )
        cls.stock = cls.env["stock.quant"]

    def _valves(self, qty):
        production = self._confirmed(qty=qty, product=self.valve, bom=self.valve_bom)
        return production, production.name

    def _unit(self, ref, serial, housing="LOT-A", sensor=None, screws=4, **extra):
        components = [
            {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": housing},
            {"product": "T-SENS", "quantity": 1, "uom": "Units", "serials": [sensor]},
            {"product": "T-SCR", "quantity": screws, "uom": "Units"},
        ]
        data = {
            "product": "T-VALVE",
            "quantity": 1,
            "uom": "Units",
            "serials": [serial],
            "components": components,
            **extra,
        }
        return self._send(None, "output_produced", data, order_ref=ref)

    def _complete_ref(self, ref, **data):
        return self._send(None, "order_completed", data, order_ref=ref)

    def _family(self, production):
        return production._mes_family()

    def _on_hand(self, product, lot):
        return sum(
            self.stock.search(
                [
                    ("product_id", "=", product.id),
                    ("lot_id", "=", lot.id),
                    ("location_id", "child_of", self.stock_location.id),
                ]
            ).mapped("quantity")
        )

    def _genealogy(self, serial):
        """What the traceability report shows under a finished serial: the lots and
        serials of the components, per product code."""
        lot = self.env["stock.lot"].search(
            [("name", "=", serial), ("product_id", "=", self.valve.id)]
        )
        report = self.env["stock.traceability.report"].with_context(
            active_id=lot.id, model="stock.lot"
        )
        produced = [line for line in report.get_lines() if line["unfoldable"]]
        self.assertEqual(len(produced), 1, produced)
        children = report.get_lines(
            line_id=produced[0]["id"],
            model_id=produced[0]["model_id"],
            model_name="stock.move.line",
            level=2,
        )
        result = {}
        for child in children:
            line = self.env["stock.move.line"].browse(child["model_id"])
            result.setdefault(line.product_id.default_code, []).append(
                (line.lot_id.name or "", line.quantity)
            )
        return {code: sorted(items) for code, items in result.items()}


class TestSerialOutput(UnitCase):
    def test_each_unit_is_an_order_of_its_own_with_its_own_genealogy(self):
        production, ref = self._valves(3)
        messages = [
            self._unit(ref, "SN-0001", housing="LOT-A", sensor="SEN-1"),
            self._unit(ref, "SN-0002", housing="LOT-B", sensor="SEN-2"),
            self._unit(ref, "SN-0003", housing="LOT-A", sensor="SEN-3", screws=5),
        ]
        self._assert_processed(*messages)
        family = self._family(production)
        # Two units posted as they came; the last one waits for the final confirmation.
        self.assertEqual(
            [(p.name, p.state, p.product_qty) for p in family],
            [(f"{ref}-001", "done", 1), (f"{ref}-002", "done", 1), (f"{ref}-003", "progress", 1)],
        )
        self._assert_processed(self._complete_ref(ref))
        self.assertEqual(family.mapped("state"), ["done"] * 3)
        self.assertEqual(family.lot_producing_id.mapped("name"), ["SN-0001", "SN-0002", "SN-0003"])
        self.assertEqual(family.mapped("qty_produced"), [1, 1, 1])
        self.assertEqual(
            self._genealogy("SN-0001"),
            {"T-HOUS": [("LOT-A", 1)], "T-SENS": [("SEN-1", 1)], "T-SCR": [("", 4)]},
        )
        self.assertEqual(
            self._genealogy("SN-0002"),
            {"T-HOUS": [("LOT-B", 1)], "T-SENS": [("SEN-2", 1)], "T-SCR": [("", 4)]},
        )
        self.assertEqual(
            self._genealogy("SN-0003"),
            {"T-HOUS": [("LOT-A", 1)], "T-SENS": [("SEN-3", 1)], "T-SCR": [("", 5)]},
        )
        for serial in ("SN-0001", "SN-0002", "SN-0003"):
            lot = self.env["stock.lot"].search([("name", "=", serial)])
            self.assertEqual(self._on_hand(self.valve, lot), 1, serial)
        self.assertEqual(self._on_hand(self.sensor, self.sensors[0]), 0)
        self.assertEqual(self._on_hand(self.sensor, self.sensors[3]), 1)
        self.assertEqual(self._on_hand(self.housing, self.lot_a), 28)
        self.assertEqual(self._on_hand(self.housing, self.lot_b), 29)
        # Each message names the order it posted on; the MES's order was never re-sent.
        self.assertEqual(messages[0].production_id, family[0])
        self.assertEqual(messages[2].production_id, family[2])
        outbound = self.env["mes.message"].search(
            [("direction", "=", "outbound"), ("order_ref", "=", ref)]
        )
        self.assertEqual(outbound.mapped("revision"), [1])
        self.assertEqual(set(family.mapped("mes_order_ref")), {ref})
        self.assertEqual(family[1].mes_backend_id, self.backend)

    def test_consumption_reported_before_a_unit_goes_with_that_unit(self):
        _production, ref = self._valves(2)
        self._send(
            None,
            "material_consumed",
            {"product": "T-SENS", "quantity": 1, "uom": "Units", "serials": ["SEN-4"]},
            order_ref=ref,
        )
        self._send(
            None,
            "material_consumed",
            {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": "LOT-B"},
            order_ref=ref,
        )
        first = self._send(
            None,
            "output_produced",
            {"product": "T-VALVE", "quantity": 1, "uom": "Units", "serials": ["SN-7"]},
            order_ref=ref,
        )
        self._assert_processed(first)
        second = self._unit(ref, "SN-8", sensor="SEN-5")
        self._assert_processed(second, self._complete_ref(ref))
        # Nothing else reported for SN-7: its screws were not reported, none posted.
        self.assertEqual(
            self._genealogy("SN-7"), {"T-HOUS": [("LOT-B", 1)], "T-SENS": [("SEN-4", 1)]}
        )
        self.assertEqual(
            self._genealogy("SN-8"),
            {"T-HOUS": [("LOT-A", 1)], "T-SENS": [("SEN-5", 1)], "T-SCR": [("", 4)]},
        )

    def test_several_serials_in_one_report_are_several_orders(self):
        production, ref = self._valves(4)
        message = self._send(
            None,
            "output_produced",
            {"product": "T-VALVE", "quantity": 3, "uom": "Units", "serials": ["A1", "A2", "A3"]},
            order_ref=ref,
        )
        self._assert_processed(message)
        family = self._family(production)
        self.assertEqual(
            [(p.state, p.product_qty, p.lot_producing_id.name) for p in family],
            [("done", 1, "A1"), ("done", 1, "A2"), ("done", 1, "A3"), ("confirmed", 1, False)],
        )
        self.assertEqual(message.production_id, family[2])
        self.assertEqual(len(message.move_ids.filtered(lambda m: m.product_id == self.valve)), 3)

    def test_a_serial_reported_for_two_units_is_refused_naming_it(self):
        production, ref = self._valves(3)
        self._assert_processed(self._unit(ref, "SN-1", sensor="SEN-1"))
        again = self._unit(ref, "SN-1", sensor="SEN-2")
        self.assertEqual((again.state, again.error_code), ("error", "serial_in_stock"))
        self.assertIn(
            "serial SN-1 of [T-VALVE] Valve is already in stock at WH/Stock", again.error_text
        )
        # Shipped since: still produced once already.
        sn_1 = self.env["stock.lot"].search([("name", "=", "SN-1")])
        self.stock._update_available_quantity(self.valve, self.stock_location, -1, lot_id=sn_1)
        with trap_jobs():
            again.action_retry()
        self.assertEqual((again.state, again.error_code), ("error", "serial_produced"))
        self.assertIn("serial SN-1 of [T-VALVE] Valve was already produced", again.error_text)
        self.assertIn(f"{ref}-001", again.error_text)
        # The MES sent it twice by mistake: cancelled, the order's reports go on.
        again.action_cancel("sent twice")
        # The last unit is held: the same serial again is named too.
        self._assert_processed(self._unit(ref, "SN-2", sensor="SEN-2"))
        self._assert_processed(self._unit(ref, "SN-3", sensor="SEN-3"))
        twice = self._unit(ref, "SN-3", sensor="SEN-4")
        self.assertEqual((twice.state, twice.error_code), ("error", "serial_twice"))
        self.assertIn("serial SN-3 of [T-VALVE] Valve is already the unit", twice.error_text)
        # Nothing of the refused reports was posted: SEN-2 and SEN-4 are in stock.
        self.assertEqual(self._on_hand(self.sensor, self.sensors[3]), 1)
        self.assertEqual(len(self._family(production)), 3)
        # In one report (an MES whose reports are not checked against the schema, B2MML).
        data = {"product": "T-VALVE", "quantity": 2, "uom": "Units", "serials": ["X", "X"]}
        with self.assertRaises(Exception) as caught:
            self.env["mes.event.processor"]._serials(self.valve, data, 2)
        self.assertEqual(caught.exception.code, "serial_twice")
        self.assertIn(
            "data.serials: serial X of [T-VALVE] Valve is reported for two units",
            str(caught.exception),
        )

    def test_a_serial_already_in_stock_is_refused_with_its_location(self):
        production, ref = self._valves(2)
        lot = self.env["stock.lot"].create({"name": "SN-OLD", "product_id": self.valve.id})
        self.stock._update_available_quantity(self.valve, self.stock_location, 1, lot_id=lot)
        message = self._unit(ref, "SN-OLD", sensor="SEN-1")
        self.assertEqual((message.state, message.error_code), ("error", "serial_in_stock"))
        self.assertIn(
            "serial SN-OLD of [T-VALVE] Valve is already in stock at WH/Stock", message.error_text
        )
        self.assertEqual(self._on_hand(self.sensor, self.sensors[0]), 1)
        self.assertEqual(production.state, "confirmed")
        self.assertEqual(production.name, ref)

    def test_serial_count_must_match_the_quantity(self):
        _production, ref = self._valves(3)
        message = self._send(
            None,
            "output_produced",
            {"product": "T-VALVE", "quantity": 2, "uom": "Units", "serials": ["B1"]},
            order_ref=ref,
        )
        self.assertEqual(message.error_code, "serial_count")
        self.assertIn("data.serials: 1 serial numbers for a quantity of 2.0", message.error_text)

    def test_a_runaway_list_of_units_is_refused_before_anything_is_posted(self):
        production, ref = self._valves(3)
        serials = [f"R-{n}" for n in range(501)]
        message = self._send(
            None,
            "output_produced",
            {"product": "T-VALVE", "quantity": 501, "uom": "Units", "serials": serials},
            order_ref=ref,
        )
        self.assertEqual(message.error_code, "too_many_units")
        self.assertIn("data.serials: 501 units in one report; at most 500", message.error_text)
        self.assertEqual((production.state, production.name), ("confirmed", ref))
        self.assertFalse(self.env["stock.lot"].search([("name", "=like", "R-%")]))

    def test_components_of_several_units_in_one_report_are_refused(self):
        _production, ref = self._valves(3)
        message = self._send(
            None,
            "output_produced",
            {
                "product": "T-VALVE",
                "quantity": 2,
                "uom": "Units",
                "serials": ["C1", "C2"],
                "components": [{"product": "T-SCR", "quantity": 8, "uom": "Units"}],
            },
            order_ref=ref,
        )
        self.assertEqual(message.error_code, "unit_components")
        self.assertIn("data.components: given for 2 units (C1, C2)", message.error_text)

    def test_one_unit_more_than_planned_raises_the_quantity(self):
        production, ref = self._valves(2)
        for serial, sensor in (("M1", "SEN-1"), ("M2", "SEN-2"), ("M3", "SEN-3")):
            self._assert_processed(self._unit(ref, serial, sensor=sensor))
        self._assert_processed(self._complete_ref(ref, quantity=3, uom="Units"))
        family = self._family(production)
        self.assertEqual(family.mapped("state"), ["done"] * 3)
        self.assertEqual(family.lot_producing_id.mapped("name"), ["M1", "M2", "M3"])
        self.assertEqual(production._mes_family_quantity(), 3)

    def test_closed_short_cancels_the_rest_without_telling_the_mes(self):
        production, ref = self._valves(4)
        self._assert_processed(self._unit(ref, "S1", sensor="SEN-1"))
        self._assert_processed(self._unit(ref, "S2", sensor="SEN-2"))
        completion = self._complete_ref(ref)
        self._assert_processed(completion)
        family = self._family(production) | completion.production_id
        self.assertEqual(
            [(p.state, p.product_qty) for p in family],
            [("done", 1), ("done", 1), ("cancel", 2)],
        )
        rest = family[2]
        self.assertFalse(rest.mes_order_ref)
        self.assertEqual(rest.mes_state, "not_sent")
        outbound = self.env["mes.message"].search(
            [("direction", "=", "outbound"), ("order_action", "=", "cancel")]
        )
        self.assertFalse(outbound)

    def test_closed_short_leaves_the_rest_to_planners_when_asked(self):
        self.backend.backorder_policy = "always"
        production, ref = self._valves(3)
        self._assert_processed(self._unit(ref, "R1", sensor="SEN-1"))
        completion = self._complete_ref(ref)
        self._assert_processed(completion)
        rest = completion.production_id
        self.assertEqual(
            (rest.state, rest.product_qty, rest.mes_state), ("confirmed", 2, "not_sent")
        )
        self.assertEqual(self._family(production).mapped("state"), ["done"])

    def test_completion_quantity_must_be_the_units_reported(self):
        _production, ref = self._valves(3)
        self._assert_processed(self._unit(ref, "Q1", sensor="SEN-1"))
        message = self._complete_ref(ref, quantity=3, uom="Units")
        self.assertEqual(message.error_code, "serial_completion_quantity")
        self.assertIn(
            "confirmed with 3.0 Units of [T-VALVE] Valve, but the MES reported 1.0",
            message.error_text,
        )

    def test_consumption_after_the_last_unit_of_a_short_order_is_not_lost(self):
        _production, ref = self._valves(3)
        self._assert_processed(self._unit(ref, "T1", sensor="SEN-1"))
        self._send(
            None,
            "material_consumed",
            {"product": "T-SCR", "quantity": 2, "uom": "Units"},
            order_ref=ref,
        )
        message = self._complete_ref(ref)
        self.assertEqual(message.error_code, "consumption_without_unit")
        self.assertIn("Screw consumed after that unit", message.error_text)

    def test_odoo_owned_consumption_posts_the_bill_per_unit(self):
        self.backend.consumption_owner = "odoo"
        production, ref = self._valves(2)
        production.action_assign()
        self._send(
            None,
            "output_produced",
            {"product": "T-VALVE", "quantity": 2, "uom": "Units", "serials": ["O1", "O2"]},
            order_ref=ref,
        )
        self._assert_processed(self._complete_ref(ref))
        family = self._family(production)
        self.assertEqual(family.mapped("state"), ["done", "done"])
        for serial in ("O1", "O2"):
            genealogy = self._genealogy(serial)
            self.assertEqual(genealogy["T-SCR"], [("", 4)])
            self.assertEqual(len(genealogy["T-SENS"]), 1)
            self.assertEqual(len(genealogy["T-HOUS"]), 1)


class TestPartialCompletion(EventCase):
    def test_shifts_post_their_parts_and_lots_under_each_part(self):
        production = self._confirmed(qty=10)
        ref = production.name
        consume = self._send
        consume(
            None,
            "material_consumed",
            {"product": "T-HOUS", "quantity": 6, "uom": "Units", "lot": "LOT-A"},
            order_ref=ref,
        )
        consume(
            None,
            "material_consumed",
            {"product": "T-SCR", "quantity": 24, "uom": "Units"},
            order_ref=ref,
        )
        consume(
            None,
            "output_produced",
            {"product": "T-PUMP", "quantity": 6, "uom": "Units"},
            order_ref=ref,
        )
        shift_one = self._send(None, "order_completed", {"final": False}, order_ref=ref)
        self._assert_processed(shift_one)
        first, rest = production._mes_family()
        self.assertEqual((first.state, first.qty_produced, first.name), ("done", 6, f"{ref}-001"))
        self.assertEqual((rest.state, rest.product_qty, rest.name), ("confirmed", 4, f"{ref}-002"))
        self.assertEqual((rest.mes_order_ref, rest.mes_state), (ref, first.mes_state))
        # The second shift: the rest of the housing from another lot, and the final word.
        consume(
            None,
            "material_consumed",
            {"product": "T-HOUS", "quantity": 2, "uom": "Units", "lot": "LOT-A"},
            order_ref=ref,
        )
        consume(
            None,
            "material_consumed",
            {"product": "T-HOUS", "quantity": 2, "uom": "Units", "lot": "LOT-B"},
            order_ref=ref,
        )
        consume(
            None,
            "material_consumed",
            {"product": "T-SCR", "quantity": 16, "uom": "Units"},
            order_ref=ref,
        )
        final = self._send(None, "order_completed", {"quantity": 4, "uom": "Units"}, order_ref=ref)
        self._assert_processed(final)
        self.assertEqual(final.production_id, rest)
        self.assertEqual((rest.state, rest.qty_produced), ("done", 4))
        self.assertEqual(self._done_lines(first, self.housing), {"LOT-A": 6})
        self.assertEqual(self._done_lines(rest, self.housing), {"LOT-A": 2, "LOT-B": 2})
        self.assertEqual(self._done_lines(first, self.screw), {"": 24})
        self.assertEqual(self._done_lines(rest, self.screw), {"": 16})
        self.assertEqual(self._done_lines(first, self.pump), {"": 6})
        self.assertEqual(self._done_lines(rest, self.pump), {"": 4})
        # To the MES it stayed one order: no revision was sent for the split.
        outbound = self.env["mes.message"].search(
            [("direction", "=", "outbound"), ("order_ref", "=", ref)]
        )
        self.assertEqual(outbound.mapped("revision"), [1])
        self.assertEqual(rest._mes_family_quantity(), 10)
        self.assertEqual(rest._mes_order_document(2, "change")["quantity"], 10)
        self.assertEqual(rest._mes_order_document(2, "change")["order_id"], ref)

    def test_final_confirmation_after_parts_that_posted_everything(self):
        production = self._confirmed(qty=4)
        ref = production.name
        self._consume(production, self.housing, 4, lot="LOT-A")
        self._consume(production, self.screw, 16)
        self._assert_processed(
            self._send(
                None,
                "order_completed",
                {"final": False, "quantity": 4, "uom": "Units"},
                order_ref=ref,
            )
        )
        self.assertEqual(production.state, "done")
        final = self._send(None, "order_completed", {}, order_ref=ref)
        self._assert_processed(final)
        self.assertIn("nothing left to post", final.result_text)

    def test_closed_short_after_a_part_with_no_backorder(self):
        production = self._confirmed(qty=10)
        ref = production.name
        self._consume(production, self.housing, 3, lot="LOT-A")
        self._consume(production, self.screw, 12)
        self._assert_processed(
            self._send(
                None,
                "order_completed",
                {"final": False, "quantity": 3, "uom": "Units"},
                order_ref=ref,
            )
        )
        self.backend.tolerance_under = 100
        final = self._send(None, "order_completed", {"quantity": 2, "uom": "Units"}, order_ref=ref)
        self._assert_processed(final)
        family = production._mes_family()
        self.assertEqual([(p.state, p.qty_produced) for p in family], [("done", 3), ("done", 2)])
