import hashlib
import json
import logging
import re
from collections import Counter
from datetime import timedelta

from psycopg2 import OperationalError
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import mute_logger

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import identity_exact

from mes_connector.b2mml import production_performance_to_events, production_schedule_to_order
from mes_connector.exceptions import (
    MesPermanentError,
    MessageValidationError,
    MesTransientError,
)
from mes_connector.validation import MISSING, FieldError, validation_errors

from ..exceptions import MesConcurrentDelivery, MesDataError, MesWaiting
from ..locking import lock_or_retry
from .mes_event_processor import utc_naive
from .mrp_production import APPLYING_MES_REPORT

_logger = logging.getLogger(__name__)

INBOUND_STATES = ("received", "waiting", "processed", "error", "cancelled")
OUTBOUND_STATES = ("pending", "acknowledged", "rejected", "failed", "cancelled")
OPEN_STATES = ("received", "waiting", "error", "pending", "failed", "rejected")
ERROR_STATES = ("error", "failed", "rejected")
MESSAGE_TYPE_SELECTION = [
    ("order_export", "Order export"),
    ("b2mml_document", "B2MML document"),
    ("order_started", "Order started"),
    ("order_held", "Order held"),
    ("order_resumed", "Order resumed"),
    ("order_completed", "Order completed"),
    ("operation_progress", "Operation progress"),
    ("operation_completed", "Operation completed"),
    ("material_consumed", "Material consumed"),
    ("output_produced", "Output produced"),
    ("scrap_reported", "Scrap"),
    ("downtime_started", "Downtime started"),
    ("downtime_ended", "Downtime ended"),
    ("quality_result", "Quality result"),
    ("unknown", "Unknown"),
]
# Seconds between tries of a waiting message: soon at first, then every 10 minutes.
WAIT_DELAYS = (10, 30, 60, 120, 300, 600)
# Events of a B2MML document whose processing is queued in the request; beyond, by a job,
# this many per run.
QUEUE_SLICE = 500
MAX_SEQUENCE = 2147483647  # a PostgreSQL integer, as the event schema says
# What an event id must look like to be a key (the schema's pattern of event_id).
EVENT_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
# A cause is an index key (messages grouped by it, one open mes.error.cause per cause):
# bounded, whatever length of value the MES put at fault.
CAUSE_SIZE = 200


def bring_forward(job):
    """For an identity key already queued, queue_job answers that job (a queue.job record,
    not a new Job): planned for later (a backoff), it runs now instead."""
    if isinstance(job, models.BaseModel) and job.state == "pending" and job.eta:
        job.eta = False


def _bounded_cause(cause):
    return cause[: CAUSE_SIZE - 3] + "..."


def _storable(text):
    """Text PostgreSQL can hold: no NUL, no lone surrogate (escaped where they were)."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _column_text(value, size):
    """A value the MES sent, as the text of a column (what does not fit is left out)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return _storable(str(value))[:size] or False


def _payload_vals(raw, event):
    """``payload``: the message as text, exactly as received where the bytes are UTF-8 text
    PostgreSQL can hold; otherwise a readable copy, and the exact bytes in ``payload_raw``."""
    if raw is None:
        text = json.dumps(event, ensure_ascii=False)
        if _storable(text) != text:
            text = json.dumps(event, ensure_ascii=True)
        return {"payload": text}
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _storable(text) == text and not text.startswith("\ufeff"):
        return {"payload": text}
    readable = raw.decode("utf-8", "backslashreplace").removeprefix("\ufeff")
    return {"payload": _storable(readable), "payload_raw": raw}


