import json
from datetime import UTC, datetime, timedelta, timezone
from unittest.mock import patch
from zoneinfo import ZoneInfo

from psycopg2.errors import QueryCanceled

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user

from odoo.addons.queue_job.tests.common import trap_jobs

from ..models.mes_message import readable
from .common import at, odoo_at, recent
from .test_events import EventCase


def _brussels(moment):
    """``moment`` on a Brussels clock as Odoo's medium format writes it (9:01:00 AM)."""
    local = moment.astimezone(ZoneInfo("Europe/Brussels"))
    hour = local.hour % 12 or 12
    return rf"{hour}:{local.minute:02d}:{local.second:02d}\s{'AM' if local.hour < 12 else 'PM'}"


class TestOrderStatus(EventCase):
    """What a planner reads on an order: where it stands with the MES, when the shop
    floor started and finished it, and what holds up its reports."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The planner reads times in Brussels (UTC+1 in winter, +2 in summer).
        cls.env.user.tz = "Europe/Brussels"

    def _exported(self, qty=1):
        production = self.env["mrp.production"].create(
            {"product_id": self.pump.id, "product_qty": qty, "bom_id": self.bom.id}
        )
        with trap_jobs() as trap:
            production.action_confirm()
            trap.perform_enqueued_jobs()
        self.assertEqual(production.mes_state, "acknowledged")
        return production

    def _finish(self, production, occurred_at):
        """The MES consumes the order's components and completes it at ``occurred_at``."""
        self._consume(production, self.housing, 1, lot="LOT-A")
        self._consume(production, self.screw, 4)
        self._assert_processed(
            self._send(
                production,
                "order_completed",
                {"quantity": 1, "uom": "Units"},
                occurred_at=occurred_at,
            )
        )

    def test_status_follows_the_export_then_the_shop_floor(self):
        production = self.env["mrp.production"].create(
            {"product_id": self.pump.id, "product_qty": 1, "bom_id": self.bom.id}
        )
        # A draft is nothing to the MES yet.
        self.assertEqual((production.mes_status, production.mes_status_reason), (False, False))
        with trap_jobs() as trap:
            production.action_confirm()
            self.assertEqual(production.mes_status, "pending")
            self.assertRegex(production.mes_status_reason, r"^Waiting for delivery since ")
            trap.perform_enqueued_jobs()
        production.invalidate_recordset(["mes_status", "mes_status_reason"])
        self.assertEqual(
            (production.mes_status, production.mes_status_reason), ("acknowledged", False)
        )

        # The shop floor started it 90 minutes ago and finished it 30 minutes ago (the
        # MES writes its own zone: +01:00); Odoo hears of both now.
        now = datetime.now(UTC).replace(microsecond=0)
        started, finished = now - timedelta(minutes=90), now - timedelta(minutes=30)
        self._assert_processed(
            self._send(production, "order_started", {}, occurred_at=started.isoformat())
        )
        self.assertEqual(production.mes_floor_state, "started")
        self.assertEqual(production.mes_status, "running")
        # The MES's start is the order's start, not the moment Odoo posted it.
        self.assertEqual(production.date_start, started.replace(tzinfo=None))
        # Read in Brussels, never the UTC figure.
        self.assertRegex(production.mes_status_reason, rf"^Started on .*, {_brussels(started)}\.$")

        self._finish(production, finished.astimezone(timezone(timedelta(hours=1))).isoformat())
        self.assertEqual(production.state, "done")
        self.assertEqual(
            (production.mes_floor_state, production.mes_status), ("completed", "completed")
        )
        self.assertEqual(production.date_start, started.replace(tzinfo=None))
        self.assertEqual(production.date_finished, finished.replace(tzinfo=None))
        self.assertRegex(
            production.mes_status_reason, rf"^Finished on .*, {_brussels(finished)}\.$"
        )
        # The stock moves keep the moment Odoo posted them (their valuation's): not
        # re-dated to the MES's times.
        done = production.move_raw_ids | production.move_finished_ids
        self.assertTrue(all(move.date > finished.replace(tzinfo=None) for move in done))

    def test_mes_times_an_order_cannot_have_run_at_are_not_taken(self):
        production = self._exported()
        planned = production.date_start
        # A wrong MES clock: years back, or hours ahead.
        self._send(production, "order_started", {}, occurred_at="2001-01-01T08:00:00Z")
        self.assertEqual(production.mes_status, "running")
        # Odoo's own start stays: the moment it posted the start, not 2001.
        self.assertGreaterEqual(production.date_start, min(planned, production.create_date))
        ahead = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
        self._finish(production, ahead.isoformat())
        self.assertEqual(production.state, "done")
        self.assertLess(production.date_finished, ahead.replace(tzinfo=None))
        self.assertGreaterEqual(production.date_finished, production.date_start)

    def test_status_tells_why_an_order_is_not_delivered(self):
        self.simulator.down = True
        production = self._confirmed()
        message = production.mes_message_ids
        self.assertEqual(production.mes_status, "pending")
        # What queue_job's retry writes on the message (see queue_job.py).
        message.sudo().write(
            {
                "next_attempt_at": odoo_at(1, "12:00:00"),
                "error_code": "retrying",
                "error_text": "MES not reachable: HTTP 503\nsecond line",
            }
        )
        production.invalidate_recordset(["mes_status_reason"])
        self.assertRegex(
            production.mes_status_reason,
            r"^Not delivered yet, next try on .*, (1|2):00:00\sPM: MES not reachable: HTTP 503$",
        )
        message.sudo().write({"state": "failed", "error_text": "MES refused the key"})
        production.sudo().mes_state = "failed"
        self.assertEqual(
            (production.mes_status, production.mes_status_reason),
            ("failed", "MES refused the key"),
        )

    def test_orders_the_mes_never_runs_show_nothing(self):
        # Done before the MES ran it (an order of before the go-live, closed by hand).
        self.backend.export_trigger = "manual"
        production = self._confirmed()
        self.assertEqual(production.mes_status, "not_sent")
        production.action_assign()
        production.qty_producing = 1
        production.move_raw_ids.picked = True
        production.with_context(skip_consumption=True, skip_backorder=True).button_mark_done()
        self.assertEqual((production.state, production.mes_state), ("done", "not_sent"))
        self.assertFalse(production.mes_status)
        # A company without an MES.
        self.backend.active = False
        no_mes = self.env["mrp.production"].create(
            {"product_id": self.pump.id, "product_qty": 1, "bom_id": self.bom.id}
        )
        no_mes.action_confirm()
        self.assertEqual((no_mes.state, no_mes.mes_state), ("confirmed", "not_sent"))
        self.assertFalse(no_mes.mes_status)

    def test_an_order_not_sent_yet_says_when_it_will_be(self):
        self.backend.export_trigger = "manual"
        production = self._confirmed()
        self.assertEqual(production.mes_status, "not_sent")
        self.assertEqual(
            production.mes_status_reason, "Sent to the MES: when a planner releases it."
        )
        self.env.ref("stock.warehouse0").mes_live = False
        production.invalidate_recordset(["mes_status", "mes_status_reason"])
        self.assertEqual(
            production.mes_status_reason, "Its plant or work centers are not live on the MES yet."
        )

    def test_held_order_reads_held(self):
        production = self._exported()
        self._send(production, "order_started", {})
        self._send(production, "order_held", {"reason": "no operator"})
        self.assertEqual(production.mes_status, "held")
        self._send(production, "order_resumed", {})
        self.assertEqual(production.mes_status, "running")

    def test_chatter_notes_read_like_sentences_in_plant_time(self):
        production = self._exported()
        production.user_id.tz = "Europe/Brussels"
        self._send(
            production,
            "order_started",
            {"operator": "J. Peeters"},
            occurred_at=at(0, "08:01:12", "Z"),
        )
        note = production.message_ids.filtered(lambda m: "shop floor" in (m.body or ""))[:1]
        body = note.body
        self.assertIn("The shop floor started the order on ", body)
        self.assertIn("(Europe/Brussels)", body)
        self.assertIn("operator: J. Peeters", body)
        # 08:01:12 UTC is 09:01:12 (winter) or 10:01:12 (summer) in Brussels.
        self.assertRegex(body, r", (9|10):01:12\sAM \(Europe/Brussels\)")
        self.assertNotIn("T08:01:12", body)
        self.assertNotIn("message T-", body)

    def test_banner_names_what_holds_up_the_orders_reports_and_opens_it(self):
        production = self._exported(qty=2)
        self.assertEqual((production.mes_unposted_count, production.mes_unposted_text), (0, False))
        waiting = self._consume(production, self.housing, 1, lot="LOT-LATER")
        behind = self._consume(production, self.screw, 4)
        self.assertEqual((waiting.state, behind.state), ("waiting", "received"))
        production.invalidate_recordset(["mes_unposted_count", "mes_unposted_text"])
        self.assertEqual(production.mes_unposted_count, 2)
        self.assertIn(
            "2 MES report(s) of this order are not posted: ", production.mes_unposted_text
        )
        self.assertIn("waiting", production.mes_unposted_text)
        self.assertIn("LOT-LATER", production.mes_unposted_text)
        action = production.action_view_mes_stopper()
        self.assertEqual((action["res_model"], action["res_id"]), ("mes.message", waiting.id))
        # Fixed in one click: the lot to create, its name and product filled in.
        fix = production.action_fix_mes_stopper()
        self.assertEqual(fix["res_model"], "stock.lot")
        self.assertEqual(
            (fix["context"]["default_name"], fix["context"]["default_product_id"]),
            ("LOT-LATER", self.housing.id),
        )
        self.assertEqual(
            waiting._cause_sentence(waiting.cause_code, waiting.cause_value),
            "Lot LOT-LATER (T-HOUS) is not in Odoo yet",
        )
        # The lot is received: the reports post and the banner is gone.
        lot = self.env["stock.lot"].create({"name": "LOT-LATER", "product_id": self.housing.id})
        self.env["stock.quant"]._update_available_quantity(
            self.housing, self.stock_location, 1, lot_id=lot
        )
        with trap_jobs():
            waiting._process()
        self._assert_processed(waiting, behind)
        production.invalidate_recordset(["mes_unposted_count", "mes_unposted_text"])
        self.assertEqual((production.mes_unposted_count, production.mes_unposted_text), (0, False))
        with self.assertRaisesRegex(UserError, "Nothing holds up"):
            production.action_fix_mes_stopper()

    def _held_up_activities(self, production):
        kind = self.env.ref("mes_base.mail_activity_type_mes_held_up")
        return production.activity_ids.filtered(lambda a: a.activity_type_id == kind)

    def test_the_orders_responsible_gets_an_activity_while_its_reports_are_held_up(self):
        planner = new_test_user(
            self.env, "held-planner", groups="mrp.group_mrp_user,mes_base.group_mes_user"
        )
        production = self._exported(qty=2)
        production.user_id = planner
        self.env.cr.precommit.run()
        # Reports posted in their turn change nothing: no order is even looked at.
        self._assert_processed(self._consume(production, self.screw, 1))
        self.assertNotIn("mes_base.held_up_productions", self.env.cr.precommit.data)
        waiting = self._consume(production, self.housing, 1, lot="LOT-HELD")
        behind = self._send(
            production, "material_consumed", {"product": "MES-Q", "quantity": 3, "uom": "Units"}
        )
        self.assertEqual((waiting.state, behind.state), ("waiting", "received"))
        self.env.cr.precommit.run()
        activity = self._held_up_activities(production)
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, planner)
        self.assertEqual(
            activity.summary, "MES reports held up: Lot LOT-HELD (T-HOUS) is not in Odoo yet"
        )
        self.assertIn(f"{waiting.display_name} waits: ", str(activity.note))
        self.assertIn(
            "Waiting for lot LOT-HELD of [T-HOUS] Housing to be received in Odoo. The "
            "order's banner says what to do.",
            str(activity.note),
        )
        # The lot arrives: the report behind it fails on its own cause; the same activity says so.
        lot = self.env["stock.lot"].create({"name": "LOT-HELD", "product_id": self.housing.id})
        self.env["stock.quant"]._update_available_quantity(
            self.housing, self.stock_location, 1, lot_id=lot
        )
        with trap_jobs():
            waiting._process()
        self.assertEqual((waiting.state, behind.state), ("processed", "error"))
        self.env.cr.precommit.run()
        self.assertEqual(self._held_up_activities(production), activity)
        self.assertEqual(
            activity.summary,
            "MES reports held up: MES product code MES-Q is not mapped to a product",
        )
        # Mapped and retried: nothing holds them up, the activity is done and says why.
        self._map("product", "MES-Q", product_id=self.screw)
        with trap_jobs() as trap:
            behind.action_retry()
            trap.perform_enqueued_jobs()
        self._assert_processed(behind)
        self.env.cr.precommit.run()
        self.assertFalse(self._held_up_activities(production))
        self.assertFalse(activity.exists())
        done = production.message_ids.filtered(lambda m: "nothing holds them up" in str(m.body))
        self.assertEqual(len(done), 1)
        self.assertIn("MES reports held up", str(done.body))

    def test_without_an_mes_responsible_the_mes_people_get_the_activity(self):
        clerk = new_test_user(self.env, "held-clerk", groups="mrp.group_mrp_user")
        lead = new_test_user(
            self.env, "held-lead", groups="mrp.group_mrp_user,mes_base.group_mes_user"
        )
        production = self._exported(qty=1)
        production.user_id = clerk  # not an MES user: he could not fix it
        self.backend.notify_user_ids = False
        self.backend.notify_group_id = False
        self._consume(production, self.housing, 1, lot="LOT-NOBODY")
        self.env.cr.precommit.run()
        self.assertFalse(self._held_up_activities(production))  # nobody to tell
        self.backend.notify_user_ids = lead
        other = self._exported(qty=1)
        other.user_id = clerk
        self._consume(other, self.housing, 1, lot="LOT-SOMEBODY")
        self.env.cr.precommit.run()
        self.assertEqual(self._held_up_activities(other).user_id, lead)

    def _held_planner(self, production, login):
        production.user_id = new_test_user(
            self.env, login, groups="mrp.group_mrp_user,mes_base.group_mes_user"
        )

    def test_a_cancelled_order_is_no_longer_held_up(self):
        production = self._exported(qty=2)
        self._held_planner(production, "held-cancel")
        self.assertEqual(self._consume(production, self.housing, 1, lot="LOT-CXL").state, "waiting")
        self.env.cr.precommit.run()
        activity = self._held_up_activities(production)
        self.assertEqual(len(activity), 1)
        with trap_jobs():
            production.action_cancel()
        self.env.cr.precommit.run()
        self.assertFalse(activity.exists())
        done = production.message_ids.filtered(lambda m: "The order is cancelled." in str(m.body))
        self.assertEqual(len(done), 1)

    def test_a_report_corrected_to_another_order_releases_the_first(self):
        manager = new_test_user(self.env, "held-corrector", groups="mes_base.group_mes_manager")
        first, second = self._exported(qty=2), self._exported(qty=2)
        self._held_planner(first, "held-first")
        message = self._send(
            first, "material_consumed", {"product": "MES-MOVE", "quantity": 1, "uom": "Units"}
        )
        self.assertEqual(message.state, "error")
        self.env.cr.precommit.run()
        self.assertEqual(len(self._held_up_activities(first)), 1)
        # The MES had named the wrong order: the manager corrects the report.
        event = json.loads(message.payload)
        event.update(order_ref=second.name, sequence=1)
        event["data"]["product"] = "T-SCR"
        message.with_user(manager).write({"payload": json.dumps(event)})
        with trap_jobs() as trap:
            message.with_user(manager).action_retry()
            trap.perform_enqueued_jobs()
        self.env.cr.precommit.run()
        self._assert_processed(message)
        self.assertEqual(message.production_id, second)
        self.assertFalse(self._held_up_activities(first))

    def test_what_the_mes_wrote_is_text_in_the_activity(self):
        production = self._exported(qty=1)
        self._held_planner(production, "held-html")
        code = '<a href="https://e.vil/x">Fix</a>'
        message = self._send(
            production, "material_consumed", {"product": code, "quantity": 1, "uom": "Units"}
        )
        self.assertEqual(message.state, "error")
        self.env.cr.precommit.run()
        note = str(self._held_up_activities(production).note)
        self.assertNotIn("<a ", note)
        self.assertIn(f"{message.display_name} failed: data.product: MES code", note)
        self.assertIn("&lt;a href=", note)

    def test_only_mes_users_read_the_status(self):
        production = self._exported()
        planner = new_test_user(
            self.env, "status-planner", groups="mrp.group_mrp_user,mes_base.group_mes_user"
        )
        outsider = new_test_user(self.env, "status-outsider", groups="mrp.group_mrp_user")
        as_planner = production.with_user(planner)
        self.assertEqual(as_planner.mes_status, "acknowledged")
        self.assertEqual(as_planner.mes_unposted_count, 0)
        as_outsider = production.with_user(outsider)
        self.assertEqual(as_outsider.name, production.name)
        for field in ("mes_status", "mes_status_reason", "mes_unposted_text"):
            with self.assertRaises(AccessError):
                as_outsider.read([field])
        with self.assertRaises(AccessError):
            as_outsider.action_view_mes_stopper()


