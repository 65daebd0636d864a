from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from odoo.addons.queue_job.tests.common import trap_jobs

from .test_events import EventCase


class DashboardCase(EventCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.planner = new_test_user(
            cls.env, "mes_dash_planner", groups="mes_base.group_mes_user,stock.group_stock_user"
        )
        cls.integrator = new_test_user(
            cls.env, "mes_dash_integrator", groups="mes_base.group_mes_manager"
        )
        cls.storekeeper = new_test_user(
            cls.env, "mes_dash_store", groups="stock.group_stock_user,mrp.group_mrp_user"
        )

    def _dashboard(self, name, user=None):
        return self.env["mes.dashboard"].with_user(user or self.planner).get_dashboard(name)

    def _section(self, dashboard, key):
        return next(s for s in dashboard["sections"] if s["key"] == key)

    def _tile(self, dashboard, key):
        return next(t for t in self._section(dashboard, "summary")["tiles"] if t["key"] == key)

    def _row(self, section, label):
        rows = [row for row in section["rows"] if row["label"] == label]
        self.assertEqual(len(rows), 1, f"row {label!r} in {[r['label'] for r in section['rows']]}")
        return rows[0]

    def _figures(self, dashboard):
        """Every figure with a list behind it: (where, value, action)."""
        for section in dashboard["sections"]:
            if section["kind"] == "tiles":
                for tile in section["tiles"]:
                    yield f"{section['key']}/{tile['key']}", tile["value"], tile["action"]
            elif section["kind"] == "table":
                for row in section["rows"]:
                    for index, cell in enumerate(row["cells"]):
                        yield (
                            f"{section['key']}/{row['label']}/{index}",
                            cell["value"],
                            cell.get("action"),
                        )
            elif section["kind"] == "bars":
                for point in section["points"]:
                    for index, bar in enumerate(point["bars"]):
                        where = f"{section['key']}/{point['label']}/{index}"
                        yield where, bar["value"], bar["action"]
            elif section["kind"] == "pareto":
                # The bar is a time or a quantity; the count beside it is what the list holds.
                for row in section["rows"]:
                    yield f"{section['key']}/{row['label']}", row["count"], row["action"]

    def assertFiguresOpenWhatTheyCount(self, dashboard, user):
        """A figure and the list it opens agree, for the user who sees the dashboard."""
        checked = 0
        for where, value, action in self._figures(dashboard):
            if not action or "res_id" in action or not isinstance(value, int):
                continue
            count = self.env[action["res_model"]].with_user(user).search_count(action["domain"])
            self.assertEqual(count, value, f"{where}: figure {value}, its list holds {count}")
            checked += 1
        self.assertGreater(checked, 5)


class TestPlannerDashboard(DashboardCase):
    def test_the_dashboard_reads_in_the_readers_time_zone_and_words(self):
        self.planner.tz = "America/New_York"
        production = self._confirmed(qty=1)
        self._send(
            production, "material_consumed", {"product": "MES-NOWC", "quantity": 1, "uom": "Units"}
        )
        dashboard = self._dashboard("planner")
        self.assertEqual(dashboard["timezone"], "America/New_York")
        # Generated now: in New York that is 4 or 5 hours before the UTC clock.
        # (the minute may have turned since the dashboard was made).
        now = fields.Datetime.now()
        hours = {
            (now - timedelta(hours=offset, minutes=turned)).strftime("%-I:%M")
            for offset in (4, 5)
            for turned in (0, 1)
        }
        self.assertTrue(
            any(hour in dashboard["generated_at"] for hour in hours), dashboard["generated_at"]
        )
        by_workcenter = self._section(dashboard, "by_workcenter")
        labels = [row["label"] for row in by_workcenter["rows"]]
        self.assertIn("No work center named", labels)
        self.assertNotIn("None", labels)

    def test_figures_follow_the_messages(self):
        before = self._dashboard("planner")
        first = self._confirmed(qty=2)
        second = self._confirmed(qty=1)
        unmapped = self._consume(first, self.screw, 4)  # mapped: posted
        self.assertEqual(unmapped.state, "processed")
        error_a = self._send(
            first, "material_consumed", {"product": "MES-X", "quantity": 3, "uom": "Units"}
        )
        error_b = self._send(
            second, "material_consumed", {"product": "MES-X", "quantity": 1, "uom": "Units"}
        )
        with trap_jobs():
            waiting = self._send(
                self._confirmed(qty=1),
                "material_consumed",
                {
                    "product": "T-HOUS",
                    "quantity": 1,
                    "uom": "Units",
                    "lot": "LOT-NEW",
                    "operation": 10,
                },
            )
        self.assertEqual(
            (error_a.state, error_b.state, waiting.state), ("error", "error", "waiting")
        )
        # One export the MES refused.
        refused = self.env["mes.message"].search(
            [("production_id", "=", first.id), ("direction", "=", "outbound")]
        )
        refused.sudo().write(
            {"state": "rejected", "error_code": "mes_http_422", "cause_code": "mes_http_422"}
        )
        # The oldest error is five hours old.
        self.env.cr.execute(
            "UPDATE mes_message SET create_date = %s WHERE id = %s",
            (fields.Datetime.now() - timedelta(hours=5), error_a.id),
        )
        self.env["mes.message"].invalidate_model(["create_date"])

        after = self._dashboard("planner")

        def delta(key):
            return self._tile(after, key)["value"] - self._tile(before, key)["value"]

        self.assertEqual(delta("errors"), 2)
        self.assertEqual(delta("waiting"), 1)
        self.assertEqual(delta("exports_failed"), 1)
        self.assertEqual(self._tile(after, "errors")["level"], "danger")
        oldest = self._tile(after, "oldest_error")
        self.assertEqual(oldest["action"]["res_id"], error_a.id)
        self.assertTrue(oldest["value"].startswith("5 h"), oldest["value"])
        self.assertEqual(
            oldest["note"],
            f"{error_a.display_name}: MES product code MES-X is not mapped to a product",
        )

        causes = self._section(after, "causes")
        row = self._row(causes, "MES product code MES-X is not mapped to a product")
        self.assertEqual(row["cells"][1]["value"], 2)
        self.assertEqual(self.env["mes.message"].search(row["action"]["domain"]), error_a | error_b)
        # The fix, one click away: the mapping form with the MES code filled in.
        fix = row["cells"][3]
        self.assertEqual(fix["value"], "Map MES-X")
        self.assertEqual(fix["action"]["res_model"], "mes.mapping")
        self.assertEqual(
            {k: fix["action"]["context"][k] for k in ("default_mapping_type", "default_mes_code")},
            {"default_mapping_type": "product", "default_mes_code": "MES-X"},
        )
        refused = self._row(causes, "The MES refused it (HTTP 422)")
        self.assertEqual(refused["cells"][1]["value"], 1)
        self.assertEqual(refused["cells"][3]["value"], "Open the report")

        by_age = self._section(after, "by_age")
        error_row = self._row(by_age, "Error")
        # Columns: 0-1 h, 1-4 h, 4-24 h, over 24 h, all.
        self.assertGreaterEqual(error_row["cells"][0]["value"], 1)
        self.assertIn(
            error_a, self.env["mes.message"].search(error_row["cells"][2]["action"]["domain"])
        )
        self.assertNotIn(
            error_a, self.env["mes.message"].search(error_row["cells"][0]["action"]["domain"])
        )

        by_workcenter = self._section(after, "by_workcenter")
        assembly = self._row(by_workcenter, "Test Assembly")
        self.assertEqual([cell["value"] for cell in assembly["cells"]], [0, 1, 0, 1])
        by_type = self._section(after, "by_type")
        self.assertGreaterEqual(self._row(by_type, "Material consumed")["cells"][0]["value"], 2)
        self.assertFiguresOpenWhatTheyCount(after, self.planner)

    def test_one_mapping_fix_and_bulk_retry_clear_a_cause(self):
        production = self._confirmed(qty=2)
        messages = self._send(
            production, "material_consumed", {"product": "MES-Y", "quantity": 2, "uom": "Units"}
        )
        messages |= self._send(
            self._confirmed(qty=1),
            "material_consumed",
            {"product": "MES-Y", "quantity": 1, "uom": "Units"},
        )
        row = self._row(
            self._section(self._dashboard("planner"), "causes"),
            "MES product code MES-Y is not mapped to a product",
        )
        listed = self.env["mes.message"].with_user(self.planner).search(row["action"]["domain"])
        self.assertEqual(listed, messages)
        self._map("product", "MES-Y", product_id=self.screw)
        with trap_jobs() as trap:
            listed.action_retry()
            trap.perform_enqueued_jobs()
        self._assert_processed(*messages)
        causes = self._section(self._dashboard("planner"), "causes")
        self.assertNotIn(
            "MES product code MES-Y is not mapped to a product",
            [r["label"] for r in causes["rows"]],
        )


class TestWarehouseDashboard(DashboardCase):
    def test_unposted_material_unknown_lots_and_negative_stock(self):
        before = self._dashboard("warehouse")
        production = self._confirmed(qty=1)
        unmapped = self._send(
            production, "material_consumed", {"product": "MES-Z", "quantity": 2.5, "uom": "kg"}
        )
        with trap_jobs():
            lot_wait = self._send(
                self._confirmed(qty=1),
                "material_consumed",
                {"product": "T-HOUS", "quantity": 1, "uom": "Units", "lot": "LOT-NEW"},
            )
        scrap = self._send(
            self._confirmed(qty=1),
            "scrap_reported",
            {"product": "T-SCR", "quantity": 1, "uom": "Units", "reason": "NO-SUCH-REASON"},
        )
        self.assertEqual(
            (unmapped.state, lot_wait.state, scrap.state), ("error", "waiting", "error")
        )
        # Stock of screws runs short; the MES consumed more than Odoo had.
        self.env["stock.quant"]._update_available_quantity(self.screw, self.stock_location, -498)
        short = self._confirmed(qty=1)
        self._assert_processed(self._consume(short, self.screw, 4))
        self._assert_processed(self._consume(short, self.housing, 1, lot="LOT-A"))
        self._assert_processed(self._complete(short, 1))
        self.assertEqual(short.state, "done")
        # Negative stock that no MES posting made is not the interface's.
        other = self.env["product.product"].create(
            {"name": "Manual", "default_code": "T-MAN", "is_storable": True}
        )
        self.env["stock.quant"]._update_available_quantity(other, self.stock_location, -3)

        after = self._dashboard("warehouse")

        def delta(key):
            return self._tile(after, key)["value"] - self._tile(before, key)["value"]

        self.assertEqual(delta("consumption"), 2)
        self.assertEqual(delta("scrap"), 1)
        self.assertEqual(delta("unknown_lots"), 1)
        self.assertEqual(delta("negative_stock"), 1)
        negative = self.env["stock.quant"].search(
            self._tile(after, "negative_stock")["action"]["domain"]
        )
        screw_quant = negative.filtered(lambda q: q.product_id == self.screw)
        self.assertEqual(screw_quant.quantity, -2)
        self.assertFalse(negative.filtered(lambda q: q.product_id == other))

        unknown = self._row(self._section(after, "unknown_lots"), "LOT-NEW")
        self.assertEqual(unknown["cells"][0]["value"], self.housing.display_name)
        self.assertEqual(
            self.env["mes.message"].search(unknown["cells"][2]["action"]["domain"]), lot_wait
        )
        material = self._row(self._section(after, "unposted_material"), "MES-Z")
        self.assertEqual(material["cells"][1]["value"], "unmapped MES code MES-Z")
        self.assertEqual(material["cells"][2]["value"], "2.5 kg")
        self.assertFiguresOpenWhatTheyCount(after, self.planner)


class TestHealthDashboard(DashboardCase):
    def test_traffic_time_to_post_contact_and_failed_jobs(self):
        production = self._production(qty=1)
        production.action_confirm()  # its export job is stored, not run
        posted = [
            self._consume(production, self.screw, 1),
            self._consume(production, self.screw, 1),
            self._consume(production, self.screw, 1),
        ]
        self._assert_processed(*posted)
        # Received 10, 30 and 50 seconds before they were posted (nothing else posted in 24 h).
        self.env.cr.execute(
            """UPDATE mes_message SET processed_at = processed_at - interval '2 days',
                                      create_date = create_date - interval '2 days'
                WHERE direction = 'inbound' AND state = 'processed' AND id NOT IN %s""",
            (tuple(m.id for m in posted),),
        )
        for message, seconds in zip(posted, (10, 30, 50), strict=True):
            self.env.cr.execute(
                "UPDATE mes_message SET create_date = processed_at - %s * interval '1 second' "
                "WHERE id = %s",
                (seconds, message.id),
            )
        self.env["mes.message"].invalidate_model()
        # A delivery queue_job gave up on.
        export = self.env["mes.message"].search(
            [("production_id", "=", production.id), ("direction", "=", "outbound")]
        )
        self.assertTrue(export.job_uuid)
        job = self.env["queue.job"].search([("uuid", "=", export.job_uuid)])
        job.write({"state": "failed", "exc_name": "ConnectionError", "exc_message": "refused"})
        self.assertEqual(export.state, "failed")

        dashboard = self._dashboard("health", self.integrator)
        to_post = self._tile(dashboard, "time_to_post")
        self.assertEqual(to_post["value"], "30 s")
        self.assertIn("95% within 48 s", to_post["note"])
        failed = self._tile(dashboard, "failed_jobs")
        self.assertGreaterEqual(failed["value"], 1)
        self.assertIn(
            job, self.env["queue.job"].with_user(self.integrator).search(failed["action"]["domain"])
        )
        row = self._row(self._section(dashboard, "backends"), "Test MES")
        self.assertRegex(row["cells"][0]["value"], r"^\d+ s ago$")  # the last event
        self.assertEqual(row["cells"][2]["value"], "push")
        traffic = self._section(dashboard, "traffic")
        self.assertEqual(len(traffic["points"]), 24)
        start = fields.Datetime.now().replace(minute=0, second=0, microsecond=0) - timedelta(
            hours=23
        )
        inbound = self.env["mes.message"].search_count(
            [("direction", "=", "inbound"), ("create_date", ">=", start)]
        )
        self.assertGreaterEqual(inbound, 3)
        self.assertEqual(sum(p["bars"][0]["value"] for p in traffic["points"]), inbound)
        self.assertFiguresOpenWhatTheyCount(dashboard, self.integrator)

    def test_pull_backend_shows_its_last_read_and_error(self):
        self.backend.write({"pull_enabled": True})
        self.simulator.down = True
        self.env["mes.backend"]._cron_pull_events()
        row = self._row(
            self._section(self._dashboard("health", self.integrator), "backends"), "Test MES"
        )
        self.assertEqual(row["cells"][2]["value"], "never")
        self.assertEqual(row["cells"][2]["level"], "danger")
        self.assertTrue(self.backend.pull_last_error)
        self.simulator.down = False
        self.env["mes.backend"]._cron_pull_events()
        self.assertFalse(self.backend.pull_last_error)
        row = self._row(
            self._section(self._dashboard("health", self.integrator), "backends"), "Test MES"
        )
        self.assertEqual(row["cells"][2]["value"], "0 s ago")


@tagged("post_install", "-at_install")  # menus of addons installed after this one load too
class TestDashboardAccess(DashboardCase):
    def test_each_dashboard_only_for_its_group(self):
        for name in ("planner", "warehouse", "shopfloor", "health"):
            with self.assertRaises(AccessError):
                self._dashboard(name, self.storekeeper)
        self._dashboard("planner", self.planner)
        self._dashboard("warehouse", self.planner)
        self._dashboard("shopfloor", self.planner)
        with self.assertRaises(AccessError):
            self._dashboard("health", self.planner)
        for name in ("planner", "warehouse", "shopfloor", "health"):
            self._dashboard(name, self.integrator)
        with self.assertRaises(AccessError):
            self._dashboard("no_such_board", self.integrator)

    def test_menus_follow_the_groups(self):
        menus = {
            "planner": self.env.ref("mes_base.mes_dashboard_planner_menu"),
            "warehouse": self.env.ref("mes_base.mes_dashboard_warehouse_menu"),
            "shopfloor": self.env.ref("mes_base.mes_dashboard_shopfloor_menu"),
            "health": self.env.ref("mes_base.mes_dashboard_health_menu"),
        }

        def visible(user):
            ids = self.env["ir.ui.menu"].with_user(user)._visible_menu_ids()
            return {name for name, menu in menus.items() if menu.id in ids}

        self.assertEqual(visible(self.storekeeper), set())
        self.assertEqual(visible(self.planner), {"planner", "warehouse", "shopfloor"})
        self.assertEqual(visible(self.integrator), {"planner", "warehouse", "shopfloor", "health"})

    def test_other_company_is_not_counted(self):
        other = self.env["res.company"].create({"name": "Other plant"})
        self.backend.user_id.company_ids += other
        backend = self.env["mes.backend"].create(
            {
                "name": "Other MES",
                "code": "OTHER",
                "company_id": other.id,
                "base_url": "http://127.0.0.1:9",
            }
        )
        before = self._tile(self._dashboard("planner"), "errors")["value"]
        self.env["mes.message"].sudo().create(
            {
                "backend_id": backend.id,
                "direction": "inbound",
                "message_type": "material_consumed",
                "state": "error",
                "error_code": "unmapped_product",
                "cause_code": "unmapped_product",
                "cause_value": "ELSEWHERE",
            }
        )
        self.assertEqual(self._tile(self._dashboard("planner"), "errors")["value"], before)
