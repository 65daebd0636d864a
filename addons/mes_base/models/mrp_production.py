import json
import logging
from datetime import UTC

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import format_datetime

from mes_connector import MessageValidationError, bod, order_idempotency_key, validate_order
from mes_connector.b2mml import order_to_production_schedule
from mes_connector.messages import (
    Component,
    Operation,
    OrderExport,
    Product,
)

from ..locking import try_lock
from .mes_backend import is_mes_user_of
from .mes_message import STOPPING_STATES, UNPOSTED_STATES, first_line

_logger = logging.getLogger(__name__)

# Fields whose change after export changes what the MES must do.
MES_RELEVANT_FIELDS = {
    "product_id",
    "product_qty",
    "product_uom_id",
    "date_start",
    "date_finished",
    "priority",
    "origin",
    "bom_id",
    "move_raw_ids",
    "workorder_ids",
}
EXPORTED_STATES = ("pending", "sent", "acknowledged", "failed", "rejected")
# Where the order stands with the MES, as a planner reads it: its export, then once the
# MES has it, what the shop floor reported of its run.
MES_STATUS = [
    ("not_sent", "Not sent yet"),
    ("pending", "Being sent"),
    ("sent", "Sent, not confirmed"),
    ("acknowledged", "Taken by the MES"),
    ("running", "Running on the shop floor"),
    ("held", "Held on the shop floor"),
    ("completed", "Finished on the shop floor"),
    ("rejected", "Refused by the MES"),
    ("failed", "Not delivered"),
    ("cancelled", "Cancelled on the MES"),
]
OPEN_ORDER_STATES = ("confirmed", "progress", "to_close")
# Inbound messages of an order that are not posted (yet).
# In the context of what applies an MES report: its effects on orders are not changes to
# send back. An object, not a value: an RPC caller cannot put it in a context.
APPLYING_MES_REPORT = object()


def _utc(value):
    return value.replace(tzinfo=UTC) if value else None