class TestMessageList(EventCase):
    """What a planner reads of each message in the list, without opening it."""

    def test_a_message_says_what_was_reported_and_what_it_waits_for(self):
        production = self._confirmed(qty=2)
        waiting = self._consume(production, self.housing, 1.5, lot="LOT-LATER")
        self.assertEqual(waiting.state, "waiting")
        self.assertEqual(waiting.summary, "1.5 Units [T-HOUS] Housing, lot LOT-LATER")
        self.assertRegex(
            waiting.status_detail,
            r"^Waiting for lot LOT-LATER of \[T-HOUS\] Housing to be received in Odoo\. "
            r"\(next try .+\)$",
        )
        done = self._send(
            production,
            "operation_completed",
            {"operation": 10, "good_quantity": 2, "uom": "Units", "run_minutes": 12.5},
        )
        self.assertEqual(done.state, "received")  # behind the one that waits
        self.assertEqual(done.status_detail, "In line to be posted")
        self.assertEqual(done.summary, "2 Units, operation 10, at Test Assembly, 12.5 min")
        scrap = self._store(
            production,
            "scrap_reported",
            {"product": "T-SCR", "quantity": 3, "uom": "Units", "reason": "DROPPED"},
        )
        self.assertEqual(scrap.summary, "3 Units T-SCR, reason: DROPPED")

    def test_a_posted_message_shows_its_result(self):
        production = self._confirmed(qty=1)
        message = self._consume(production, self.screw, 4)
        self._assert_processed(message)
        self.assertEqual(message.status_detail, message.result_text)
        self.assertEqual(
            message.status_detail, "4.0 Units of [T-SCR] Screw consumed by " + production.name
        )
        self.assertEqual(message.attempt_count, 1)

    def test_attempts_count_every_try_peoples_retries_included(self):
        extra = self.env["product.product"].create(
            {"name": "Glue", "default_code": "T-GLUE2", "is_storable": True}
        )
        production = self._confirmed(qty=1)
        message = self._consume(production, extra, 1)
        self.assertEqual((message.state, message.attempt_count), ("error", 1))
        # The cause is stored with its parts, as the dashboards and error causes group it.
        self.env.flush_all()
        self.env.cr.execute("SELECT error_cause FROM mes_message WHERE id = %s", [message.id])
        self.assertEqual(self.env.cr.fetchone()[0], "component_not_in_order: T-GLUE2")
        self.assertIn("T-GLUE2", message.status_detail)
        for tries in (2, 3):
            with trap_jobs():
                answer = message.action_retry()
            # Tried at once: the planner reads how it went.
            self.assertEqual((message.state, message.attempt_count), ("error", tries))
            self.assertEqual(answer["params"]["type"], "warning")
            self.assertTrue(answer["params"]["sticky"])
            self.assertTrue(
                answer["params"]["message"].startswith("Tried again: error: data.product: "),
                answer["params"]["message"],
            )
        # Grouped, attempts are not added up: the most any message of the group took.
        other = self._consume(self._confirmed(qty=1), extra, 2)
        self.assertEqual((other.state, other.attempt_count), ("error", 1))
        groups = self.env["mes.message"]._read_group(
            [("id", "in", (message | other).ids)], ["message_type"], ["attempt_count:max"]
        )
        self.assertEqual(groups, [("material_consumed", 3)])
        self.assertEqual(self.env["mes.message"]._fields["attempt_count"].aggregator, "max")

    def test_an_orders_messages_open_in_the_mes_order(self):
        production = self._confirmed(qty=1)
        action = production.action_view_mes_messages()
        view = self.env.ref("mes_base.mes_message_view_list_order")
        self.assertEqual(action["views"][0], (view.id, "list"))
        self.assertEqual(action["name"], f"MES messages of {production.name}")
        arch = self.env["mes.message"].get_view(view.id, "list")["arch"]
        self.assertIn('default_order="direction desc, sequence, occurred_at, id"', arch)
        main = self.env.ref("mes_base.mes_message_action")
        self.assertEqual(main.view_mode, "list,form,pivot,graph")


