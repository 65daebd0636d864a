"""Units and quantities the MES sends to rework: rebuilt, back to stock, or scrapped."""

from .test_serial_output import UnitCase


class ReworkCase(UnitCase):
    """Valves made one serial at a time, a rework location, reasons LEAK and BROKEN."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rework_location = cls.env["stock.location"].create(
            {"name": "Rework", "usage": "internal", "location_id": cls.stock_location.id}
        )
        cls.backend.rework_location_id = cls.rework_location
        cls.leak = cls.env["stock.scrap.reason.tag"].create({"name": "Leak (test)"})
        cls.broken = cls.env["stock.scrap.reason.tag"].create({"name": "Broken (test)"})
        for code, tag in (("LEAK", cls.leak), ("BROKEN", cls.broken)):
            cls.env["mes.mapping"].create(
                {
                    "backend_id": cls.backend.id,
                    "mapping_type": "scrap_reason",
                    "mes_code": code,
                    "scrap_tag_id": tag.id,
                }
            )

    def _two_valves(self):
        production, ref = self._valves(2)
        self._assert_processed(
            self._unit(ref, "SN-1", housing="LOT-A", sensor="SEN-1"),
            self._unit(ref, "SN-2", housing="LOT-B", sensor="SEN-2"),
            self._complete_ref(ref),
        )
        return production, ref

    def _serial(self, name, product=None):
        return self.env["stock.lot"].search(
            [("name", "=", name), ("product_id", "=", (product or self.valve).id)]
        )

    def _at(self, location, product, lot=None):
        quants = self.stock.search(
            [
                ("product_id", "=", product.id),
                ("lot_id", "=", lot.id if lot else False),
                ("location_id", "=", location.id),
            ]
        )
        return sum(quants.mapped("quantity"))

    def _rework(self, ref, event_type, **data):
        return self._send(None, event_type, data, order_ref=ref)

    def _sent(self, ref, serial, reason="LEAK"):
        """A valve sent to rework."""
        unit = {"product": "T-VALVE", "quantity": 1, "uom": "Units", "serials": [serial]}
        return self._rework(ref, "rework_started", reason=reason, **unit)

    def _out(self, ref, serial, result, **extra):
        """A valve out of rework."""
        unit = {"product": "T-VALVE", "quantity": 1, "uom": "Units", "serials": [serial]}
        return self._rework(ref, "rework_completed", result=result, **unit, **extra)


class TestRework(ReworkCase):
    def test_a_unit_reworked_good_is_unbuilt_and_rebuilt_with_its_new_part(self):
        _production, ref = self._two_valves()
        sn_1 = self._serial("SN-1")
        started = self._sent(ref, "SN-1")
        self._assert_processed(started)
        rework = started.rework_ids
        self.assertEqual(
            (rework.state, rework.lot_id, rework.reason_tag_id, rework.production_id.name),
            ("rework", sn_1, self.leak, f"{ref}-001"),
        )
        self.assertEqual(self._at(self.rework_location, self.valve, sn_1), 1)
        self.assertEqual(self._at(self.stock_location, self.valve, sn_1), 0)
        good = self._out(
            ref,
            "SN-1",
            "good",
            components=[{"product": "T-SENS", "quantity": 1, "uom": "Units", "serials": ["SEN-6"]}],
        )
        self._assert_processed(good)
        self.assertEqual(good.rework_ids, rework)
        self.assertEqual(rework.state, "good")
        self.assertEqual(rework.unbuild_ids.mapped("state"), ["done"])
        rebuild = rework.rebuild_id
        self.assertEqual((rebuild.state, rebuild.lot_producing_id), ("done", sn_1))
        self.assertTrue(rebuild.mes_rebuild)
        self.assertEqual(rebuild.mes_state, "not_sent")
        # SN-1 is back in stock, made of its housing and screws and of the new sensor.
        self.assertEqual(self._at(self.stock_location, self.valve, sn_1), 1)
        self.assertEqual(self._at(self.rework_location, self.valve, sn_1), 0)
        made_of = rebuild.move_finished_ids.move_line_ids.consume_line_ids
        self.assertEqual(
            sorted(
                (line.product_id.default_code, line.lot_id.name or "", line.quantity)
                for line in made_of
            ),
            [("T-HOUS", "LOT-A", 1), ("T-SCR", "", 4), ("T-SENS", "SEN-6", 1)],
        )
        # The old sensor was scrapped for the rework's reason; nothing is left in rework.
        self.assertEqual(rework.scrap_ids.lot_id, self.sensors[0])
        self.assertEqual(rework.scrap_ids.scrap_reason_tag_ids, self.leak)
        self.assertEqual(rework.scrap_ids.state, "done")
        leftovers = self.stock.search(
            [("location_id", "=", self.rework_location.id), ("quantity", "!=", 0)]
        )
        self.assertFalse(leftovers, leftovers.mapped(lambda q: (q.product_id.name, q.quantity)))
        # Nothing of the rework went to the MES.
        self.assertEqual(
            self.env["mes.message"].search_count([("production_id", "=", rebuild.id)]), 0
        )

    def test_a_unit_scrapped_after_rework(self):
        _production, ref = self._two_valves()
        sn_2 = self._serial("SN-2")
        self._assert_processed(self._sent(ref, "SN-2"))
        scrapped = self._out(ref, "SN-2", "scrapped", reason="BROKEN")
        self._assert_processed(scrapped)
        rework = scrapped.rework_ids
        self.assertEqual(rework.state, "scrapped")
        self.assertEqual(
            (
                rework.scrap_ids.lot_id,
                rework.scrap_ids.scrap_qty,
                rework.scrap_ids.scrap_reason_tag_ids,
            ),
            (sn_2, 1, self.broken),
        )
        self.assertEqual(rework.scrap_ids.production_id.name, f"{ref}-002")
        self.assertEqual(self._at(self.rework_location, self.valve, sn_2), 0)
        self.assertEqual(self._at(self.stock_location, self.valve, sn_2), 0)
        self.assertEqual(scrapped.scrap_ids, rework.scrap_ids)

    def test_part_of_a_quantity_back_to_stock_and_part_scrapped(self):
        self.backend.rework_method = "return"
        production = self._confirmed(qty=5)
        ref = production.name
        self._consume(production, self.housing, 5, lot="LOT-A")
        self._consume(production, self.screw, 20)
        self._assert_processed(self._complete(production, qty=5))
        self.assertEqual(self._at(self.stock_location, self.pump), 5)
        self._assert_processed(
            self._rework(
                ref, "rework_started", product="T-PUMP", quantity=3, uom="Units", reason="LEAK"
            )
        )
        self.assertEqual(
            (self._at(self.stock_location, self.pump), self._at(self.rework_location, self.pump)),
            (2, 3),
        )
        good = self._rework(
            ref, "rework_completed", product="T-PUMP", quantity=2, uom="Units", result="good"
        )
        self._assert_processed(good)
        self.assertEqual(
            (self._at(self.stock_location, self.pump), self._at(self.rework_location, self.pump)),
            (4, 1),
        )
        reworks = self.env["mes.rework"].search([("mes_order_ref", "=", ref)], order="id")
        self.assertEqual([(r.quantity, r.state) for r in reworks], [(2, "good"), (1, "rework")])
        scrapped = self._rework(
            ref, "rework_completed", product="T-PUMP", quantity=1, uom="Units", result="scrapped"
        )
        self._assert_processed(scrapped)
        self.assertEqual([(r.quantity, r.state) for r in reworks], [(2, "good"), (1, "scrapped")])
        self.assertEqual(reworks[1].scrap_ids.scrap_reason_tag_ids, self.leak)
        self.assertEqual(
            (self._at(self.stock_location, self.pump), self._at(self.rework_location, self.pump)),
            (4, 0),
        )
        # More out of rework than is in it: refused, naming what is.
        again = self._rework(
            ref, "rework_completed", product="T-PUMP", quantity=1, uom="Units", result="good"
        )
        self.assertEqual(again.error_code, "not_in_rework")
        self.assertIn(
            "1.0 Units of [T-PUMP] Pump reported out of rework, but 0.0 is in rework",
            again.error_text,
        )

    def test_parts_replaced_need_the_rebuild_method(self):
        self.backend.rework_method = "return"
        _production, ref = self._two_valves()
        self._assert_processed(self._sent(ref, "SN-1"))
        message = self._out(
            ref,
            "SN-1",
            "good",
            components=[{"product": "T-SENS", "quantity": 1, "uom": "Units", "serials": ["SEN-6"]}],
        )
        self.assertEqual(message.error_code, "rework_parts_not_recorded")
        self.assertEqual(self._at(self.rework_location, self.valve, self._serial("SN-1")), 1)

    def test_the_last_unit_sent_to_rework_is_posted_first(self):
        production, ref = self._valves(2)
        self._assert_processed(
            self._unit(ref, "SN-1", sensor="SEN-1"), self._unit(ref, "SN-2", sensor="SEN-2")
        )
        family = production._mes_family()
        self.assertEqual(family.mapped("state"), ["done", "progress"])
        started = self._sent(ref, "SN-2")
        self._assert_processed(started)
        # SN-2 posted; the order stays open for a replacement the MES may make.
        family = production._mes_family()
        self.assertEqual(
            [(p.state, p.product_qty) for p in family], [("done", 1), ("done", 1), ("confirmed", 1)]
        )
        self.assertEqual(self._at(self.rework_location, self.valve, self._serial("SN-2")), 1)
        self._assert_processed(self._unit(ref, "SN-3", sensor="SEN-3"))
        final = self._complete_ref(ref, quantity=3, uom="Units")
        self._assert_processed(final)
        self.assertEqual(family.mapped("state"), ["done"] * 3)
        self.assertEqual(family.lot_producing_id.mapped("name"), ["SN-1", "SN-2", "SN-3"])

    def test_no_replacement_for_the_unit_in_rework_closes_the_order_short(self):
        production, ref = self._valves(2)
        self._assert_processed(
            self._unit(ref, "SN-1", sensor="SEN-1"),
            self._unit(ref, "SN-2", sensor="SEN-2"),
            self._sent(ref, "SN-2"),
        )
        final = self._complete_ref(ref)
        self._assert_processed(final)
        family = production._mes_family() | final.production_id
        self.assertEqual(
            [(p.state, p.product_qty) for p in family], [("done", 1), ("done", 1), ("cancel", 1)]
        )

    def test_rework_of_what_is_not_in_stock_is_refused(self):
        _production, ref = self._two_valves()
        lot = self._serial("SN-1")
        self.stock._update_available_quantity(self.valve, self.stock_location, -1, lot_id=lot)
        message = self._sent(ref, "SN-1")
        self.assertEqual(message.error_code, "rework_not_in_stock")
        self.assertIn(
            "1.0 Units of [T-VALVE] Valve SN-1 sent to rework, but Odoo has 0", message.error_text
        )

    def test_without_a_rework_location_the_backend_is_named(self):
        self.backend.rework_location_id = False
        _production, ref = self._two_valves()
        message = self._sent(ref, "SN-1")
        self.assertEqual(message.error_code, "rework_location_missing")
        self.assertIn("MES backend Test MES has no rework location", message.error_text)

    def test_units_in_rework_show_on_the_shop_floor_dashboard(self):
        _production, ref = self._two_valves()
        self._assert_processed(self._sent(ref, "SN-1"), self._sent(ref, "SN-2"))

        def tile():
            dashboard = self.env["mes.dashboard"].get_dashboard("shopfloor", {"period": "7d"})
            summary = next(s for s in dashboard["sections"] if s["key"] == "summary")
            return next(t for t in summary["tiles"] if t["key"] == "rework")

        self.assertEqual((tile()["value"], tile()["level"]), (2, "warning"))
        listed = self.env["mes.rework"].search(tile()["action"]["domain"])
        self.assertEqual(sorted(listed.lot_id.mapped("name")), ["SN-1", "SN-2"])
        self._assert_processed(self._out(ref, "SN-2", "scrapped"))
        self.assertEqual((tile()["value"], tile()["level"]), (1, "warning"))