class MesMessage(models.Model):
    _name = "mes.message"
    _description = "MES Message"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _rec_names_search = ["order_ref", "external_id", "mes_order_id"]

    backend_id = fields.Many2one("mes.backend", required=True, index=True, ondelete="restrict")
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    direction = fields.Selection(
        [("inbound", "MES → Odoo"), ("outbound", "Odoo → MES")], required=True, index=True
    )
    message_type = fields.Selection(
        MESSAGE_TYPE_SELECTION,
        "Type",
        required=True,
        index=True,
    )
    external_id = fields.Char(
        "External id",
        index=True,
        copy=False,
        help="Inbound: the MES's event id. Outbound: the idempotency key sent to the MES.",
    )
    order_ref = fields.Char("Order reference", index=True)
    mes_order_id = fields.Char("MES order id", index=True)
    production_id = fields.Many2one(
        "mrp.production", "Manufacturing order", index=True, ondelete="restrict"
    )
    sequence = fields.Integer("MES sequence")
    revision = fields.Integer()
    occurred_at = fields.Datetime("Occurred at (MES)")
    payload = fields.Text(help="The message exactly as it was received from or sent to the MES.")
    payload_raw = fields.Binary(
        "Payload as received (bytes)",
        attachment=False,
        readonly=True,
        copy=False,
        help="The exact bytes the MES sent, kept when they are not plain UTF-8 text (a byte "
        "order mark, NUL characters, another encoding); the payload shows them readable.",
    )
    payload_original = fields.Text(
        "Original payload",
        readonly=True,
        copy=False,
        help="Set when an MES manager corrected the payload: the message as the MES sent it.",
    )
    payload_format = fields.Selection(
        [("json", "JSON"), ("xml", "XML (B2MML)")], default="json", required=True
    )
    order_action = fields.Selection(
        [("create", "Create"), ("change", "Change"), ("cancel", "Cancel")],
        readonly=True,
        help="Outbound order revisions: what this revision asks the MES to do.",
    )
    parent_id = fields.Many2one(
        "mes.message",
        "Received in",
        readonly=True,
        index="btree_not_null",
        help="The B2MML document this event was read from.",
    )
    child_ids = fields.One2many("mes.message", "parent_id", "Events read from it")
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("sent", "Sent"),
            ("received", "Received"),
            ("waiting", "Waiting"),
            ("acknowledged", "Acknowledged"),
            ("processed", "Processed"),
            ("rejected", "Rejected by MES"),
            ("error", "Error"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        required=True,
        index=True,
        tracking=True,
    )
    attempt_count = fields.Integer("Attempts", readonly=True)
    next_attempt_at = fields.Datetime(readonly=True)
    error_code = fields.Char(index=True, readonly=True)
    error_cause = fields.Char(
        "Cause",
        index=True,
        readonly=True,
        help="Error code and the value at fault: messages with the same cause are cleared by "
        "the same fix (a mapping, a lot), then retried together.",
    )
    error_text = fields.Text("Error", readonly=True)
    error_cause_id = fields.Many2one(
        "mes.error.cause",
        "Open cause",
        readonly=True,
        index="btree_not_null",
        copy=False,
        help="The cause this message last failed with; kept through a retry, so that the cause "
        "is cleared only once its messages are posted or cancelled.",
    )
    processed_at = fields.Datetime("Done at", readonly=True)
    waiting_since = fields.Datetime(readonly=True, copy=False)
    cancel_reason = fields.Text(readonly=True, copy=False)
    result_text = fields.Char("Result", readonly=True, copy=False)
    job_uuid = fields.Char(index=True, readonly=True, copy=False)
    move_ids = fields.Many2many("stock.move", string="Posted stock moves", readonly=True)
    scrap_ids = fields.Many2many("stock.scrap", string="Scrap orders", readonly=True)
    productivity_ids = fields.Many2many(
        "mrp.workcenter.productivity", string="Time logs", readonly=True
    )

    # What the MES reported, read from the payload at intake: the figures of the
    # dashboards and of finance's reconciliation are read from these columns in SQL.
    reported_product = fields.Char("MES product", readonly=True)
    reported_quantity = fields.Float(
        "MES quantity",
        readonly=True,
        help="Material events: the quantity; operation reports: the good quantity; "
        "completion: the order's total good quantity, if the MES gave it.",
    )
    reported_uom = fields.Char("MES unit", readonly=True)
    reported_lot = fields.Char("MES lot", readonly=True)
    reported_reason = fields.Char("MES reason", readonly=True)
    reported_minutes = fields.Float(
        "MES minutes", readonly=True, help="Operation reports: setup and run minutes."
    )
    reported_operation = fields.Integer("MES operation", readonly=True)
    reported_resource = fields.Char("MES resource", readonly=True)
    # Resolved when the message is processed, kept even if it fails.
    product_id = fields.Many2one("product.product", index="btree_not_null", readonly=True)
    workcenter_id = fields.Many2one(
        "mrp.workcenter", "Work center", index="btree_not_null", readonly=True
    )

    def init(self):
        # One message per MES event id and per order revision key. A cancelled outbound
        # revision was never taken by the MES: its key may be used again by the revision
        # that replaces it (a redelivered inbound event stays a duplicate even if cancelled).
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS mes_message_external_id_unique_idx
                ON mes_message (backend_id, direction, external_id)
             WHERE NOT (direction = 'outbound' AND state = 'cancelled')
            """
        )
        # Dashboards: traffic per hour, time to post, last contact per backend.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS mes_message_backend_direction_create_idx
                ON mes_message (backend_id, direction, create_date);
            CREATE INDEX IF NOT EXISTS mes_message_create_date_idx
                ON mes_message (create_date);
            CREATE INDEX IF NOT EXISTS mes_message_processed_at_idx
                ON mes_message (processed_at) WHERE processed_at IS NOT NULL;
            CREATE INDEX IF NOT EXISTS mes_message_open_idx
                ON mes_message (state, create_date)
             WHERE state IN ('received', 'waiting', 'error', 'pending', 'failed', 'rejected');
            """
        )
        # Lanes (mes_message_lane.py): the next message of an order in the MES's order,
        # found in the index however many of the order's messages are done; the numbers
        # an order's messages hold, read from the index alone. The order reference comes
        # first: a lookup by backend alone (the intake's duplicate search) never takes
        # these, whatever the table's statistics say.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS mes_message_lane_next_idx
                ON mes_message (order_ref, backend_id, sequence, occurred_at, id)
             WHERE direction = 'inbound' AND state IN ('received', 'waiting', 'error');
            CREATE INDEX IF NOT EXISTS mes_message_lane_numbers_idx
                ON mes_message (order_ref, backend_id, sequence)
             WHERE direction = 'inbound';
            """
        )

    @api.model
    def _reported_vals(self, event):
        """The figures an event reports, as columns (a valid event of mes.event/1)."""
        data = event.get("data") or {}
        minutes = (data.get("setup_minutes") or 0) + (data.get("run_minutes") or 0)
        return {
            "reported_product": data.get("product") or False,
            "reported_quantity": data.get("quantity", data.get("good_quantity")) or 0.0,
            "reported_uom": data.get("uom") or False,
            "reported_lot": data.get("lot") or False,
            "reported_reason": data.get("reason") or False,
            "reported_minutes": minutes,
            "reported_operation": data.get("operation") or 0,
            "reported_resource": data.get("resource") or False,
        }

    @api.depends("message_type", "external_id", "order_ref")
    def _compute_display_name(self):
        labels = dict(self._fields["message_type"]._description_selection(self.env))
        for message in self:
            message.display_name = " ".join(
                filter(
                    None,
                    [labels.get(message.message_type), message.order_ref or message.external_id],
                )
            )

    # Actions

    def action_retry(self):
        """Run the message again: re-process an inbound one, re-send an outbound one."""
        # A message whose job failed outside its own error handling may still show
        # "received" or "pending": its failed job makes it retryable too.
        retryable = self.filtered(
            lambda m: (
                m.state in ("error", "failed", "rejected", "waiting")
                or (m.state in ("received", "pending") and m._job().state == "failed")
            )
        )
        if not retryable:
            raise UserError(
                self.env._("Only messages in error, failed, rejected or waiting can be retried.")
            )
        self._check_planner()
        invalid = {m: m._payload_errors() for m in retryable}
        invalid = {m: errors for m, errors in invalid.items() if errors}
        if invalid:
            # Applying what the intake refused would post what the MES never validly sent.
            raise UserError(
                self.env._(
                    "The MES sent these messages invalid; they cannot be retried as they are. "
                    "An MES manager corrects the payload (the original is kept), or the MES "
                    "resends them corrected:\n%s",
                    "\n".join(
                        f"{m.display_name}: {'; '.join(str(e) for e in errors[:3])}"
                        for m, errors in list(invalid.items())[:20]
                    ),
                )
            )
        for message in retryable.sudo():
            new_state = "received" if message.direction == "inbound" else "pending"
            message.write(
                {
                    "state": new_state,
                    "error_code": False,
                    "error_cause": False,
                    "error_text": False,
                    "waiting_since": False,
                    "attempt_count": 0,
                    "next_attempt_at": False,
                }
            )
            message.message_post(
                body=self.env._("Retry requested by %s.", self.env.user.name),
                author_id=self.env.user.partner_id.id,
            )
            message._enqueue(now=True)
        return True

    def _payload_errors(self):
        """What is wrong with an inbound JSON event as it is stored now (empty: valid)."""
        self.ensure_one()
        if self.direction != "inbound" or self.payload_format != "json":
            return []
        try:
            event = json.loads(self.payload or "")
        except ValueError as err:
            return [FieldError("(body)", MISSING, f"is not valid JSON ({err})")]
        return validation_errors(event, "event.v1.json")

    def _order_document(self):
        """The order document (mes.order/1) an outbound revision carries, as JSON text."""
        self.ensure_one()
        if self.payload_format == "xml":
            return json.dumps(production_schedule_to_order(self.payload.encode()))
        return json.dumps(json.loads(self.payload))

    def _check_planner(self):
        """Messages change only through their actions, done by MES users (as superuser)."""
        self.check_access("read")
        if not self.env.su and not self.env.user.has_group("mes_base.group_mes_user"):
            raise AccessError(self.env._("Only MES users may retry or cancel MES messages."))

    def action_cancel(self, reason):
        """Close messages that must not be applied, saying why (kept, never deleted)."""
        if not (reason or "").strip():
            raise UserError(self.env._("Say why the messages are cancelled."))
        done = self.filtered(lambda m: m.state in ("processed", "acknowledged", "cancelled"))
        if done:
            raise UserError(
                self.env._(
                    "Already processed or cancelled, cannot be cancelled: %s",
                    ", ".join(done.mapped("display_name")),
                )
            )
        self._check_planner()
        self._check_no_later_revision()
        for message in self.sudo():
            message.write(
                {
                    "state": "cancelled",
                    "cancel_reason": reason,
                    "next_attempt_at": False,
                    "processed_at": fields.Datetime.now(),
                }
            )
            message.message_post(
                body=self.env._(
                    "Cancelled by %(user)s: %(reason)s", user=self.env.user.name, reason=reason
                ),
                author_id=self.env.user.partner_id.id,
            )
            if message.direction == "outbound" and message.production_id:
                message.production_id._mes_revision_withdrawn(message)
        # The rest of their lanes goes on: a person decided about the message they stopped at.
        self.filtered(lambda m: m.direction == "inbound")._enqueue_lanes()
        return True

    def _check_no_later_revision(self):
        """An order revision is withdrawn latest first: a strict MES takes revisions only
        one after the other, so withdrawing one below another still standing would leave
        a gap in their numbers. (Each revision carries the whole order: the later one
        holds what the earlier one changed.)"""
        exports = self.filtered(lambda m: m.direction == "outbound" and m.production_id)
        for message in exports:
            later = (
                self.sudo()
                .search(
                    [
                        ("production_id", "=", message.production_id.id),
                        ("direction", "=", "outbound"),
                        ("revision", ">", message.revision),
                        ("state", "!=", "cancelled"),
                    ]
                )
                .filtered(lambda m: m not in exports)
            )
            if later:
                raise UserError(
                    self.env._(
                        "Revision %(rev)s of %(order)s cannot be withdrawn alone: revision "
                        "%(later)s comes after it and would leave a gap the MES refuses. "
                        "Withdraw the latest revision first, or both together.",
                        rev=message.revision,
                        order=message.production_id.display_name,
                        later=", ".join(str(r) for r in sorted(later.mapped("revision"))),
                    )
                )

    def action_open_cancel_wizard(self):
        self._check_planner()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mes.message.cancel.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_message_ids": self.ids},
        }

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            # Messages are made by the intake, the export and the pull only: a person (or an
            # RPC call) must not forge one, in any state.
            raise AccessError(
                self.env._("MES messages are created by the MES interface only, not by hand.")
            )
        for vals in vals_list:
            if len(vals.get("error_cause") or "") > CAUSE_SIZE:
                vals["error_cause"] = _bounded_cause(vals["error_cause"])
        messages = super().create(vals_list)
        if any(vals.get("state") in ERROR_STATES for vals in vals_list):
            self.env["mes.error.cause"]._trigger_sync()
        return messages

    def write(self, vals):
        if len(vals.get("error_cause") or "") > CAUSE_SIZE:
            vals = dict(vals, error_cause=_bounded_cause(vals["error_cause"]))
        if vals.get("state") in ERROR_STATES:
            self.env["mes.error.cause"]._trigger_sync()
        if not self.env.su:
            # Users (and RPC) reach here; internal paths write in superuser mode.
            if set(vals) - {"payload"}:
                raise AccessError(
                    self.env._(
                        "MES messages change only through Retry, Cancel and a manager's "
                        "payload correction."
                    )
                )
            # An MES manager's correction: validated, the original kept, derived fields updated.
            vals = dict(vals, **self._check_correction(vals["payload"]))
            for message in self.filtered(lambda m: not m.payload_original):
                super(MesMessage, message.sudo()).write({"payload_original": message.payload})
            for message in self:
                message.sudo().message_post(
                    body=self.env._(
                        "Payload corrected by %s; the original is kept.", self.env.user.name
                    ),
                    author_id=self.env.user.partner_id.id,
                )
            return super(MesMessage, self.sudo()).write(vals)
        return super().write(vals)

    def _check_correction(self, payload):
        """Values derived from a corrected payload; a clear error if it may not be applied."""
        if not self.env.user.has_group("mes_base.group_mes_manager"):
            raise UserError(self.env._("Only MES managers may correct a message."))
        for message in self:
            if message.direction != "inbound" or message.state not in ("error", "waiting"):
                raise UserError(
                    self.env._("Only inbound messages in error or waiting can be corrected.")
                )
        try:
            event = json.loads(payload)
        except ValueError as err:
            raise ValidationError(self.env._("The corrected payload is not JSON: %s", err)) from err
        errors = validation_errors(event, "event.v1.json")
        if errors:
            raise ValidationError(
                self.env._(
                    "The corrected payload is not a valid event: %s",
                    "; ".join(str(e) for e in errors),
                )
            )
        for message in self:
            if event["event_id"] != message.external_id:
                raise ValidationError(
                    self.env._(
                        "event_id: %(new)r differs from the message's %(old)r; the id the MES sent "
                        "cannot be corrected.",
                        new=event["event_id"],
                        old=message.external_id,
                    )
                )
        return {
            "message_type": event["event_type"],
            "order_ref": event.get("order_ref") or False,
            "sequence": event.get("sequence") or 0,
            "occurred_at": utc_naive(event["occurred_at"]),
            # Located again from the corrected values.
            "production_id": False,
            "product_id": False,
            "workcenter_id": False,
            **self._reported_vals(event),
        }

    def action_view_job(self):
        self.ensure_one()
        self._check_planner()
        # Planners see the job of a message they may read (queue.job itself is for managers).
        job = self._job()
        if not job:
            raise UserError(self.env._("No queue job is linked to this message."))
        return {
            "type": "ir.actions.act_window",
            "res_model": "queue.job",
            "res_id": job.id,
            "view_mode": "form",
        }

    def _job(self):
        """The queue job of this message: its own (outbound), its lane's newest (inbound)."""
        self.ensure_one()
        if self.direction == "inbound":
            return self._lane_job()
        return self.env["queue.job"].sudo().search([("uuid", "=", self.job_uuid)], limit=1)

    # Intake

    @api.model
    def _intake(self, backend, raw, event, rejection=None):
        """Store one inbound message and queue its processing; never loses what was received.

        ``raw`` is the body as it came from the MES (bytes), or None for an event of a
        batch (kept as its own JSON text); ``event`` is its decoded JSON. ``rejection`` is
        ``(error code, [FieldError])`` when the body could not even be decoded. Returns the
        answer for the MES: a dict whose ``status`` is accepted, duplicate or rejected
        (with ``errors`` naming each field). Whatever the event holds, it is stored: the
        columns take only what fits them, the payload keeps everything.
        """
        prepared = self._intake_vals(backend, raw, event, rejection)
        return self._intake_prepared(backend, [prepared])[0]

    @api.model
    def _intake_batch(self, backend, events, validated=False, enqueue=True):
        """Store the events of a batch or of a B2MML document; answers in the same order.

        One query finds the events already held, one insert stores the new ones, in the
        order of their ids (two deliveries sharing events take their locks in the same
        order). ``validated``: the events were checked already (read from a document).
        Without ``enqueue`` no processing job is queued: the caller queues them.
        """
        prepared = [
            self._intake_vals(backend, None, event, validated=validated) for event in events
        ]
        return self._intake_prepared(backend, prepared, enqueue=enqueue)

    @api.model
    def _intake_vals(self, backend, raw, event, rejection=None, validated=False):
        """(values of the message to store, its field errors) for one inbound event."""
        if rejection:
            error_code, errors = rejection
        elif validated:
            error_code, errors = "invalid_message", []
        else:
            error_code, errors = "invalid_message", validation_errors(event, "event.v1.json")
        event = event if isinstance(event, dict) else {}
        external_id = event.get("event_id")
        if not (isinstance(external_id, str) and EVENT_ID.fullmatch(external_id)):
            external_id = False
        message_type = event.get("event_type")
        if not isinstance(message_type, str) or message_type not in dict(
            self._fields["message_type"].selection
        ):
            message_type = "unknown"
        vals = {
            "backend_id": backend.id,
            "direction": "inbound",
            "message_type": message_type,
            "external_id": external_id,
            "payload_format": "json",
            "order_ref": _column_text(event.get("order_ref"), 64),
            "mes_order_id": _column_text(event.get("mes_order_id"), 64),
            "state": "error" if errors else "received",
            "parent_id": self.env.context.get("mes_parent_id") or False,
            "error_code": error_code if errors else False,
            "error_cause": (
                f"{error_code}: {', '.join(sorted({e.field for e in errors}))}" if errors else False
            ),
            "error_text": "\n".join(str(e) for e in errors) or False,
            **_payload_vals(raw, event),
        }
        if not errors:
            vals["sequence"] = event.get("sequence") or 0
            vals["occurred_at"] = utc_naive(event["occurred_at"])
            vals.update(self._reported_vals(event))
        return vals, errors

    @api.model
    def _intake_prepared(self, backend, prepared, enqueue=True):
        """Store prepared ``(vals, errors)``: the answers, in order (see :meth:`_intake`).

        Raises :class:`MesConcurrentDelivery` when another request stores one of the same
        events at this moment (the caller rolls back and asks the MES to send again).
        """
        ids = {vals["external_id"] for vals, _errors in prepared if vals["external_id"]}
        held = {message.external_id: message for message in self._find_inbound(backend, ids)}
        answers, new, later = [], {}, []
        for vals, errors in prepared:
            external_id = vals["external_id"]
            answer = {"event_id": external_id or None}
            answers.append(answer)
            existing = held.get(external_id)
            if existing and not errors and existing._refused_as_invalid():
                # The MES resends, corrected, an event Odoo refused and nobody has
                # cancelled (a person's decision stands): take the correction, keep
                # what came first.
                existing._take_correction(vals, enqueue)
                held.pop(external_id)
                answer.update(status="accepted", message_id=existing.id)
            elif existing:
                answer.update(status="duplicate", message_id=existing.id, state=existing.state)
            elif external_id in new:
                # Twice in this batch: a duplicate of the first, or its correction when the
                # first was refused and this one is valid (stored once, as corrected).
                first_vals, first_errors, first_answer = new[external_id]
                if first_errors and not errors:
                    first_answer.update(errors=[e.as_dict() for e in first_errors])
                    later.append((first_answer, external_id, "rejected"))
                    new[external_id] = (
                        dict(vals, payload_original=first_vals["payload"]),
                        [],
                        answer,
                    )
                else:
                    later.append((answer, external_id, "duplicate"))
            else:
                new[external_id or object()] = (vals, errors, answer)
        if not new:
            return answers
        # In the order of the ids: two deliveries sharing events wait for each other on the
        # unique index in the same order, never in a cycle.
        to_create = sorted(new.values(), key=lambda item: item[0]["external_id"] or "")
        creator = self.sudo().with_context(mail_create_nolog=True, tracking_disable=True)
        try:
            # A concurrent duplicate is an expected answer here, not an SQL error to log.
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                messages = creator.create([vals for vals, _errors, _answer in to_create])
        except pg_errors.UniqueViolation as err:
            # A concurrent delivery of one of these events committed first: its row is not
            # visible to this transaction's snapshot, the unique index sees it.
            raise MesConcurrentDelivery(
                "another request stored one of these events at the same moment"
            ) from err
        by_id = {}
        for message, (_vals, errors, answer) in zip(messages, to_create, strict=True):
            by_id[message.external_id] = message
            answer["message_id"] = message.id
            if errors:
                answer.update(status="rejected", errors=[e.as_dict() for e in errors])
            else:
                answer["status"] = "accepted"
        for answer, external_id, status in later:
            first = by_id[external_id]
            answer.update(status=status, message_id=first.id)
            if status == "duplicate":
                answer["state"] = first.state
        if enqueue:
            messages.filtered(lambda m: m.state == "received")._enqueue_in_order()
        return answers

    def _enqueue_in_order(self):
        """Queue the processing of new inbound messages: one job per lane (order), which
        applies them in the MES's order whatever order they were stored in."""
        self._enqueue_lanes()

    def _refused_as_invalid(self):
        """Refused by the intake for what it held (not cancelled by a person since)."""
        self.ensure_one()
        return self.state == "error" and self.error_code == "invalid_message"

    def _take_correction(self, vals, enqueue=True):
        """A refused event, resent corrected by the MES, becomes the corrected one."""
        self.ensure_one()
        self.sudo().write(
            dict(
                vals,
                payload_original=self.payload_original or self.payload,
                error_code=False,
                error_text=False,
            )
        )
        self.with_user(self.backend_id.user_id).sudo()._message_log(
            body=self.env._("The MES resent this event corrected; the first one is kept.")
        )
        if enqueue:
            self._enqueue()

    @api.model
    def _intake_b2mml(self, backend, body):
        """Store a B2MML ProductionPerformance as received, then each event read from it.

        The document is kept whole (its own message, format XML); the events are
        messages of their own, linked to it, processed like JSON events. A document that
        cannot be read is kept, in error, and none of its events is taken.
        """
        external_id = f"b2mml:{hashlib.sha256(body).hexdigest()[:40]}"
        existing = self._find_inbound(backend, external_id)
        if existing:
            return {"status": "duplicate", "message_id": existing.id, "state": existing.state}
        try:
            events, errors = production_performance_to_events(body), []
        except MessageValidationError as err:
            events, errors = [], err.errors
        vals = {
            "backend_id": backend.id,
            "direction": "inbound",
            "message_type": "b2mml_document",
            "external_id": external_id,
            **_payload_vals(body, None),
            "payload_format": "xml",
            "state": "error" if errors else "processed",
            "error_code": "invalid_b2mml" if errors else False,
            "error_text": "\n".join(str(e) for e in errors) or False,
            "processed_at": fields.Datetime.now(),
            "result_text": False if errors else self.env._("%s events read", len(events)),
        }
        try:
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                document = self.sudo().with_context(mail_create_nolog=True).create(vals)
        except pg_errors.UniqueViolation as err:
            raise MesConcurrentDelivery(
                "another request stored this document at the same moment"
            ) from err
        if errors:
            return {
                "status": "rejected",
                "message_id": document.id,
                "errors": [e.as_dict() for e in errors],
            }
        # A document numbers its events from 1: per order, they come after what that
        # order already received, so documents apply in the order they arrive.
        refs = {event.get("order_ref") for event in events}
        last = self._last_sequences(backend, refs)
        counts = Counter(event.get("order_ref") for event in events)
        full = sorted(ref for ref in refs if last.get(ref, 0) + counts[ref] > MAX_SEQUENCE)
        if full:
            document.write(
                {
                    "state": "error",
                    "error_code": "sequence_exhausted",
                    "error_cause": f"sequence_exhausted: {full[0]}",
                    "error_text": self.env._(
                        "ProductionRequestID %(refs)s: the MES already numbered events of these "
                        "orders up to %(max)s; their events cannot be numbered after them.",
                        refs=", ".join(full[:10]),
                        max=MAX_SEQUENCE,
                    ),
                    "result_text": False,
                }
            )
            return {
                "status": "rejected",
                "message_id": document.id,
                "errors": [
                    {
                        "field": "ProductionRequestID",
                        "value": full[0],
                        "reason": (f"the order's MES sequence is already {MAX_SEQUENCE}"),
                    }
                ],
            }
        next_sequence = {ref: last.get(ref, 0) + 1 for ref in refs}
        for event in events:
            ref = event.get("order_ref")
            event["sequence"] = next_sequence[ref]
            next_sequence[ref] += 1
        intake = self.with_context(mes_parent_id=document.id)
        # Read and stored in this request (one insert); a large document's processing jobs
        # are queued by a job of its own, in slices, so that the answer does not wait.
        small = len(events) <= QUEUE_SLICE
        results = intake._intake_batch(backend, events, validated=True, enqueue=small)
        if not small:
            document._queue_read_events()
        return {"status": "accepted", "message_id": document.id, "results": results}

    def _queue_read_events(self, after_id=0):
        backend = self.backend_id
        # Before the processing jobs it queues (priority), as the backend's integration user.
        self.with_user(backend.user_id).with_context(
            allowed_company_ids=backend.company_id.ids
        ).with_delay(
            description=f"MES: queue the events of {self.display_name}",
            identity_key=identity_exact,
            priority=1,
        )._queue_events(after_id)

    def _queue_events(self, after_id=0):
        """Queue the lanes of a slice of the events read from this document (job); the
        next slice is queued by the next run, until none is left."""
        self.ensure_one()
        events = self.sudo().search(
            [("parent_id", "=", self.id), ("state", "=", "received"), ("id", ">", after_id)],
            order="id",
            limit=QUEUE_SLICE,
        )
        events._enqueue_in_order()
        if len(events) == QUEUE_SLICE:
            self._queue_read_events(events[-1].id)
        return f"{len(events)} events queued"

    def _last_sequences(self, backend, order_refs):
        """Highest MES sequence stored per order reference, read under a lock on the
        backend's B2MML numbering, so that two documents are numbered one after the other
        (one lock and one query for a document, however many orders it reports on)."""
        self.env.cr.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"mes:b2mml:{backend.id}",)
        )
        refs = [ref for ref in order_refs if ref]
        if not refs:
            return {}
        self.env.cr.execute(
            "SELECT order_ref, COALESCE(MAX(sequence), 0) FROM mes_message"
            " WHERE backend_id = %s AND direction = 'inbound' AND order_ref = ANY(%s)"
            " GROUP BY order_ref",
            (backend.id, refs),
        )
        return dict(self.env.cr.fetchall())

    def _find_inbound(self, backend, external_ids):
        """The inbound messages of ``backend`` with these MES ids (one id, or a set)."""
        if isinstance(external_ids, str):
            external_ids = [external_ids]
        if not external_ids:
            return self.browse()
        # Found by the ids alone first, then kept for this backend: PostgreSQL can only
        # take the index of the ids for this, whatever its statistics say. (Given the
        # backend too, with statistics never gathered it scans every message of the
        # backend, slower and slower as the table grows.)
        self.flush_model(["external_id", "backend_id", "direction"])
        self.env.cr.execute(
            """
            WITH found AS MATERIALIZED (
                SELECT id, backend_id, direction FROM mes_message
                 WHERE external_id = ANY(%s::varchar[]))
            SELECT id FROM found WHERE backend_id = %s AND direction = 'inbound'
            """,
            (list(external_ids), backend.id),
        )
        return self.sudo().browse([row[0] for row in self.env.cr.fetchall()])

    # Jobs

    def _enqueue(self, eta=None, now=False):
        """Queue the job that sends (outbound) or processes (inbound) each message.

        Inbound messages are processed by the job of their lane (see
        ``mes_message_lane.py``). With ``now``, a job already planned for later (a
        waiting message's next try) is brought forward instead of a second one queued.
        """
        self.filtered(lambda m: m.direction == "inbound")._enqueue_lanes(eta=eta)
        for message in self.filtered(lambda m: m.direction == "outbound"):
            backend = message.backend_id
            delayable = message.with_user(backend.user_id).with_context(
                allowed_company_ids=backend.company_id.ids
            )
            job = delayable.with_delay(
                description=f"MES outbound {message.display_name}",
                identity_key=identity_exact,
                eta=eta,
                max_retries=backend.export_max_retries,
            )._send()
            message.sudo().job_uuid = job.uuid
            if now:
                bring_forward(job)

    def _lock(self):
        """Row lock for the time of the job; held elsewhere -> try again shortly."""
        lock_or_retry(self, seconds=5)

    def _send(self):
        """Deliver an outbound message to the MES (queue job)."""
        self.ensure_one()
        if not self.env.su:
            return self.sudo()._send()
        if self.state != "pending":
            return f"nothing to do: message is {self.state}"
        if self.message_type != "order_export":
            # Other outbound messages (added by other addons): _send_<type>.
            return getattr(self, f"_send_{self.message_type}")()
        earlier = self.search(
            [
                ("production_id", "=", self.production_id.id),
                ("direction", "=", "outbound"),
                ("revision", "<", self.revision),
                ("state", "in", ("pending", "failed", "rejected")),
            ],
            order="revision",
            limit=1,
        )
        if self.production_id and earlier:
            # The MES applies revisions in order: never let a later one overtake. A rejected
            # one must be retried or cancelled by a person first.
            raise RetryableJobError(
                self.env._(
                    "revision %(rev)s of %(order)s is not delivered yet (%(state)s)",
                    rev=earlier.revision,
                    order=self.order_ref,
                    state=earlier.state,
                ),
                seconds=10,
                ignore_retry=True,
            )
        client = self.backend_id._get_client()
        try:
            if self.payload_format == "xml":
                ack = client.send_order_xml(self.payload.encode(), self.external_id)
            else:
                ack = client.send_order(json.loads(self.payload), self.external_id)
        except MesTransientError as err:
            raise RetryableJobError(str(err), seconds=err.retry_after) from err
        except MesPermanentError as err:
            self.production_id.sudo().mes_state = "rejected"
            return self._set_refused(err)
        if ack.mes_order_id is None:
            # Taken for later processing: the MES acknowledges it when it reports on it.
            self.write(
                {
                    "state": "sent",
                    "processed_at": fields.Datetime.now(),
                    "error_code": False,
                    "error_text": False,
                }
            )
            self.production_id.sudo().mes_state = "sent"
            return "taken by the MES, not acknowledged yet"
        self.write(
            {
                "state": "acknowledged",
                "mes_order_id": ack.mes_order_id,
                "processed_at": fields.Datetime.now(),
                "error_code": False,
                "error_text": False,
            }
        )
        self.production_id.sudo().write(
            {
                "mes_state": "cancelled" if self.order_action == "cancel" else "acknowledged",
                "mes_order_id": ack.mes_order_id,
            }
        )
        return "duplicate at the MES" if ack.duplicate else f"MES order {ack.mes_order_id}"

    def _set_refused(self, err):
        """The MES refused an outbound message for good (MesPermanentError): rejected."""
        code = f"mes_http_{err.status}" if err.status else "mes_refused"
        self.write(
            {
                "state": "rejected",
                "error_code": code,
                "error_cause": code,
                "error_text": str(err),
                "processed_at": fields.Datetime.now(),
            }
        )
        return str(err)

    def _process(self):
        """Apply this inbound message, with the rest of its lane, in the MES's order
        (its lane's job does the same; see ``mes_message_lane.py``)."""
        self.ensure_one()
        return self._run_lane(self._lane_key())

    def _process_one(self):
        self._lock()
        self.invalidate_recordset()
        if self.state not in ("received", "waiting"):
            return f"nothing to do: message is {self.state}"
        # What the MES reports changes orders; those changes are not sent back to it.
        processor = self.env["mes.event.processor"].with_context(mes_report=APPLYING_MES_REPORT)
        handler = getattr(processor, f"_process_{self.message_type}", None)
        if handler is None:
            return self._set_error(
                "unsupported_type",
                self.env._("event_type: %r is not processed by this Odoo.", self.message_type),
            )
        errors = self._payload_errors()
        if errors:
            # Never applied as it is: the intake refused it, or its payload was damaged.
            return self._set_error(
                "invalid_message",
                "\n".join(str(e) for e in errors),
                ", ".join(sorted({e.field for e in errors})),
            )
        try:
            event = json.loads(self.payload)
            with self.env.cr.savepoint():
                self._locate()
            self._check_sequence_gap()
            with self.env.cr.savepoint():
                result = handler(self.with_context(mes_report=APPLYING_MES_REPORT), event)
        except MesWaiting as err:
            return self._wait(str(err), f"{err.code}: {err.value}" if err.value else err.code)
        except MesDataError as err:
            return self._set_error(err.code, str(err), err.value)
        except (UserError, ValidationError) as err:
            return self._set_error(
                "odoo_refused", self.env._("Odoo refused the posting: %s", err.args[0])
            )
        except (RetryableJobError, OperationalError):
            raise  # lock or serialization conflict: queue_job tries again
        except Exception as err:
            # A defect, not bad data: keep the message visible instead of a silent failed job.
            _logger.exception("MES message %s could not be processed", self.id)
            return self._set_error(
                "internal_error",
                self.env._(
                    "Unexpected error (%(kind)s): %(err)s", kind=type(err).__name__, err=err
                ),
            )
        self.write(
            {
                "state": "processed",
                "processed_at": fields.Datetime.now(),
                "error_code": False,
                "error_cause": False,
                "error_text": False,
                "waiting_since": False,
                "next_attempt_at": False,
                "result_text": result,
            }
        )
        self._acknowledge_order()
        return result

    def _locate(self):
        """Link the message to its order, product and work center where they can be found.

        Outside the processing savepoint: a message in error still shows on the
        dashboards under its order, product and work center.
        """
        backend = self.backend_id
        vals = {}

        def resolve(mapping_type, code, fallback):
            try:
                return backend._resolve(mapping_type, code, "", fallback)
            except MesDataError:
                return None

        production = self.production_id
        if not production and self.order_ref:
            production = production.search(
                [("name", "=", self.order_ref), ("company_id", "=", self.company_id.id)], limit=1
            )
            vals["production_id"] = production.id or False
        company = [False, self.company_id.id]
        if not self.product_id and self.reported_product:
            product = resolve(
                "product",
                self.reported_product,
                lambda code: self.env["product.product"].search(
                    [("default_code", "=", code), ("company_id", "in", company)], limit=1
                ),
            )
            vals["product_id"] = product.id if product else False
        if not self.workcenter_id:
            workcenter = None
            if self.reported_resource:
                workcenter = resolve(
                    "workcenter",
                    self.reported_resource,
                    lambda code: self.env["mrp.workcenter"].search(
                        [("code", "=", code), ("company_id", "in", company)], limit=1
                    ),
                )
            elif self.reported_operation and production:
                try:
                    workcenter = (
                        self.env["mes.event.processor"]
                        ._workorder(production, {"operation": self.reported_operation})
                        .workcenter_id
                    )
                except MesDataError:
                    workcenter = None
            vals["workcenter_id"] = workcenter.id if workcenter else False
        vals = {key: value for key, value in vals.items() if value}
        if vals:
            self.write(vals)

    def _acknowledge_order(self):
        """An MES that took an order without its id acknowledges it by reporting on it."""
        production = self.production_id
        if production.mes_state == "sent":
            production.sudo().write(
                {
                    "mes_state": "acknowledged",
                    "mes_order_id": self.mes_order_id or production.mes_order_id,
                }
            )
            self.search(
                [
                    ("production_id", "=", production.id),
                    ("direction", "=", "outbound"),
                    ("state", "=", "sent"),
                ]
            ).write({"state": "acknowledged", "mes_order_id": self.mes_order_id})

    def _wait(self, reason, cause):
        """Park the message until what it needs is there, with growing delays, then give up.

        ``cause`` names what is awaited (``unknown_lot: L-7 (RM-1)``): kept when the
        wait turns into an error, so that one fix (receiving the lot) clears the group.
        """
        now = fields.Datetime.now()
        since = self.waiting_since or now
        timeout = timedelta(minutes=self.backend_id.waiting_timeout or 0)
        if now - since >= timeout:
            return self._set_error(
                "waited_too_long",
                self.env._(
                    "Waited since %(since)s (UTC) for %(reason)s. Check that it exists in Odoo "
                    "(or that the MES sent it), then retry, or cancel this message.",
                    since=since,
                    reason=reason,
                ),
                cause,
            )
        attempts = self.attempt_count + 1
        delay = min(WAIT_DELAYS[min(attempts, len(WAIT_DELAYS)) - 1], timeout.total_seconds())
        self.write(
            {
                "state": "waiting",
                "waiting_since": since,
                "attempt_count": attempts,
                "next_attempt_at": now + timedelta(seconds=delay),
                "error_code": "waiting",
                "error_cause": cause,
                "error_text": self.env._("Waiting for %s.", reason),
            }
        )
        self._enqueue(eta=delay)
        return f"waiting for {reason}"

    def _set_error(self, code, text, value=None):
        self.write(
            {
                "state": "error",
                "error_code": code,
                "error_cause": f"{code}: {value}" if value else code,
                "error_text": text,
                "next_attempt_at": False,
            }
        )
        return f"error {code}: {text}"
