from datetime import datetime
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError

from .test_dashboard import DashboardCase

# A Wednesday morning; the reader lives in Brussels (UTC+1 in March).
NOW = datetime(2026, 3, 4, 10, 30)
# The period of 7 days starts at his midnight of Thursday 26 February.
START = datetime(2026, 2, 25, 23, 0)


class TestShopFloorDashboard(DashboardCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.planner.tz = "Europe/Brussels"
        # Press works Monday to Friday 08:00-12:00 and 13:00-17:00 UTC; Oven round the clock.
        calendar = cls.env["resource.calendar"].create(
            {
                "name": "Press hours (test)",
                "tz": "UTC",
                "attendance_ids": [
                    Command.create(
                        {
                            "name": f"{weekday} {start}",
                            "dayofweek": str(weekday),
                            "hour_from": start,
                            "hour_to": start + 4,
                            "day_period": "morning" if start == 8 else "afternoon",
                        }
                    )
                    for weekday in range(5)
                    for start in (8, 13)
                ],
            }
        )
        workcenter = cls.env["mrp.workcenter"]
        cls.press = workcenter.create(
            {"name": "Press", "resource_calendar_id": calendar.id, "tz": "UTC"}
        )
        cls.oven = workcenter.create({"name": "Oven", "resource_calendar_id": False})
        # The demo's shop floor is not this test's.
        cls.env["mrp.workcenter.productivity"].search([("mes_downtime_ref", "!=", False)]).unlink()
        category = cls.env.ref("mrp.block_reason1").loss_id
        loss = cls.env["mrp.workcenter.productivity.loss"]
        cls.breakdown = loss.create({"name": "Breakdown (test)", "loss_id": category.id})
        cls.shortage = loss.create({"name": "Shortage (test)", "loss_id": category.id})

    def _downtime(self, workcenter, loss, start, end, ref):
        return self.env["mrp.workcenter.productivity"].create(
            {
                "workcenter_id": workcenter.id,
                "loss_id": loss.id,
                "date_start": start,
                "date_end": end,
                "company_id": self.company.id,
                "mes_backend_id": self.backend.id if ref else False,
                "mes_downtime_ref": ref,
            }
        )

    def _week(self):
        """What the MES reported over the week; and what it did not report."""
        down = self._downtime
        # Monday, from 16:30 to 18:00: half an hour of it in the Press's working hours.
        down(self.press, self.breakdown, "2026-03-02 16:30:00", "2026-03-02 18:00:00", "D1")
        # Tuesday, one hour in the working hours.
        down(self.press, self.breakdown, "2026-03-03 09:00:00", "2026-03-03 10:00:00", "D2")
        # Across the period's start: two of its three hours are in it.
        down(self.oven, self.shortage, "2026-02-25 22:00:00", "2026-02-26 01:00:00", "D3")
        # Going on since 09:00: one and a half hours so far.
        down(self.oven, self.breakdown, "2026-03-04 09:00:00", False, "D4")
        # Before the period, and a block recorded in Odoo, not by the MES: neither counts.
        down(self.oven, self.breakdown, "2026-02-20 09:00:00", "2026-02-20 12:00:00", "D5")
        down(self.press, self.breakdown, "2026-03-03 13:00:00", "2026-03-03 17:00:00", False)

    def _shopfloor(self, period="7d", user=None, **filters):
        with freeze_time(NOW):
            return (
                self.env["mes.dashboard"]
                .with_user(user or self.planner)
                .get_dashboard("shopfloor", {"period": period, **filters})
            )

    def test_downtime_ranked_largest_first_with_its_share(self):
        self._week()
        dashboard = self._shopfloor()
        self.assertEqual(dashboard["title"], "Shop floor as the MES reports it")
        by_reason = self._section(dashboard, "downtime_by_reason")
        self.assertEqual(
            [
                (row["label"], row["display"], row["count"], row["share"], row["cumulative"])
                for row in by_reason["rows"]
            ],
            [
                ("Breakdown (test)", "4 h 00 min", 3, "67%", "67%"),
                ("Shortage (test)", "2 h 00 min", 1, "33%", "100%"),
            ],
        )
        self.assertEqual([row["width"] for row in by_reason["rows"]], [100.0, 50.0])
        by_workcenter = self._section(dashboard, "downtime_by_workcenter")
        self.assertEqual(
            [(row["label"], row["display"], row["count"]) for row in by_workcenter["rows"]],
            [("Oven", "3 h 30 min", 2), ("Press", "2 h 30 min", 2)],
        )
        listed = self.env["mrp.workcenter.productivity"].search(
            by_reason["rows"][0]["action"]["domain"]
        )
        self.assertEqual(sorted(listed.mapped("mes_downtime_ref")), ["D1", "D2", "D4"])
        tiles = {tile["key"]: tile for tile in self._section(dashboard, "summary")["tiles"]}
        self.assertEqual(tiles["down_now"]["value"], 1)
        self.assertEqual(tiles["downtime"]["value"], "6 h 00 min")
        self.assertEqual(tiles["downtime"]["note"], "4 stops")
        self.assertFiguresOpenWhatTheyCount(dashboard, self.planner)

    def test_availability_per_work_center_and_day_against_its_calendar(self):
        self._week()
        heatmap = self._section(self._shopfloor(), "availability")
        self.assertEqual(
            heatmap["columns"],
            ["Thu 26", "Fri 27", "Sat 28", "Sun 1", "Mon 2", "Tue 3", "Wed 4"],
        )
        # The least available first: Press lost 1.5 of 34.5 planned hours, Oven 3.5 of 155.5.
        self.assertEqual([row["label"] for row in heatmap["rows"]], ["Press", "Oven"])
        press, oven = heatmap["rows"]
        self.assertEqual(
            [cell["display"] for cell in press["cells"]],
            ["100%", "100%", "", "", "94%", "88%", "100%"],
        )
        self.assertEqual(
            [cell["level"] for cell in press["cells"]],
            ["success", "success", "", "", "success", "warning", "success"],
        )
        self.assertEqual(press["total"], "96%")
        self.assertEqual((press["planned"], press["down"]), (34.5 * 3600, 1.5 * 3600))
        self.assertEqual(press["cells"][5]["note"], "Tue 3: 1 h 00 min down of 8 h 00 min planned")
        self.assertEqual(press["cells"][2]["note"], "Sat 28: not planned to work")
        tuesday = self.env["mrp.workcenter.productivity"].search(
            press["cells"][5]["action"]["domain"]
        )
        self.assertEqual(tuesday.mapped("mes_downtime_ref"), ["D2"])
        self.assertFalse(press["cells"][0]["action"])  # nothing lost: nothing to list
        self.assertEqual(
            [cell["display"] for cell in oven["cells"]],
            ["92%", "100%", "100%", "100%", "100%", "100%", "87%"],
        )
        self.assertEqual((oven["planned"], oven["down"]), (155.5 * 3600, 3.5 * 3600))
        self.assertEqual(oven["total"], "98%")
        availability = next(
            tile
            for tile in self._section(self._shopfloor(), "summary")["tiles"]
            if tile["key"] == "availability"
        )
        self.assertEqual(availability["value"], "97%")  # 5 of 190 planned hours lost
        self.assertEqual(availability["note"], "5 h 00 min lost of 7 d 22 h planned")

    def test_scrap_by_reason_counts_what_the_mes_reported(self):
        damaged = self.env["stock.scrap.reason.tag"].create({"name": "Damaged (shop floor)"})
        burnt = self.env["stock.scrap.reason.tag"].create({"name": "Burnt (shop floor)"})
        self._map("scrap_reason", "DMG", scrap_tag_id=damaged)
        self._map("scrap_reason", "BRN", scrap_tag_id=burnt)
        production = self._confirmed(qty=5)
        with freeze_time(datetime(2026, 3, 3, 14, 0)):
            for quantity, reason in ((2, "DMG"), (1, "DMG"), (1, "BRN")):
                self._assert_processed(
                    self._send(
                        production,
                        "scrap_reported",
                        {
                            "product": "T-SCR",
                            "quantity": quantity,
                            "uom": "Units",
                            "reason": reason,
                        },
                    )
                )
            # Scrapped in Odoo by a person: not what the MES reported.
            self.env["stock.scrap"].create(
                {"product_id": self.screw.id, "scrap_qty": 7, "scrap_reason_tag_ids": damaged.ids}
            ).do_scrap()
        dashboard = self._shopfloor()
        scrap = self._section(dashboard, "scrap_by_reason")
        self.assertEqual(
            [(row["label"], row["display"], row["count"], row["share"]) for row in scrap["rows"]],
            [
                ("Damaged (shop floor)", "3 Units", 2, "75%"),
                ("Burnt (shop floor)", "1 Units", 1, "25%"),
            ],
        )
        tile = next(t for t in self._section(dashboard, "summary")["tiles"] if t["key"] == "scrap")
        self.assertEqual(tile["value"], 3)
        # A week later, they are out of the 7 days.
        with freeze_time(datetime(2026, 3, 12, 10, 0)):
            later = (
                self.env["mes.dashboard"]
                .with_user(self.planner)
                .get_dashboard("shopfloor", {"period": "7d"})
            )
        self.assertEqual(self._section(later, "scrap_by_reason")["rows"], [])
        for row, quantities in zip(scrap["rows"], ([2, 1], [1]), strict=True):
            listed = self.env["stock.scrap"].with_user(self.planner).search(row["action"]["domain"])
            self.assertEqual(sorted(listed.mapped("scrap_qty"), reverse=True), quantities)

    def test_the_last_24_hours_in_hours_of_the_readers_day(self):
        self._week()
        dashboard = self._shopfloor(period="1d")
        heatmap = self._section(dashboard, "availability")
        # 11:00 in Brussels yesterday to 11:00 (now 11:30) today, hour by hour.
        self.assertEqual(heatmap["columns"][0], "12:00")
        self.assertEqual(heatmap["columns"][-1], "11:00")
        self.assertEqual(len(heatmap["columns"]), 24)
        oven = self._row(heatmap, "Oven")
        # Down since 09:00 UTC (10:00 in Brussels): the hours of 10:00 and 11:00 (so far) lost.
        self.assertEqual([c["display"] for c in oven["cells"][-3:]], ["100%", "0%", "0%"])
        self.assertEqual(oven["cells"][-1]["level"], "danger")
        self.assertEqual(
            [
                (row["label"], row["display"])
                for row in self._section(dashboard, "downtime_by_reason")["rows"]
            ],
            [("Breakdown (test)", "1 h 30 min")],
        )


class TestShopFloorEdges(TestShopFloorDashboard):
    """What the MES, a person or a caller may make of the shop floor's figures."""

    # The cases of the parent class run once, there.
    test_downtime_ranked_largest_first_with_its_share = None
    test_availability_per_work_center_and_day_against_its_calendar = None
    test_scrap_by_reason_counts_what_the_mes_reported = None
    test_the_last_24_hours_in_hours_of_the_readers_day = None

    def _tiles(self, dashboard):
        return {tile["key"]: tile for tile in self._section(dashboard, "summary")["tiles"]}

    def test_down_now_counts_work_centers_in_a_stop_now(self):
        down = self._downtime
        # Press: two stops at once, one work center down.
        down(self.press, self.breakdown, "2026-03-04 09:00:00", False, "N1")
        down(self.press, self.shortage, "2026-03-04 10:00:00", False, "N2")
        # Oven: a stop the MES announced from 11:00 (after now) does not count yet.
        down(self.oven, self.breakdown, "2026-03-04 11:00:00", False, "N3")
        tiles = self._tiles(self._shopfloor(period="1d"))
        self.assertEqual(tiles["down_now"]["value"], 1)
        listed = self.env["mrp.workcenter"].search(tiles["down_now"]["action"]["domain"])
        self.assertEqual(listed, self.press)

    def test_a_stop_edited_to_end_before_it_started_counts_as_it_is_listed(self):
        down = self._downtime
        down(self.press, self.breakdown, "2026-03-03 09:00:00", "2026-03-03 10:00:00", "R1")
        down(self.press, self.breakdown, "2026-03-02 10:00:00", "2026-03-02 09:00:00", "R2")
        row = self._section(self._shopfloor(), "downtime_by_reason")["rows"][0]
        self.assertEqual((row["display"], row["count"]), ("1 h 00 min", 2))
        listed = self.env["mrp.workcenter.productivity"].search_count(row["action"]["domain"])
        self.assertEqual(listed, 2)

    def test_the_last_cell_lists_only_what_it_counts(self):
        down = self._downtime
        down(self.oven, self.breakdown, "2026-03-04 10:00:00", "2026-03-04 10:15:00", "F1")
        down(self.oven, self.shortage, "2026-03-04 10:45:00", False, "F2")  # after now
        oven = self._row(self._section(self._shopfloor(period="1d"), "availability"), "Oven")
        cell = oven["cells"][-1]
        self.assertEqual(cell["note"], "11:00: 15 min down of 30 min planned")
        listed = self.env["mrp.workcenter.productivity"].search(cell["action"]["domain"])
        self.assertEqual(listed.mapped("mes_downtime_ref"), ["F1"])

    def test_availability_counts_every_work_center_beyond_the_maps_rows(self):
        self._week()
        with patch("odoo.addons.mes_base.models.mes_dashboard_shop_floor.MAX_WORKCENTERS", 1):
            dashboard = self._shopfloor()
        self.assertEqual(
            [row["label"] for row in self._section(dashboard, "availability")["rows"]], ["Press"]
        )
        self.assertEqual(self._tiles(dashboard)["availability"]["value"], "97%")  # both, as before

    def test_nothing_to_show_opens_nothing(self):
        tiles = self._tiles(self._shopfloor(period="1d"))
        self.assertEqual(
            [(tiles[key]["value"], tiles[key]["action"]) for key in ("downtime", "availability")],
            [("0", False), ("-", False)],
        )

    def test_scrap_with_several_reasons_is_under_each_of_what_was_scrapped(self):
        damaged = self.env["stock.scrap.reason.tag"].create({"name": "Damaged (edges)"})
        burnt = self.env["stock.scrap.reason.tag"].create({"name": "Burnt (edges)"})
        self._map("scrap_reason", "DMG", scrap_tag_id=damaged)
        self._map("scrap_reason", "BRN", scrap_tag_id=burnt)
        production = self._confirmed(qty=5)
        with freeze_time(datetime(2026, 3, 3, 14, 0)):
            reports = [
                self._send(
                    production,
                    "scrap_reported",
                    {"product": "T-SCR", "quantity": quantity, "uom": "Units", "reason": reason},
                )
                for quantity, reason in ((3, "DMG"), (1, "BRN"))
            ]
        # A person adds a second reason to the first scrap order.
        reports[0].scrap_ids.scrap_reason_tag_ids |= burnt
        rows = self._section(self._shopfloor(), "scrap_by_reason")["rows"]
        self.assertEqual(
            [(row["label"], row["display"], row["share"], row["cumulative"]) for row in rows],
            [
                ("Burnt (edges)", "4 Units", "100%", ""),
                ("Damaged (edges)", "3 Units", "75%", ""),
            ],
        )

    def test_a_caller_gets_a_clear_error_for_any_filter_it_makes_up(self):
        board = self.env["mes.dashboard"].with_user(self.planner)
        for filters in (
            {"period": ["7d"]},
            {"period": {"x": 1}},
            {"period": 7},
            {"company_ids": [True]},
            {"company_ids": [None]},
            {"company_ids": [1.5]},
            {"company_ids": [[1]]},
            {"company_ids": {"1": 1}},
            {"company_ids": list(range(1001))},
            {"backend_ids": [{"id": 1}]},
            {"backend_ids": [2**70]},
            {"__proto__": 1},
            [],
            "7d",
        ):
            with self.assertRaises(UserError, msg=repr(filters)):
                board.get_dashboard("shopfloor", filters)
        for name in (["shopfloor"], {"a": 1}, None, 5):
            with self.assertRaises(AccessError, msg=repr(name)):
                board.get_dashboard(name)
        # A zone the client made up: the dashboard reads in UTC rather than failing.
        dashboard = board.with_context(tz="Nowhere/Land").get_dashboard("shopfloor")
        self.assertEqual(dashboard["timezone"], "Europe/Brussels")  # the reader's own
        self.planner.tz = False
        self.assertEqual(
            board.with_context(tz="Nowhere/Land").get_dashboard("shopfloor")["timezone"], "UTC"
        )


class TestDashboardFilters(DashboardCase):
    def test_filters_by_plant_and_mes_and_refuses_what_is_not_the_readers(self):
        production = self._confirmed(qty=1)
        self._send(
            production, "material_consumed", {"product": "MES-F", "quantity": 1, "uom": "Units"}
        )
        other = self.env["res.company"].create({"name": "Plant B (filters)"})
        self.planner.company_ids += other
        self.backend.user_id.company_ids += other
        other_backend = self.env["mes.backend"].create(
            {
                "name": "MES of plant B",
                "code": "PLANT-B",
                "company_id": other.id,
                "base_url": "http://127.0.0.1:9",
            }
        )
        self.env["mes.message"].sudo().create(
            {
                "backend_id": other_backend.id,
                "direction": "inbound",
                "message_type": "material_consumed",
                "state": "error",
                "error_code": "unmapped_product",
                "cause_code": "unmapped_product",
                "cause_value": "B-ONLY",
            }
        )
        dashboard = (
            self.env["mes.dashboard"]
            .with_user(self.planner)
            .with_context(allowed_company_ids=[self.company.id, other.id])
        )

        def errors(**filters):
            board = dashboard.get_dashboard("planner", filters)
            return self._tile(board, "errors"), board

        everything, board = errors()
        self.assertEqual(
            [company["name"] for company in board["filters"]["companies"]],
            [self.company.name, "Plant B (filters)"],
        )
        self.assertEqual(
            {backend["name"] for backend in board["filters"]["backends"]},
            {"Test MES", "MES of plant B"},
        )
        plant_b, _board = errors(company_ids=[other.id])
        ours, _board = errors(backend_ids=[self.backend.id])
        message = self.env["mes.message"]
        self.assertEqual(plant_b["value"], 1)
        self.assertEqual(
            ours["value"],
            message.search_count([("backend_id", "=", self.backend.id), ("state", "=", "error")]),
        )
        self.assertEqual(ours["value"], 1)  # MES-F
        self.assertEqual(everything["value"], message.search_count([("state", "=", "error")]))
        # The list behind the figure is filtered the same way, whatever companies the
        # web client has on.
        listed = (
            self.env["mes.message"]
            .with_user(self.planner)
            .with_context(allowed_company_ids=[self.company.id, other.id])
        )
        self.assertEqual(listed.search_count(plant_b["action"]["domain"]), 1)
        self.assertEqual(listed.search_count(ours["action"]["domain"]), ours["value"])
        board = dashboard.get_dashboard("planner", {"backend_ids": [other_backend.id]})
        causes = [row["label"] for row in self._section(board, "causes")["rows"]]
        self.assertEqual(causes, ["MES product code B-ONLY is not mapped to a product"])

        # Another user's plant and MES are refused by name, and so is nonsense.
        foreign = self.env["res.company"].create({"name": "Plant C (filters)"})
        cases = [
            ({"period": "2d"}, "filters.period: '2d' is not a period"),
            ({"company_ids": [foreign.id]}, f"filters.company_ids: {foreign.id} is not one of"),
            ({"backend_ids": ["1"]}, "filters.backend_ids: '1' is not one of your MES"),
            ({"backend_ids": 5}, "filters.backend_ids: expected a list of ids"),
            ({"plant": [1]}, "filters.plant: there is no such filter"),
        ]
        for filters, error in cases:
            with self.assertRaisesRegex(UserError, error.replace("(", r"\(")):
                dashboard.get_dashboard("planner", filters)
        # Plant B switched off in the web client: its MES is not the reader's to choose.
        only_ours = dashboard.with_context(allowed_company_ids=[self.company.id])
        with self.assertRaisesRegex(UserError, f"filters.backend_ids: {other_backend.id} is not"):
            only_ours.get_dashboard("planner", {"backend_ids": [other_backend.id]})

    def test_traffic_over_seven_days_by_the_readers_day(self):
        self.planner.tz = "Asia/Kolkata"  # UTC+5:30: days do not start on a UTC hour
        with freeze_time(datetime(2026, 3, 4, 10, 0)):
            production = self._confirmed(qty=1)
            message = self._send(
                production, "material_consumed", {"product": "MES-T", "quantity": 1, "uom": "Units"}
            )
        # Received at 18:40 UTC on 2 March: 00:10 on Tuesday 3 March in Kolkata.
        self.env.cr.execute(
            "UPDATE mes_message SET create_date = '2026-03-02 18:40:00' WHERE id = %s",
            (message.id,),
        )
        with freeze_time(datetime(2026, 3, 4, 10, 0)):
            board = (
                self.env["mes.dashboard"]
                .with_user(self.integrator)
                .with_context(tz="Asia/Kolkata")
                .get_dashboard("health", {"period": "7d"})
            )
        traffic = self._section(board, "traffic")
        self.assertEqual(traffic["title"], "Messages, last 7 days")
        self.assertEqual(traffic["series"], ["MES → Odoo", "Odoo → MES", "Of these, in error now"])
        by_day = {
            point["label"]: [bar["value"] for bar in point["bars"]] for point in traffic["points"]
        }
        self.assertEqual(
            list(by_day), ["Thu 26", "Fri 27", "Sat 28", "Sun 1", "Mon 2", "Tue 3", "Wed 4"]
        )
        self.assertEqual(by_day["Tue 3"], [1, 0, 1])
        self.assertEqual(by_day["Mon 2"], [0, 0, 0])
        self.assertFiguresOpenWhatTheyCount(board, self.integrator)