class TestMessageForm(EventCase):
    """The message form: a payload laid out to be read and corrected, a refused event
    under its order, and a pending export sent now."""

    def test_payload_is_laid_out_and_corrected_through_the_form(self):
        production = self._confirmed(qty=2)
        message = self._consume(production, self.screw, 8, uom="Boxes")
        self.assertEqual(message.state, "error")
        self.assertNotIn("\n", message.payload)  # as the MES sent it: one line
        self.assertEqual(message.payload_view, json.dumps(json.loads(message.payload), indent=2))
        self.assertIn('\n  "data": {\n    "product": "T-SCR",', message.payload_view)
        manager = new_test_user(self.env, "mes_form_manager", groups="mes_base.group_mes_manager")
        edited = message.payload_view.replace('"Boxes"', '"Units"')
        message.with_user(manager).write({"payload_view": edited})
        # What the manager saved is the payload; the MES's own is kept beside it.
        self.assertEqual(message.payload, edited)
        self.assertIn('"uom": "Boxes"', message.payload_original_view)
        self.assertEqual(message.reported_uom, "Units")
        with self.assertRaisesRegex(ValidationError, "not JSON"):
            message.with_user(manager).write({"payload_view": "{not json"})
        planner = new_test_user(self.env, "mes_form_planner", groups="mes_base.group_mes_user")
        with self.assertRaisesRegex(UserError, "Only MES managers"):
            message.with_user(planner).write({"payload_view": edited})

    def test_unreadable_payloads_are_shown_as_they_came(self):
        message = self.env["mes.message"]
        self.assertEqual(readable("{broken", "json"), "{broken")
        self.assertEqual(readable("<a><b>1</b></a>", "xml"), "<a>\n  <b>1</b>\n</a>\n")
        entity = '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'
        self.assertNotIn("root:", readable(entity, "xml"))
        huge = '{"a": "' + "x" * 1_000_001 + '"}'
        self.assertIs(readable(huge, "json"), huge)
        # Hostile bodies the intake keeps as they came: shown as they came.
        deep = "[" * 20000 + "]" * 20000
        self.assertIs(readable(deep, "json"), deep)
        nested = "[" * 60 + ",".join(["[1]"] * 20000) + "]" * 60
        self.assertIs(readable(nested, "json"), nested, "laid out it would be 60 times longer")
        self.assertFalse(message.browse().payload_view)

    def test_a_refused_event_shows_under_its_order(self):
        production = self._confirmed(qty=1)
        event = {
            "schema": "mes.event/1",
            "event_id": "REFUSED-1",
            "event_type": "material_consumed",
            "order_ref": production.name,
            "sequence": 1,
            "occurred_at": recent(),
            "data": {"product": "T-SCR", "quantity": -4, "uom": "Units"},
        }
        with trap_jobs():
            answer = self.env["mes.message"]._intake(self.backend, json.dumps(event), event)
        self.assertEqual(answer["status"], "rejected")
        message = self.env["mes.message"].browse(answer["message_id"])
        self.assertEqual(message.production_id, production)
        self.assertIn(message, production.mes_message_ids)
        # Dialogs say what they are about.
        self.assertEqual(
            message.action_open_cancel_wizard()["name"],
            f"Cancel Material consumed {production.name} with a reason",
        )
        # An order of another company is not this MES's: not linked.
        other_company = self.env["res.company"].create({"name": "Other plant"})
        foreign = (
            self.env["mrp.production"]
            .with_company(other_company)
            .create({"product_id": self.pump.id, "product_qty": 1})
        )
        with trap_jobs():
            answer = self.env["mes.message"]._intake(
                self.backend,
                None,
                dict(event, event_id="REFUSED-2", order_ref=foreign.name),
            )
        self.assertEqual(answer["status"], "rejected")
        self.assertFalse(self.env["mes.message"].browse(answer["message_id"]).production_id)

    def test_a_retry_that_fails_unexpectedly_is_kept_for_the_queue(self):
        extra = self.env["product.product"].create(
            {"name": "Glue", "default_code": "T-GLUE3", "is_storable": True}
        )
        message = self._consume(self._confirmed(qty=1), extra, 1)
        self.assertEqual(message.state, "error")
        self.backend.accept_extra_components = True
        with (
            patch.object(
                type(self.env["mes.event.processor"]),
                "_process_material_consumed",
                side_effect=QueryCanceled("canceling statement due to statement timeout"),
            ),
            trap_jobs() as trap,
        ):
            answer = message.action_retry()
            trap.assert_jobs_count(1, only=self.env["mes.message"]._run_lane)
        self.assertEqual(
            answer["params"]["message"],
            "Not tried at once (QueryCanceled); the queue tries it again shortly.",
        )
        # The retry stands: received again, its job queued, the person's note kept.
        self.assertEqual(message.state, "received")
        self.assertIn("Retry requested by", message.message_ids[0].body)

    def test_a_pending_export_is_sent_now_and_says_how_it_went(self):
        self.simulator.down = True
        production = self.env["mrp.production"].create(
            {"product_id": self.pump.id, "product_qty": 1, "bom_id": self.bom.id}
        )
        with trap_jobs():
            production.action_confirm()
        export = production.mes_message_ids
        self.assertEqual(export.state, "pending")
        planner = new_test_user(self.env, "mes_form_sender", groups="mes_base.group_mes_user")
        with trap_jobs():
            answer = export.with_user(planner).action_retry()
        self.assertEqual(export.state, "pending")
        self.assertRegex(
            answer["params"]["message"], r"^Tried again: .*\. The queue tries it again shortly\.$"
        )
        self.simulator.down = False
        with trap_jobs():
            answer = export.with_user(planner).action_retry()
        self.assertEqual((export.state, production.mes_state), ("acknowledged", "acknowledged"))
        self.assertEqual(answer["params"]["type"], "success")
        self.assertTrue(answer["params"]["message"].startswith("Tried again: acknowledged"))
        self.assertEqual(self.simulator.store.order(production.name)["deliveries"], 1)

    def test_causes_read_as_sentences(self):
        messages = self.env["mes.message"]
        self.assertEqual(messages._cause_sentence(False, False), "No cause recorded")
        self.assertEqual(messages._cause_sentence("something_new", "X-1"), "something_new: X-1")
        self.assertEqual(messages._cause_sentence("something_new", False), "something_new")
        self.assertEqual(
            messages._cause_sentence("mes_http_422", False), "The MES refused it (HTTP 422)"
        )
        self.assertEqual(
            messages._cause_sentence("unmapped_workcenter", "ASM9"),
            "MES resource ASM9 is not mapped to a work center",
        )
