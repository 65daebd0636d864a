from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user

from odoo.addons.mes_base.tests.test_events import EventCase


class QualityCase(EventCase):
    """Housing lots are checked by the MES: a diameter in mm and the surface."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mm = cls.env.ref("uom.product_uom_millimeter")
        cls.test = cls.env["qc.test"].create(
            {
                "name": "Housing dimensions",
                "test_lines": [
                    Command.create(
                        {
                            "name": "Diameter",
                            "type": "quantitative",
                            "min_value": 49.9,
                            "max_value": 50.1,
                            "uom_id": cls.mm.id,
                        }
                    ),
                    Command.create(
                        {
                            "name": "Surface",
                            "type": "qualitative",
                            "ql_values": [
                                Command.create({"name": "ok", "ok": True}),
                                Command.create({"name": "scratched", "ok": False}),
                            ],
                        }
                    ),
                ],
            }
        )
        cls._map(cls, "quality_test", "DIM", qc_test_id=cls.test)
        cls.quality_user = new_test_user(
            cls.env,
            "mes_quality_user",
            groups="quality_control_oca.group_quality_control_user,mes_base.group_mes_user",
        )
        cls.planner = new_test_user(
            cls.env, "mes_quality_planner", groups="mes_base.group_mes_user"
        )

    def _result(self, production, result, lot="LOT-B", **data):
        return self._send(
            production,
            "quality_result",
            {
                "characteristic": "DIM",
                "result": result,
                "product": "T-HOUS",
                "lot": lot,
                "inspector": "Ann",
                **data,
            },
        )

    def _measure(self, diameter, surface="ok", uom="mm"):
        return [
            {"name": "Diameter", "value": diameter, "uom": uom},
            {"name": "surface", "value": surface},
        ]

    def _inspection(self, message):
        return self.env["qc.inspection"].search([("mes_message_id", "=", message.id)])


class TestQualityResults(QualityCase):
    def test_pass_with_measurements_is_a_successful_inspection(self):
        production = self._confirmed(qty=2)
        message = self._result(
            production, "pass", lot="LOT-A", measurements=self._measure(5.002, uom="cm")
        )
        self._assert_processed(message)
        inspection = self._inspection(message)
        self.assertEqual(inspection.state, "success")
        self.assertEqual(inspection.production_id, production)
        self.assertEqual(inspection.product_id, self.housing)
        self.assertEqual(inspection.lot_id, self.lot_a)
        self.assertEqual(inspection.test, self.test)
        self.assertEqual((inspection.mes_result, inspection.mes_characteristic), ("pass", "DIM"))
        self.assertIn("Ann", inspection.internal_notes)
        diameter = inspection.inspection_lines.filtered(lambda line: line.name == "Diameter")
        self.assertAlmostEqual(diameter.quantitative_value, 50.02)  # 5.002 cm in mm
        self.assertEqual(diameter.uom_id, self.mm)
        self.assertTrue(diameter.success)
        surface = inspection.inspection_lines.filtered(lambda line: line.name == "Surface")
        self.assertEqual(surface.qualitative_value.name, "ok")
        self.assertIn(inspection, production.qc_inspections_ids)
        self.assertFalse(self.lot_a.mes_on_hold)

    def test_fail_holds_the_lot_which_no_order_can_consume(self):
        # An order reserved both lots before the check (40 housings: 30 + 10).
        early = self._confirmed(qty=40)
        early_housing = early.move_raw_ids.filtered(lambda m: m.product_id == self.housing)
        self.assertEqual(early_housing.move_line_ids.lot_id, self.lot_a | self.lot_b)
        production = self._confirmed(qty=2)
        message = self._result(production, "fail", measurements=self._measure(50.3, "scratched"))
        self._assert_processed(message)
        inspection = self._inspection(message)
        self.assertEqual(inspection.state, "failed")
        self.assertEqual(
            inspection.inspection_lines.mapped("success"), [False, False], "both out of spec"
        )
        self.assertTrue(self.lot_b.mes_on_hold)
        hold = self.lot_b.mes_hold_ids
        self.assertEqual((hold.state, hold.mode, hold.inspection_id), ("held", "block", inspection))
        self.assertIn("on hold", message.result_text)
        # Its reservation of the held lot is given up (the other lot has no more).
        self.assertEqual(early_housing.move_line_ids.lot_id, self.lot_a)
        # Another order: the MES consuming the held lot is an error naming it ...
        other = self._confirmed(qty=1)
        refused = self._consume(other, self.housing, 1, lot="LOT-B")
        self.assertEqual(refused.state, "error")
        self.assertEqual(refused.error_cause, "lot_on_hold: LOT-B")
        self.assertIn("quality hold", refused.error_text)
        # ... and so is consuming it in Odoo by hand.
        move = other.move_raw_ids.filtered(lambda m: m.product_id == self.housing)
        # ... and so is consuming it in Odoo by hand; reservations leave it alone.
        move = other.move_raw_ids.filtered(lambda m: m.product_id == self.housing)
        self.assertNotIn(self.lot_b, move.move_line_ids.lot_id)
        line = self.env["stock.move.line"].create(
            {
                "move_id": move.id,
                "product_id": self.housing.id,
                "lot_id": self.lot_b.id,
                "quantity": 1,
                "location_id": self.stock_location.id,
                "location_dest_id": move.location_dest_id.id,
                "picked": True,
            }
        )
        with self.assertRaisesRegex(ValidationError, "LOT-B .* quality hold"):
            line._action_done()
        self.assertEqual(line.state, "assigned")
        # The warehouse and the planner see it on their dashboards.
        boards = self.env["mes.dashboard"].with_user(self.quality_user)
        tiles = {t["key"]: t for t in boards.get_dashboard("warehouse")["sections"][0]["tiles"]}
        self.assertIn(
            hold, self.env["mes.quality.hold"].search(tiles["quality_holds"]["action"]["domain"])
        )
        tiles = {t["key"]: t for t in boards.get_dashboard("planner")["sections"][0]["tiles"]}
        failed = self.env["qc.inspection"].search(tiles["failed_inspections"]["action"]["domain"])
        self.assertIn(inspection, failed)
        self.assertEqual(tiles["failed_inspections"]["value"], len(failed))
        # A planner who is no quality user still has the dashboard, without that tile.
        planner_tiles = self.env["mes.dashboard"].with_user(self.planner).get_dashboard("planner")
        keys = [t["key"] for t in planner_tiles["sections"][0]["tiles"]]
        self.assertIn("errors", keys)
        self.assertNotIn("failed_inspections", keys)
        # Other lots are not held (on another order: this one waits behind its error).
        self._assert_processed(self._consume(self._confirmed(qty=1), self.housing, 1, lot="LOT-A"))

    def test_pass_outside_the_limits_is_recorded_as_failed(self):
        production = self._confirmed(qty=1)
        message = self._result(production, "pass", measurements=self._measure(51.0))
        self._assert_processed(message)
        inspection = self._inspection(message)
        self.assertEqual(inspection.state, "failed")
        self.assertIn("outside the test's limits", inspection.message_ids[0].body)
        self.assertTrue(self.lot_b.mes_on_hold)

    def test_later_pass_of_the_same_check_releases_the_lot(self):
        production = self._confirmed(qty=1)
        self._assert_processed(self._result(production, "fail", measurements=self._measure(50.5)))
        hold = self.lot_b.mes_hold_ids
        # Another characteristic passing does not release it.
        other_test = self.env["qc.test"].create({"name": "Weight"})
        self._map("quality_test", "WGT", qc_test_id=other_test)
        self._assert_processed(
            self._send(
                production,
                "quality_result",
                {"characteristic": "WGT", "result": "pass", "product": "T-HOUS", "lot": "LOT-B"},
            )
        )
        self.assertEqual(hold.state, "held")
        recheck = self._result(production, "pass", measurements=self._measure(50.0))
        self._assert_processed(recheck)
        self.assertEqual(hold.state, "released")
        self.assertIn("DIM passed", hold.release_reason)
        self.assertFalse(self.lot_b.mes_on_hold)
        self._assert_processed(self._consume(self._confirmed(qty=1), self.housing, 1, lot="LOT-B"))

    def test_result_after_the_order_is_done_is_taken(self):
        self.backend.consumption_owner = "odoo"
        production = self._confirmed(qty=1)
        self._assert_processed(self._complete(production, 1))
        self.assertEqual(production.state, "done")
        late = self._result(production, "pass", lot="LOT-A", measurements=self._measure(50))
        self._assert_processed(late)
        self.assertEqual(self._inspection(late).production_id, production)

    def test_unmapped_characteristic_and_unknown_measurement_are_errors(self):
        production = self._confirmed(qty=1)
        unmapped = self._send(
            production, "quality_result", {"characteristic": "NOPE", "result": "pass"}
        )
        self.assertEqual(unmapped.error_cause, "unmapped_quality_test: NOPE")
        self.assertIn("data.characteristic", unmapped.error_text)
        unknown = self._result(
            self._confirmed(qty=1), "pass", measurements=[{"name": "Colour", "value": "red"}]
        )
        self.assertEqual(unknown.error_code, "unknown_measurement")
        self.assertIn("data.measurements[0].name: 'Colour'", unknown.error_text)
        self.assertIn("Diameter, Surface", unknown.error_text)
        self.assertFalse(self._inspection(unknown), "nothing half-recorded")


class TestQuarantine(QualityCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.quarantine = cls.env["stock.location"].create(
            {
                "name": "Quarantine",
                "usage": "internal",
                "location_id": cls.stock_location.location_id.id,
            }
        )
        cls.backend.write(
            {"quality_hold": "quarantine", "quarantine_location_id": cls.quarantine.id}
        )

    def _on_hand(self, location):
        quants = self.env["stock.quant"].search(
            [("lot_id", "=", self.lot_b.id), ("location_id", "=", location.id)]
        )
        return sum(quants.mapped("quantity"))

    def test_failed_lot_goes_to_quarantine_and_back_when_a_quality_user_releases_it(self):
        self.assertEqual(self._on_hand(self.stock_location), 30)
        production = self._confirmed(qty=1)
        self._assert_processed(self._result(production, "fail", measurements=self._measure(52)))
        hold = self.lot_b.mes_hold_ids
        self.assertEqual(hold.mode, "quarantine")
        self.assertEqual(
            (self._on_hand(self.stock_location), self._on_hand(self.quarantine)), (0, 30)
        )
        with self.assertRaises(AccessError):
            hold.with_user(self.planner).action_release()
        hold.with_user(self.quality_user).action_release()
        self.assertEqual(hold.state, "released")
        self.assertEqual(hold.released_by_id, self.quality_user)
        self.assertEqual(
            (self._on_hand(self.stock_location), self._on_hand(self.quarantine)), (30, 0)
        )
        self.assertFalse(self.lot_b.mes_on_hold)