class MrpProduction(models.Model):
    _inherit = "mrp.production"

    mes_backend_id = fields.Many2one("mes.backend", "MES", readonly=True, copy=False, index=True)
    mes_state = fields.Selection(
        [
            ("not_sent", "Not sent"),
            ("pending", "Pending"),
            ("sent", "Sent"),
            ("acknowledged", "Acknowledged"),
            ("rejected", "Rejected"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        "MES state",
        default="not_sent",
        copy=False,
        readonly=True,
        index=True,
        tracking=True,
    )
    mes_revision = fields.Integer("MES revision", readonly=True, copy=False)
    mes_output_qty = fields.Float(
        "Output reported by the MES",
        digits="Product Unit of Measure",
        readonly=True,
        copy=False,
        help="Good quantity of the product the MES reported by output events, in the order's "
        "unit, not yet posted.",
    )
    mes_document = fields.Text(
        "Order as the MES holds it",
        readonly=True,
        copy=False,
        groups="mes_base.group_mes_user",
        help="The last revision written for the MES; a change is sent when the order differs.",
    )
    mes_export_error = fields.Char(
        "MES export problem",
        readonly=True,
        copy=False,
        help="Why the order could not be sent when it entered the planning horizon; it is "
        "tried again at each run.",
    )
    mes_adopted = fields.Boolean(
        "Adopted from the MES",
        readonly=True,
        copy=False,
        help="The order existed in the MES at cutover and was bound to it without being sent.",
    )
    mes_hold = fields.Boolean(
        "Held on the shop floor", readonly=True, copy=False, help="The MES reported the order held."
    )
    mes_order_id = fields.Char("MES order id", readonly=True, copy=False, index=True)
    mes_order_ref = fields.Char(
        "MES order reference",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The reference the MES knows the order by: its name when it was first sent. The "
        "orders split from it as the MES reports (a unit of serial-numbered output, the rest "
        "after a shift's partial confirmation) keep it: to the MES they are one order.",
    )
    mes_held_up = fields.Boolean(
        "MES reports held up",
        readonly=True,
        copy=False,
        groups="mes_base.group_mes_user",
        help="Something held up this order's MES reports and its people were told: they are "
        "told again when all of them are posted.",
    )
    mes_rebuild = fields.Boolean(
        "Rebuild after MES rework",
        readonly=True,
        copy=False,
        help="Odoo's record of a unit the MES reworked (unbuilt and made again): not an "
        "order for the MES, never sent to it.",
    )
    mes_closed_by_part = fields.Boolean(
        "Closed by a partial confirmation",
        readonly=True,
        copy=False,
        help="A partial confirmation of the MES posted the whole order: the MES's final "
        "confirmation has nothing more to post.",
    )
    mes_floor_state = fields.Selection(
        [("started", "Started"), ("completed", "Finished")],
        "On the shop floor",
        readonly=True,
        copy=False,
        help="What the MES last reported of the order's run.",
    )
    mes_status = fields.Selection(
        MES_STATUS,
        "MES status",
        compute="_compute_mes_status",
        groups="mes_base.group_mes_user",
        help="Where the order stands with the MES: sent, taken, running, finished, or why not.",
    )
    mes_status_reason = fields.Char(
        "MES status detail",
        compute="_compute_mes_status_reason",
        groups="mes_base.group_mes_user",
    )
    mes_unposted_count = fields.Integer(
        "MES reports not posted", compute="_compute_mes_unposted", groups="mes_base.group_mes_user"
    )
    mes_unposted_text = fields.Char(
        "Why MES reports are not posted",
        compute="_compute_mes_unposted",
        groups="mes_base.group_mes_user",
    )
    mes_message_ids = fields.One2many("mes.message", "production_id", "MES messages")
    mes_message_count = fields.Integer(compute="_compute_mes_message_count")

    @api.depends("mes_message_ids")
    def _compute_mes_message_count(self):
        counts = dict(
            self.env["mes.message"]._read_group(
                [("production_id", "in", self.ids)], ["production_id"], ["__count"]
            )
        )
        for production in self:
            production.mes_message_count = counts.get(production, 0)

    @api.depends("mes_state", "mes_floor_state", "mes_hold", "state", "company_id")
    def _compute_mes_status(self):
        backends = {}
        for production in self:
            status = production.mes_state
            if status == "not_sent":
                company = production.company_id
                if company not in backends:
                    backends[company] = production._mes_backend()
                if not backends[company] or production.state not in OPEN_ORDER_STATES:
                    # Not an order of the MES (another plant, or closed before it ran
                    # here): nothing to say.
                    status = False
            elif status == "acknowledged":
                if production.mes_hold:
                    status = "held"
                elif production.mes_floor_state == "completed":
                    status = "completed"
                elif production.mes_floor_state == "started":
                    status = "running"
            production.mes_status = status

    # Apart from the status (lists show it): reads the latest revision, forms only.
    @api.depends("mes_status", "mes_export_error", "date_start", "date_finished")
    @api.depends_context("tz")
    def _compute_mes_status_reason(self):
        for production in self:
            status, reason = production.mes_status, False
            if status == "not_sent":
                backend = production._mes_backend()
                if production.mes_export_error:
                    reason = production.mes_export_error
                elif not production._mes_is_live():
                    reason = self.env._("Its plant or work centers are not live on the MES yet.")
                else:
                    trigger = dict(
                        backend._fields["export_trigger"]._description_selection(self.env)
                    )[backend.export_trigger]
                    reason = self.env._("Sent to the MES: %s.", trigger.lower())
            elif status in ("pending", "failed", "rejected", "sent"):
                reason = production._mes_delivery_reason()
            elif status == "completed":
                reason = self.env._(
                    "Finished on %s.", format_datetime(self.env, production.date_finished)
                )
            elif status == "running":
                reason = self.env._(
                    "Started on %s.", format_datetime(self.env, production.date_start)
                )
            production.mes_status_reason = reason

    def _mes_delivery_reason(self):
        """Why the latest revision is where it is, from its message."""
        message = self._mes_latest_revision()
        if not message:
            return False
        missing = message.needs_master_data_ids._missing()
        if message.state == "pending" and missing:
            return missing._waiting_text()
        if message.state == "pending":
            if message.next_attempt_at:
                return self.env._(
                    "Not delivered yet, next try on %(when)s: %(why)s",
                    when=format_datetime(self.env, message.next_attempt_at),
                    why=first_line(message.error_text) or "-",
                )
            return self.env._(
                "Waiting for delivery since %s.", format_datetime(self.env, message.create_date)
            )
        if message.state == "sent":
            return self.env._(
                "Delivered on %s; the MES has not confirmed it yet.",
                format_datetime(self.env, message.write_date),
            )
        return first_line(message.error_text) or False

    @api.depends("mes_message_ids.state")
    @api.depends_context("tz")
    def _compute_mes_unposted(self):
        messages = self.env["mes.message"].sudo()
        open_counts = dict(
            messages._read_group(
                [
                    ("production_id", "in", self.ids),
                    ("direction", "=", "inbound"),
                    ("state", "in", UNPOSTED_STATES),
                ],
                ["production_id"],
                ["__count"],
            )
        )
        for production in self:
            count = open_counts.get(production, 0)
            stopper = production._mes_stopper() if count else messages
            production.mes_unposted_count = count if stopper else 0
            production.mes_unposted_text = bool(stopper) and self.env._(
                "%(count)s MES report(s) of this order are not posted: %(first)s %(state)s since "
                "%(since)s: %(why)s",
                count=count,
                first=stopper.display_name,
                state=dict(stopper._fields["state"]._description_selection(self.env))[
                    stopper.state
                ].lower(),
                since=format_datetime(self.env, stopper.write_date),
                why=first_line(stopper.error_text) or "-",
            )

    def _mes_stopper(self):
        """The first inbound message of this order that waits or failed: what holds up
        the order's reports (received ones behind it are simply next in line)."""
        return self._mes_first_message(
            "inbound", ("state", "in", STOPPING_STATES), "sequence, occurred_at, id"
        )

    def _mes_first_message(self, direction, state_condition, order):
        """The first message of this order in ``direction`` meeting ``state_condition``,
        in ``order`` (read as the integration boundary: any MRP user's order)."""
        self.ensure_one()
        return (
            self.env["mes.message"]
            .sudo()
            .search(
                [("production_id", "=", self.id), ("direction", "=", direction), state_condition],
                order=order,
                limit=1,
            )
        )

    def _mes_stopper_for_user(self):
        """What holds up this order's reports, as this user may read it (or nothing)."""
        self.ensure_one()
        self.env["mes.message"].check_access("read")
        self.check_access("read")
        stopper = self._mes_stopper().with_env(self.env)
        stopper.check_access("read")
        return stopper

    def action_view_mes_stopper(self):
        """Open what holds up this order's MES reports, to fix or retry it."""
        stopper = self._mes_stopper_for_user()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mes.message",
            "res_id": stopper.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "name": stopper.display_name,
        }

    def action_fix_mes_stopper(self):
        """Open the screen that fixes what holds up this order's MES reports."""
        stopper = self._mes_stopper_for_user()
        if not stopper:
            raise UserError(self.env._("Nothing holds up the MES reports of %s.", self.name))
        return stopper.action_fix()

    # An activity while the order's reports are held up

    def _mes_check_held_up(self):
        """Note orders whose MES reports stopped or went on; their activity is put right
        once, when the change is flushed (at the end of the report's savepoint, or at
        commit)."""
        if not self:
            return
        pending = self.env.cr.precommit.data.setdefault("mes_base.held_up_productions", set())
        if not pending:
            self.env.cr.precommit.add(self.sudo()._mes_held_up_at_commit)
        pending.update(self.ids)

    def _mes_held_up_at_commit(self):
        ids = self.env.cr.precommit.data.pop("mes_base.held_up_productions", set())
        productions = self.browse(ids).exists()
        try:
            with self.env.cr.savepoint():
                productions._mes_sync_held_up_activity()
        except Exception:
            # Telling people must never cost the reports it tells about: what was posted
            # is committed all the same; the next change of these orders tries again.
            _logger.exception("Could not update the MES activities of orders %s", ids)

    def _mes_sync_held_up_activity(self):
        """One activity per responsible person while something holds up the order's MES
        reports, saying what and how to fix it; marked done when nothing does any more."""
        activity_type = self.env.ref("mes_base.mail_activity_type_mes_held_up", False)
        if not activity_type:
            return
        for production in self:
            stopper = production._mes_stopper()
            if production.state == "cancel":
                stopper = stopper.browse()
            current = production.activity_ids.filtered(
                lambda activity: activity.activity_type_id == activity_type
            )
            if not stopper:
                if production.state != "cancel" and stopper.search_count(
                    [
                        ("production_id", "=", production.id),
                        ("direction", "=", "inbound"),
                        ("state", "in", UNPOSTED_STATES),
                    ],
                    limit=1,
                ):
                    continue  # on their way, nothing stops them: done when they are posted
                current.action_feedback(
                    feedback=self.env._("Its MES reports are posted: nothing holds them up.")
                    if production.state != "cancel"
                    else self.env._("The order is cancelled.")
                )
                if production.mes_held_up:
                    production.mes_held_up = False
                continue
            if not production.mes_held_up:
                production.mes_held_up = True
            summary = self.env._(
                "MES reports held up: %s",
                stopper._cause_sentence(stopper.cause_code, stopper.cause_value),
            )
            # What the MES wrote is text, never markup (nor a link).
            note = Markup("<p>%s</p>") % (
                self.env._(
                    "%(report)s waits: %(why)s. The order's banner says what to do.",
                    report=stopper.display_name,
                    why=(first_line(stopper.error_text) or "-").rstrip("."),
                )
                if stopper.state == "waiting"
                else self.env._(
                    "%(report)s failed: %(why)s. The order's banner says what to do.",
                    report=stopper.display_name,
                    why=(first_line(stopper.error_text) or "-").rstrip("."),
                )
            )
            if current:
                # Still held up, perhaps by something else now: say what.
                current.filtered(
                    lambda activity, summary=summary: activity.summary != summary
                ).write({"summary": summary, "note": note})
                continue
            for user in production._mes_held_up_users():
                # Its e-mail goes out with the mail queue, not from the job posting reports.
                production.with_context(mail_notify_force_send=False).activity_schedule(
                    activity_type_id=activity_type.id,
                    summary=summary,
                    note=note,
                    user_id=user.id,
                )

    def _mes_held_up_users(self):
        """Whom to tell: the order's responsible if he works with the MES, else the MES's
        responsible people."""
        self.ensure_one()
        if self.user_id and is_mes_user_of(self.user_id, self.company_id):
            return self.user_id
        backend = self.mes_backend_id or self._mes_backend()
        return backend._responsible_users(self.company_id)

    def action_confirm(self):
        res = super().action_confirm()
        self.filtered(lambda p: p._mes_backend().export_trigger == "confirm")._mes_export()
        return res

    def action_mes_release(self):
        """Release orders to the MES now, whatever the backend's trigger (one or many)."""
        if not self.env.su and not self.env.user.has_group("mes_base.group_mes_user"):
            raise AccessError(self.env._("Only MES users may release orders to the MES."))
        self.check_access("write")
        not_ready = self.filtered(lambda p: p.state not in ("confirmed", "progress"))
        if not_ready:
            raise UserError(
                self.env._(
                    "Only confirmed orders can be released to the MES: %s",
                    ", ".join(not_ready.mapped("name")),
                )
            )
        no_backend = self.filtered(lambda p: not p._mes_backend())
        if no_backend:
            raise UserError(
                self.env._(
                    "No MES runs %s: create an MES backend for its company first.",
                    ", ".join(no_backend.mapped("name")),
                )
            )
        not_live = self.filtered(lambda p: not p._mes_is_live())
        if not_live:
            raise UserError(
                self.env._(
                    "%s: the plant or every work center of the routing is not live on the MES "
                    "yet (Go-live on the warehouse and work centers).",
                    ", ".join(not_live.mapped("name")),
                )
            )
        sent = self._mes_export()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("%s order(s) released to the MES.", len(sent)),
            },
        }

    def _mes_backend(self):
        """The backend of this order, read as the integration boundary (any MRP user may
        confirm or cancel an order that goes to the MES)."""
        self.ensure_one()
        return self.sudo().mes_backend_id or self.env["mes.backend"].sudo()._for_production(self)

    def _mes_is_live(self):
        """Phased go-live: the order's plant is live, and so is one of its work centers."""
        self.ensure_one()
        if not self.picking_type_id.warehouse_id.mes_live:
            return False
        workcenters = self.workorder_ids.workcenter_id
        return not workcenters or any(workcenters.mapped("mes_live"))

    def action_view_mes_messages(self):
        self.ensure_one()
        self.env["mes.message"].check_access("read")
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("mes_base.mes_message_action")
        action["domain"] = [("production_id", "=", self.id)]
        # In the MES's order (its sequence), as the shop floor ran the order.
        action["views"] = [
            (self.env.ref("mes_base.mes_message_view_list_order").id, "list"),
            (False, "form"),
            (False, "pivot"),
            (False, "graph"),
        ]
        action["name"] = self.env._("MES messages of %s", self.name)
        action["context"] = {"search_default_group_by_direction": 0}
        return action

    def write(self, vals):
        res = super().write(vals)
        if MES_RELEVANT_FIELDS & set(vals):
            self._mes_schedule_change()
        return res

    def _action_cancel(self):
        # _action_cancel, not action_cancel: merging orders and cancelling moves cancel
        # orders through it too, and the MES must hear of every cancellation.
        exported = self.filtered(
            lambda p: p.mes_state in EXPORTED_STATES and not p._mes_cancel_on_its_way()
        )
        res = super()._action_cancel()
        cancelled = exported.filtered(lambda p: p.state == "cancel")
        # Checked again: cancelling moves cancels the order through here a second time.
        (cancelled - cancelled._mes_withdraw_unsent()).filtered(
            lambda p: p.mes_state in EXPORTED_STATES and not p._mes_cancel_on_its_way()
        )._mes_send_revision("cancel")
        # Nobody has to fix the reports of a cancelled order: its activity is done.
        self.sudo().filtered("mes_held_up")._mes_check_held_up()
        return res

    def _mes_withdraw_unsent(self):
        """Orders cancelled while every revision of theirs still waits for its master
        data: the MES never got them, so nothing is sent; their revisions are withdrawn
        (a cancellation behind them would wait as long). Returns those orders."""
        withdrawn = self.browse()
        # Read as the integration boundary: any MRP user may cancel an order.
        for production in self.sudo():
            revisions = production.mes_message_ids.filtered(
                lambda m: m.direction == "outbound" and m.state != "cancelled"
            )
            if (
                not revisions
                or any(m.state != "pending" for m in revisions)
                or not revisions.needs_master_data_ids._missing()
                # Its delivery job holds the order: on its way to the MES right now.
                or not try_lock(production)
            ):
                continue
            revisions.write(
                {
                    "state": "cancelled",
                    "cancel_reason": self.env._(
                        "%s was cancelled before the MES got it (it waited for its master "
                        "data): nothing was sent.",
                        production.name,
                    ),
                    "next_attempt_at": False,
                    "processed_at": fields.Datetime.now(),
                }
            )
            production.write({"mes_state": "not_sent", "mes_revision": 0, "mes_document": False})
            withdrawn |= self.browse(production.id)
        return withdrawn

    def _mes_export(self):
        """Write each order's first revision in this transaction and queue its delivery."""
        to_send = self.filtered(
            lambda p: (
                p.state not in ("draft", "cancel")
                and p.mes_state == "not_sent"
                and not p.mes_rebuild
                and p._mes_is_live()
            )
        )
        return to_send._mes_send_revision("create")

    def _mes_ref(self):
        """The reference the MES knows this order by."""
        self.ensure_one()
        return self.mes_order_ref or self.name

    def _mes_family(self):
        """The orders the MES runs as one: this one and those split from the same MES
        order (units of serial-numbered output, rests of partial confirmations)."""
        self.ensure_one()
        if not self.mes_order_ref or not self.mes_backend_id:
            return self
        return (
            self.sudo()
            .search(
                [
                    ("mes_order_ref", "=", self.mes_order_ref),
                    ("mes_backend_id", "=", self.mes_backend_id.id),
                    ("company_id", "=", self.company_id.id),
                ],
                order="id",
            )
            .with_env(self.env)
        )

    def _mes_open_member(self):
        """The order of the family the MES's next report posts on: the open one."""
        if len(self) != 1 or self.state not in ("done", "cancel") or not self.mes_order_ref:
            return self
        return self._mes_family().filtered(lambda p: p.state not in ("done", "cancel"))[-1:] or self

    def _mes_family_quantity(self):
        """The quantity of the MES order: this order's and that of the orders split from it
        (what they produced), not the cancelled ones."""
        self.ensure_one()
        others = (self._mes_family() - self).filtered(lambda p: p.state != "cancel")
        return self.product_qty + sum(
            p.product_uom_id._compute_quantity(p.product_qty, self.product_uom_id) for p in others
        )

    def _get_backorder_mo_vals(self):
        vals = super()._get_backorder_mo_vals()
        if self.env.context.get("mes_continue_order") and self.mes_backend_id:
            # The rest of an order the MES goes on running: to the MES it is the same order.
            this = self.sudo()
            vals.update(
                {
                    "mes_backend_id": this.mes_backend_id.id,
                    "mes_order_ref": this._mes_ref(),
                    "mes_order_id": this.mes_order_id,
                    "mes_state": this.mes_state,
                    "mes_revision": this.mes_revision,
                    "mes_document": this.mes_document,
                    "mes_adopted": this.mes_adopted,
                    "mes_hold": this.mes_hold,
                    "mes_floor_state": this.mes_floor_state,
                }
            )
        return vals

    def _mes_order_id_holder(self, mes_order_id, backend):
        """Another live order of ``backend`` that the MES runs as ``mes_order_id`` (not one
        split from the same MES order: to the MES they are one)."""
        refs = [ref for ref in self.mapped("mes_order_ref") if ref]
        return (
            self.sudo()
            .with_context(active_test=False)
            .search(
                [
                    ("mes_order_id", "=", mes_order_id),
                    ("mes_backend_id", "=", backend.id),
                    ("id", "not in", self.ids),
                    ("mes_order_ref", "not in", refs),
                    ("state", "!=", "cancel"),
                ],
                limit=1,
            )
        )

    def _mes_adopt(self, mes_order_id):
        """Cutover: the MES already runs this order; bind it to the MES's id, send nothing.
        An order the MES took without saying its id is bound to it the same way."""
        self.ensure_one()
        backend = self._mes_backend()
        if not backend:
            raise UserError(self.env._("No MES backend for the company of %s.", self.name))
        holder = self._mes_order_id_holder(mes_order_id, backend)
        if holder:
            raise UserError(
                self.env._(
                    "MES order %(id)s is already %(order)s: one MES order is one order of Odoo.",
                    id=mes_order_id,
                    order=holder.name,
                )
            )
        if self.mes_state == "sent" and not self.mes_order_id:
            self.sudo().write({"mes_order_id": mes_order_id, "mes_state": "acknowledged"})
            self._message_log(
                body=self.env._(
                    "Bound to MES order %s: the MES took this order without saying its id.",
                    mes_order_id,
                )
            )
            return
        if self.mes_state != "not_sent":
            raise UserError(
                self.env._(
                    "%(order)s is already known to the MES (%(state)s).",
                    order=self.name,
                    state=self.mes_state,
                )
            )
        self.sudo().write(
            {
                "mes_backend_id": backend.id,
                "mes_order_id": mes_order_id,
                "mes_order_ref": self.name,
                "mes_state": "acknowledged",
                "mes_revision": 1,
                "mes_adopted": True,
                # What the MES holds, as far as Odoo knows: later changes are sent against it.
                "mes_document": json.dumps(self._mes_order_document(1, "create")),
            }
        )
        self._message_log(
            body=self.env._(
                "Adopted at cutover: the MES already runs this order as %s; it was not sent.",
                mes_order_id,
            )
        )

    def _mes_schedule_change(self):
        """Note exported orders whose MES document may have changed; checked once, at commit.

        Many writes make one change (the order form saves quantity, dates and components
        in several writes): comparing the documents once in precommit sends one revision.
        """
        if self.env.context.get("mes_report") is APPLYING_MES_REPORT:
            return  # what the MES itself reported is not a change to send back
        exported = self.filtered(
            lambda p: p.mes_state in EXPORTED_STATES and p.state not in ("done", "cancel")
        )
        if not exported:
            return
        pending = self.env.cr.precommit.data.setdefault("mes_base.changed_productions", set())
        if not pending:
            self.env.cr.precommit.add(self.sudo()._mes_send_changes)
        pending.update(exported.ids)

    def _mes_send_changes(self):
        ids = self.env.cr.precommit.data.pop("mes_base.changed_productions", set())
        productions = (
            self.browse(ids)
            .exists()
            .filtered(
                lambda p: p.mes_state in EXPORTED_STATES and p.state not in ("done", "cancel")
            )
        )
        changed = productions.filtered(lambda p: p._mes_document_changed())
        changed._mes_send_revision("change")

    def _mes_document_changed(self):
        """Whether the order, as the MES would receive it, differs from what it holds."""
        self.ensure_one()
        if not self.mes_document:
            return False
        ignored = ("revision", "action")
        before = {k: v for k, v in json.loads(self.mes_document).items() if k not in ignored}
        now = {k: v for k, v in self._mes_order_document(1, "change").items() if k not in ignored}
        return before != now

    def _mes_cancel_on_its_way(self):
        """A cancellation revision is already written (cancelling calls back here)."""
        self.ensure_one()
        return self._mes_latest_revision().order_action == "cancel"

    def _mes_latest_revision(self):
        """The latest outbound revision still standing (not withdrawn by a planner)."""
        return self._mes_first_message("outbound", ("state", "!=", "cancelled"), "revision desc")

    def _mes_revision_withdrawn(self, message):
        """A planner cancelled an outbound revision before the MES took it.

        When it is the order's latest revision, the order goes back to the revision the MES
        holds, so the next one takes its number: a strict MES accepts revisions only one
        after the other. The order's MES state becomes that of the latest revision standing.
        """
        self.ensure_one()
        standing = self._mes_latest_revision()
        vals = {}
        if message.revision == self.mes_revision:
            vals["mes_revision"] = standing.revision
            vals["mes_document"] = standing._order_document() if standing else False
        if not standing:
            vals["mes_state"] = "not_sent"
        elif standing.state == "acknowledged" and standing.order_action == "cancel":
            vals["mes_state"] = "cancelled"
        else:
            vals["mes_state"] = standing.state
        self.sudo().write(vals)

    def _mes_send_revision(self, action):
        """One outbound message per order: its next revision, delivered after the earlier ones."""
        messages = self.env["mes.message"]
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        for production in self:
            backend = production._mes_backend()
            if not backend:
                continue
            revision = production.mes_revision + 1
            document = production._mes_order_document(revision, action)
            # First use: what the order names goes to the MES first, and the order waits
            # for it (not a cancellation: the MES has what it cancels).
            needs = (
                production._mes_master_data(backend)
                if backend.master_data_enabled and action != "cancel"
                else messages.env["mes.master.data"]
            )
            reference = production._mes_ref()
            key = order_idempotency_key(f"{uuid}/{backend.code}", reference, revision)
            if backend.payload_format == "b2mml":
                payload = order_to_production_schedule(document)
                if backend.b2mml_transaction:
                    # A new order is to process; a later revision changes it (its request
                    # state says when it cancels it). The BODID is the revision's key: the
                    # MES tells a resent revision from a new one.
                    payload = bod.wrap(
                        payload,
                        "Process" if action == "create" else "Change",
                        sender=backend.b2mml_logical_id,
                        bod_id=key,
                        created=fields.Datetime.now().replace(microsecond=0, tzinfo=UTC),
                    )
                payload, payload_format = payload.decode(), "xml"
            else:
                payload, payload_format = json.dumps(document, indent=2, ensure_ascii=False), "json"
            messages |= messages.sudo().create(
                {
                    "backend_id": backend.id,
                    "direction": "outbound",
                    "message_type": "order_export",
                    "external_id": key,
                    "order_ref": reference,
                    "production_id": production.id,
                    "mes_order_id": production.mes_order_id,
                    "revision": revision,
                    "order_action": action,
                    "payload": payload,
                    "payload_format": payload_format,
                    "state": "pending",
                    "needs_master_data_ids": [fields.Command.set(needs.ids)],
                }
            )
            production.sudo().write(
                {
                    "mes_backend_id": backend.id,
                    "mes_order_ref": reference,
                    "mes_state": "pending",
                    "mes_revision": revision,
                    "mes_document": json.dumps(document),
                    "mes_export_error": False,
                }
            )
        messages._enqueue()
        return messages

    def _mes_master_data(self, backend):
        """The master data the MES needs to run this order (its product, components,
        by-products, work centers and bill of materials), written for it where it does
        not have it yet."""
        self.ensure_one()
        master = self.env["mes.master.data"].sudo()
        moves = (self.move_raw_ids | self.move_byproduct_ids).filtered(
            lambda m: m.state != "cancel"
        )
        needs = master._ensure(backend, "material", self.product_id | moves.product_id)
        needs |= master._ensure(backend, "equipment", self.workorder_ids.workcenter_id)
        if self.bom_id._mes_per_variant():
            needs |= master._ensure(backend, "bom", self.bom_id)
        # The lots in stock of its tracked components, that the shop floor consumes (the
        # order does not wait for them: the MES reports which it used).
        tracked = self.move_raw_ids.product_id.filtered(lambda p: p.tracking != "none")
        if tracked:
            lots = (
                self.env["stock.lot"]
                .sudo()
                .search(
                    [
                        ("product_id", "in", tracked.ids),
                        ("company_id", "in", (False, self.company_id.id)),
                        (
                            "quant_ids",
                            "any",
                            [("location_id.usage", "=", "internal"), ("quantity", ">", 0)],
                        ),
                    ]
                )
            )
            known = master.search(
                [("backend_id", "=", backend.id), ("kind", "=", "lot"), ("lot_id", "in", lots.ids)]
            ).lot_id
            # A lot that cannot be described does not hold up the order.
            master._ensure_noted(backend, "lot", lots - known)
        return needs

    def _mes_order_document(self, revision, action):
        """The order as the MES receives it, checked against the order schema."""
        self.ensure_one()
        missing = (
            self.product_id | self.move_raw_ids.product_id | self.move_byproduct_ids.product_id
        ).filtered(lambda p: not p.default_code)
        if missing:
            raise UserError(
                self.env._(
                    "The MES identifies products by their Internal Reference, and %(products)s "
                    "has none. Set it on the product, then confirm %(order)s again.",
                    products=", ".join(missing.mapped("display_name")),
                    order=self.name,
                )
            )
        no_code = self.workorder_ids.workcenter_id.filtered(lambda w: not w.code)
        if no_code:
            raise UserError(
                self.env._(
                    "The MES identifies work centers by their Code, and %(wcs)s has none. "
                    "Set it on the work center, then confirm %(order)s again.",
                    wcs=", ".join(no_code.mapped("display_name")),
                    order=self.name,
                )
            )

        def product(p):
            return Product(code=p.default_code, name=p.name, tracking=p.tracking)

        # The MES runs one order for the orders split from it: its quantity is theirs, and
        # what this one (the open rest) needs is scaled to it.
        quantity = self._mes_family_quantity()
        scale = quantity / self.product_qty if self.product_qty else 1.0
        document = OrderExport(
            order_id=self._mes_ref(),
            revision=revision,
            action=action,
            product=product(self.product_id),
            quantity=quantity,
            uom=self.product_uom_id.name,
            planned_start=_utc(self.date_start),
            planned_end=_utc(self.date_finished),
            priority=int(self.priority or 0),
            origin=self.origin or None,
            company=self.company_id.name,
            components=tuple(
                Component(
                    product=product(move.product_id),
                    quantity=move.product_uom_qty * scale,
                    uom=move.product_uom.name,
                    operation_sequence=move.operation_id.sequence if move.operation_id else None,
                )
                for move in self.move_raw_ids
                if move.state != "cancel"
            ),
            byproducts=tuple(
                Component(
                    product=product(move.product_id),
                    quantity=move.product_uom_qty * scale,
                    uom=move.product_uom.name,
                    operation_sequence=move.operation_id.sequence if move.operation_id else None,
                )
                for move in self.move_byproduct_ids
                if move.state != "cancel"
            ),
            finished_lots=tuple(self.lot_producing_id.mapped("name")),
            operations=tuple(
                Operation(
                    sequence=wo.operation_id.sequence if wo.operation_id else index,
                    name=wo.name,
                    resource=wo.workcenter_id.code,
                    duration_minutes=wo.duration_expected * scale,
                )
                for index, wo in enumerate(self.workorder_ids, start=1)
            ),
        ).to_dict()
        try:
            return validate_order(document)
        except MessageValidationError as err:
            raise UserError(
                self.env._(
                    "Order %(order)s cannot be sent to the MES: %(err)s", order=self.name, err=err
                )
            ) from err
