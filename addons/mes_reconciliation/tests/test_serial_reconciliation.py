"""Finance's reconciliation of serial-numbered output: per order of a unit, per serial."""

from odoo.addons.mes_base.tests.test_serial_output import UnitCase

from .test_reconciliation import ReconciliationCase


class TestSerialReconciliation(UnitCase, ReconciliationCase):
    def _lines(self, record, kind, product):
        return {
            line.lot_name or "": (line.planned_qty, line.reported_qty, line.posted_qty, line.status)
            for line in record.line_ids.filtered(
                lambda line: line.kind == kind and line.product_id == product
            )
        }

    def test_each_unit_reconciles_per_serial(self):
        production, ref = self._valves(4)
        self._assert_processed(
            self._unit(ref, "SN-1", housing="LOT-A", sensor="SEN-1"),
            self._unit(ref, "SN-2", housing="LOT-B", sensor="SEN-2", screws=5),
            self._send(
                None,
                "output_produced",
                {"product": "T-VALVE", "quantity": 2, "uom": "Units", "serials": ["SN-3", "SN-4"]},
                order_ref=ref,
            ),
            self._complete_ref(ref),
        )
        family = production._mes_family()
        self.assertEqual(family.lot_producing_id.mapped("name"), ["SN-1", "SN-2", "SN-3", "SN-4"])
        records = self._reconcile(family)
        self.assertEqual(records.mapped("status"), ["balanced"] * 4)
        by_order = {record.production_id: record for record in records}
        first, second, third, fourth = (by_order[p] for p in family)
        # The finished unit: one line for the product, its serial below it.
        self.assertEqual(
            self._lines(first, "output", self.valve),
            {"": (1, 1, 1, "balanced"), "SN-1": (0, 1, 1, "balanced")},
        )
        self.assertEqual(
            self._lines(first, "component", self.sensor),
            {"": (1, 1, 1, "balanced"), "SEN-1": (0, 1, 1, "balanced")},
        )
        self.assertEqual(
            self._lines(second, "component", self.housing),
            {"": (1, 1, 1, "balanced"), "LOT-B": (0, 1, 1, "balanced")},
        )
        screws = self._line(second, "component", self.screw)
        self.assertLine(screws, 4, 5, 5, 0, 1, "balanced")
        # Two units in one report: each order reconciles its own serial.
        self.assertEqual(
            self._lines(third, "output", self.valve),
            {"": (1, 1, 1, "balanced"), "SN-3": (0, 1, 1, "balanced")},
        )
        self.assertEqual(
            self._lines(fourth, "output", self.valve),
            {"": (1, 1, 1, "balanced"), "SN-4": (0, 1, 1, "balanced")},
        )
        # Nothing consumed was reported for them, nothing posted.
        self.assertEqual(self._lines(third, "component", self.sensor), {"": (1, 0, 0, "balanced")})

    def test_rework_is_reconciled_and_costed_under_the_order_that_made_the_unit(self):
        rework_location = self.env["stock.location"].create(
            {"name": "Rework", "usage": "internal", "location_id": self.stock_location.id}
        )
        self.backend.rework_location_id = rework_location
        self.sensor.standard_price = 15.0
        self.valve.standard_price = 40.0
        production, ref = self._valves(2)
        self._assert_processed(
            self._unit(ref, "SN-1", housing="LOT-A", sensor="SEN-1"),
            self._unit(ref, "SN-2", housing="LOT-B", sensor="SEN-2"),
            self._complete_ref(ref),
        )
        unit = {"product": "T-VALVE", "quantity": 1, "uom": "Units"}
        new_sensor = [{"product": "T-SENS", "quantity": 1, "uom": "Units", "serials": ["SEN-6"]}]
        self._assert_processed(
            self._send(
                None,
                "rework_started",
                {**unit, "serials": ["SN-1"], "reason": "DMG"},
                order_ref=ref,
            ),
            self._send(
                None,
                "rework_started",
                {**unit, "serials": ["SN-2"], "reason": "DMG"},
                order_ref=ref,
            ),
            self._send(
                None,
                "rework_completed",
                {**unit, "serials": ["SN-1"], "result": "good", "components": new_sensor},
                order_ref=ref,
            ),
            self._send(
                None,
                "rework_completed",
                {**unit, "serials": ["SN-2"], "result": "scrapped"},
                order_ref=ref,
            ),
        )
        first, second = production._mes_family()
        records = self._reconcile(first | second)
        self.assertEqual(records.mapped("status"), ["balanced", "balanced"])
        by_order = {record.production_id: record for record in records}
        self.assertEqual(
            self._lines(by_order[first], "rework", self.valve),
            {"": (0, 1, 1, "balanced"), "SN-1": (0, 1, 1, "balanced")},
        )
        # The old sensor scrapped and the new one: 15 + 15.
        rework_line = self._line(by_order[first], "rework", self.valve)
        self.assertAlmostEqual(rework_line.posted_value, 30.0, places=2)
        # A unit scrapped after rework: the valve's value.
        rework_line = self._line(by_order[second], "rework", self.valve)
        self.assertAlmostEqual(rework_line.posted_value, 40.0, places=2)
        # The rework's scrap is not the order's scrap.
        self.assertFalse(by_order[second].line_ids.filtered(lambda line: line.kind == "scrap"))
