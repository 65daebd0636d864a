import hashlib
import json
import logging

from lxml import etree

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import float_repr, format_datetime

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import identity_exact

from mes_connector.b2mml import production_schedule_to_order
from mes_connector.validation import MISSING, FieldError, too_deep, validation_errors

from ..locking import lock_or_retry
from .mes_event_processor import utc_naive
from .mes_master_data import KIND_PRIORITY, MESSAGE_KIND

_logger = logging.getLogger(__name__)

INBOUND_STATES = ("received", "waiting", "processed", "error", "cancelled")
OUTBOUND_STATES = ("pending", "acknowledged", "rejected", "failed", "cancelled")
OPEN_STATES = ("received", "waiting", "error", "pending", "failed", "rejected")
ERROR_STATES = ("error", "failed", "rejected")
# The lane (order_ref column) of the events that name their order by the MES's id alone.
MES_ORDER_LANE = "MES:"
ORDER_REF_SIZE = 64  # what the intake keeps of an order reference


def order_lane(event):
    """The order reference a stored event is kept under: its ``order_ref``, or for an
    event naming its order by ``mes_order_id`` alone, ``MES:<that id>`` (one lane, one
    numbering per MES order, whether Odoo knows the order yet or not)."""
    if not isinstance(event, dict):
        return None
    if event.get("order_ref"):
        return event["order_ref"]
    mes_order_id = event.get("mes_order_id")
    if mes_order_id and isinstance(mes_order_id, str):
        lane = f"{MES_ORDER_LANE}{mes_order_id}"
        if len(lane) > ORDER_REF_SIZE:
            # Kept whole in the column, and apart from ids that only differ at the end.
            digest = hashlib.sha256(mes_order_id.encode()).hexdigest()[:16]
            lane = f"{lane[: ORDER_REF_SIZE - 17]}~{digest}"
        return lane
    return None


# What holds up an order's reports (those received behind it are next in line).
STOPPING_STATES = ("waiting", "error")
# An order's reports not posted yet.
UNPOSTED_STATES = ("received", *STOPPING_STATES)
MESSAGE_TYPE_SELECTION = [
    ("order_export", "Order export"),
    ("master_material", "Material master"),
    ("master_equipment", "Equipment master"),
    ("master_bom", "Bill of materials"),
    ("master_lot", "Material lot"),
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
    ("rework_started", "Sent to rework"),
    ("rework_completed", "Out of rework"),
    ("downtime_started", "Downtime started"),
    ("downtime_ended", "Downtime ended"),
    ("quality_result", "Quality result"),
    ("unknown", "Unknown"),
]
# A cause is an index key (messages grouped by it, one open mes.error.cause per cause):
# bounded, whatever length of value the MES put at fault.
CAUSE_SIZE = 200
# What an event reports, as columns (filled by the intake, see _reported_vals).
REPORTED_COLUMNS = (
    "reported_product",
    "reported_quantity",
    "reported_uom",
    "reported_lot",
    "reported_reason",
    "reported_minutes",
    "reported_operation",
    "reported_resource",
)
# Payloads longer than this are shown as they are (laying them out costs more than it
# helps), and so are those the layout would make this many times longer.
READABLE_MAX = 200_000
READABLE_GROWTH = 4
# What a message that is tried again, applied, or held up behind another says of its
# last error or wait: nothing.
NO_TROUBLE = {
    "error_code": False,
    "cause_code": False,
    "cause_value": False,
    "error_cause": False,
    "error_text": False,
    "waiting_since": False,
    "next_attempt_at": False,
}


def first_line(text):
    """The first line of a text (an error, a reason): what a list or a banner shows."""
    return (text or "").strip().split("\n")[0]


def readable(payload, payload_format):
    """A payload laid out to be read; as it is when it cannot be read, is large or
    nests deep (the intake keeps what the MES sent whatever it holds: laying out a
    hostile body must cost no more than showing it)."""
    if not payload or len(payload) > READABLE_MAX:
        return payload
    try:
        if payload_format == "xml":
            parser = etree.XMLParser(
                remove_blank_text=True, resolve_entities=False, no_network=True, huge_tree=False
            )
            root = etree.fromstring(payload.encode(), parser=parser)
            text = etree.tostring(root, pretty_print=True, encoding="unicode")
        else:
            if too_deep(payload):
                return payload
            text = json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError, MemoryError, etree.LxmlError):
        return payload
    return text if len(text) <= READABLE_GROWTH * len(payload) else payload


def bring_forward(job):
    """For an identity key already queued, queue_job answers that job (a queue.job record,
    not a new Job): planned for later (a backoff), it runs now instead."""
    if isinstance(job, models.BaseModel) and job.state == "pending" and job.eta:
        job.eta = False


def bounded_cause(cause):
    """``cause`` cut to what the cause columns hold."""
    if not cause or len(cause) <= CAUSE_SIZE:
        return cause
    return cause[: CAUSE_SIZE - 3] + "..."


def cause_name(error_code, cause_code, cause_value):
    """The cause as people read it (and as messages are grouped by): ``code: value``,
    after the state's own code when it is another (``waited_too_long: unknown_lot:
    LOT-7``). Written from the two columns, never read back into them."""
    parts = [error_code] if error_code and error_code not in ("waiting", cause_code) else []
    parts += [part for part in (cause_code, cause_value) if part]
    return bounded_cause(": ".join(parts)) or False


class MesMessage(models.Model):
    _name = "mes.message"
    _description = "MES Message"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _rec_names_search = ["order_ref", "external_id", "mes_order_id"]

    # Every index is written by every message stored: a column has its own only where
    # a lookup needs it. The backend is the first column of the indexes below (init);
    # company, direction, type and state are a few values each, no index picks among
    # them (open messages: mes_message_open_idx); columns empty on most messages index
    # only the others (btree_not_null).
    backend_id = fields.Many2one("mes.backend", required=True, ondelete="restrict")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    direction = fields.Selection(
        [("inbound", "MES → Odoo"), ("outbound", "Odoo → MES")], required=True
    )
    message_type = fields.Selection(MESSAGE_TYPE_SELECTION, "Type", required=True)
    external_id = fields.Char(
        "External id",
        index=True,
        copy=False,
        help="Inbound: the MES's event id. Outbound: the idempotency key sent to the MES.",
    )
    order_ref = fields.Char("Order reference", index=True)
    mes_order_id = fields.Char("MES order id", index="btree_not_null")
    production_id = fields.Many2one(
        "mrp.production", "Manufacturing order", index="btree_not_null", ondelete="restrict"
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
        tracking=True,
    )
    attempt_count = fields.Integer(
        "Attempts",
        readonly=True,
        aggregator="max",
        help="How many times Odoo tried to post (inbound) or deliver (outbound) it, people's "
        "retries included.",
    )
    next_attempt_at = fields.Datetime(readonly=True)
    error_code = fields.Char(index="btree_not_null", readonly=True)
    cause_code = fields.Char(
        index="btree_not_null",
        readonly=True,
        help="What is at fault, as a code: the error's own, or what a waiting message waits "
        "for (unknown_lot, missing_sequence, ...).",
    )
    cause_value = fields.Char(
        "Value at fault",
        readonly=True,
        help="The MES's value the cause is about: a product code, a lot, an order and the "
        "sequence numbers it misses.",
    )
    error_cause = fields.Char(
        "Cause",
        compute="_compute_error_cause",
        store=True,
        index="btree_not_null",
        readonly=True,
        help="Cause code and the value at fault: messages with the same cause are cleared by "
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
    job_uuid = fields.Char(index="btree_not_null", readonly=True, copy=False)
    move_ids = fields.Many2many("stock.move", string="Posted stock moves", readonly=True)
    scrap_ids = fields.Many2many("stock.scrap", string="Scrap orders", readonly=True)
    rework_ids = fields.Many2many("mes.rework", readonly=True)
    labor_ids = fields.One2many("mes.labor", "message_id", "Operator labor", readonly=True)
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
    master_data_id = fields.Many2one(
        "mes.master.data",
        "Master data",
        index="btree_not_null",
        readonly=True,
        ondelete="restrict",
        help="Outbound master data: the material, equipment, bill or lot this revision is of.",
    )
    needs_master_data_ids = fields.Many2many(
        "mes.master.data",
        "mes_message_master_data_need_rel",
        "message_id",
        "master_data_id",
        "Needs master data",
        readonly=True,
        help="Master data the MES must know before this message is sent to it.",
    )
    resync_id = fields.Many2one(
        "mes.master.resync",
        "Master data resync",
        index="btree_not_null",
        readonly=True,
        ondelete="set null",
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
        # Lanes (mes_message_importer.py): the next message of an order in the MES's order,
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

    def _event_data(self):
        """The data of the event an inbound message holds; its figures as columns when
        its payload is no event."""
        self.ensure_one()
        try:
            event = json.loads(self.payload or "")
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("data"), dict):
            return event["data"]
        return {
            "product": self.reported_product,
            "quantity": self.reported_quantity,
            "uom": self.reported_uom,
            "lot": self.reported_lot,
        }

    @api.depends("error_code", "cause_code", "cause_value")
    def _compute_error_cause(self):
        for message in self:
            message.error_cause = cause_name(
                message.error_code, message.cause_code, message.cause_value
            )

    payload_view = fields.Text(
        "Payload as read",
        compute="_compute_payload_view",
        inverse="_inverse_payload_view",
        help="The payload laid out to be read (JSON indented, XML one element a line); "
        "what was received is kept as it came.",
    )
    payload_original_view = fields.Text("Original as read", compute="_compute_payload_view")
    summary = fields.Char(
        "Reported",
        compute="_compute_summary",
        help="What the MES reported: quantity and unit, product, lot, operation, work center, "
        "time and reason.",
    )
    status_detail = fields.Char(
        "Detail",
        compute="_compute_status_detail",
        help="What it waits for and when it is tried next, why it failed, or what it posted.",
    )

    @api.depends("payload", "payload_original", "payload_format")
    def _compute_payload_view(self):
        for message in self:
            message.payload_view = readable(message.payload, message.payload_format)
            message.payload_original_view = readable(
                message.payload_original, message.payload_format
            )

    def _inverse_payload_view(self):
        for message in self:
            message.payload = message.payload_view

    @api.depends(*REPORTED_COLUMNS, "product_id", "workcenter_id")
    def _compute_summary(self):
        for message in self:
            product = message.product_id.display_name or message.reported_product
            parts = []
            if message.reported_quantity:
                quantity = float_repr(message.reported_quantity, 6).rstrip("0").rstrip(".")
                parts.append(" ".join(filter(None, [quantity, message.reported_uom, product])))
            elif product:
                parts.append(product)
            if message.reported_lot:
                parts.append(self.env._("lot %s", message.reported_lot))
            if message.reported_operation:
                parts.append(self.env._("operation %s", message.reported_operation))
            workcenter = message.workcenter_id.display_name or message.reported_resource
            if workcenter:
                parts.append(self.env._("at %s", workcenter))
            if message.reported_minutes:
                minutes = float_repr(message.reported_minutes, 2).rstrip("0").rstrip(".")
                parts.append(self.env._("%s min", minutes))
            if message.reported_reason:
                parts.append(self.env._("reason: %s", message.reported_reason))
            message.summary = ", ".join(parts) or False

    @api.depends("state", "error_text", "next_attempt_at", "result_text", "cancel_reason")
    @api.depends_context("tz")
    def _compute_status_detail(self):
        for message in self:
            error = first_line(message.error_text)
            if message.state in ("waiting", "pending") and message.next_attempt_at:
                next_try = self.env._(
                    "next try %s", format_datetime(self.env, message.next_attempt_at)
                )
                detail = f"{error} ({next_try})" if error else next_try.capitalize()
            elif message.state in ERROR_STATES:
                detail = error
            elif message.state == "cancelled":
                detail = first_line(message.cancel_reason)
            elif message.state == "received":
                detail = self.env._("In line to be posted")
            elif message.state == "pending":
                detail = self.env._("In line to be sent")
            else:
                detail = message.result_text
            message.status_detail = detail or False

    @api.depends("message_type", "external_id", "order_ref", "master_data_id.code", "revision")
    def _compute_display_name(self):
        labels = dict(self._fields["message_type"]._description_selection(self.env))
        for message in self:
            name = message.order_ref or message.external_id
            if message.master_data_id:
                name = self.env._(
                    "%(code)s rev. %(revision)s",
                    code=message.master_data_id.code,
                    revision=message.revision,
                )
            message.display_name = " ".join(filter(None, [labels.get(message.message_type), name]))

    # Actions

    def action_retry(self):
        """Run the message again: re-process an inbound one, re-send an outbound one (a
        pending one is sent now instead of at its next planned try). One message is tried
        at once, and the planner reads how it went; several go to the queue."""
        # A message whose job failed outside its own error handling may still show
        # "received" or "pending": its failed job makes it retryable too.
        retryable = self.filtered(
            lambda m: (
                m.state in ("error", "failed", "rejected", "waiting")
                or (m.direction == "outbound" and m.state == "pending")
                or (m.state == "received" and m._job().state == "failed")
            )
        )
        if not retryable:
            raise UserError(
                self.env._(
                    "Only messages in error, failed, rejected or waiting, and messages not "
                    "sent yet, can be retried."
                )
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
            if message.direction == "inbound":
                # Attempts go on counting: a person's retry is one more.
                message.write(dict(NO_TROUBLE, state="received"))
            elif message.state != "pending":
                # Outbound: a new delivery job, whose tries are counted afresh.
                message.write(dict(NO_TROUBLE, state="pending", attempt_count=0))
            message.message_post(
                body=self.env._("Retry requested by %s.", self.env.user.name),
                author_id=self.env.user.partner_id.id,
            )
            message._enqueue(now=True)
        if len(retryable) == 1:
            return retryable._notify_outcome(retryable.sudo()._try_now())
        return self._notify_outcome(
            self.env._(
                "%s messages will be tried again in a moment; each shows how it went.",
                len(retryable),
            )
        )

    def _try_now(self):
        """Try this one message at once, in the planner's request, as the job would (as
        the backend's integration user); what happened, as a sentence. A job that holds
        its lane or order at this moment keeps it: the message is tried by the queue."""
        self.ensure_one()
        backend = self.backend_id
        runner = self.with_user(backend.user_id).with_context(
            allowed_company_ids=backend.company_id.ids
        )
        try:
            with self.env.cr.savepoint():
                if self.direction == "inbound":
                    # This message only (the rest of its order's reports stay with the
                    # queue), kept when the request ends: no commit of its own.
                    runner.sudo().with_context(mes_no_commit=True)._run_lane(
                        self._lane_key(), limit=1
                    )
                else:
                    runner.sudo()._send()
        except RetryableJobError as err:
            self.invalidate_recordset()
            return self.env._("Tried again: %s. The queue tries it again shortly.", err)
        except Exception as err:  # pylint: disable=broad-exception-caught
            # Rolled back to the savepoint: the retry itself (state, note, job) stands.
            _logger.warning("MES message %s: tried at once, failed: %s", self.id, err)
            self.invalidate_recordset()
            return self.env._(
                "Not tried at once (%s); the queue tries it again shortly.", type(err).__name__
            )
        self.invalidate_recordset()
        state = dict(self._fields["state"]._description_selection(self.env))[self.state]
        detail = self.status_detail
        return self.env._(
            "Tried again: %(state)s%(detail)s",
            state=state.lower(),
            detail=f": {detail}" if detail else ".",
        )

    def _notify_outcome(self, text):
        """A notification that says ``text``, and shows the messages as they are now."""
        done = self.state in ("processed", "acknowledged") if len(self) == 1 else None
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success" if done else "warning" if done is False else "info",
                "title": self.env._("MES message")
                if len(self) == 1
                else self.env._("MES messages"),
                "message": text,
                "sticky": done is False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

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
        master = self.sudo().filtered(lambda m: m.direction == "outbound" and m.master_data_id)
        master.master_data_id._check_nothing_waits(self)
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
            if message.direction == "outbound" and message.master_data_id:
                message.master_data_id._revision_withdrawn(message)
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
            "name": self.env._("Cancel %s with a reason", self.display_name)
            if len(self) == 1
            else self.env._("Cancel %s messages with a reason", len(self)),
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
            if vals.get("cause_value"):
                vals["cause_value"] = bounded_cause(vals["cause_value"])
        messages = super().create(vals_list)
        if any(vals.get("state") in ERROR_STATES for vals in vals_list):
            self.env["mes.error.cause"]._trigger_sync()
        messages._check_orders_held_up()
        return messages

    def write(self, vals):
        if vals.get("cause_value"):
            vals = dict(vals, cause_value=bounded_cause(vals["cause_value"]))
        if vals.get("state") in ERROR_STATES:
            self.env["mes.error.cause"]._trigger_sync()
        if "payload_view" in vals:
            # The form's readable payload is the payload itself, as the person edited it.
            vals = dict(vals)
            vals["payload"] = vals.pop("payload_view")
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
            before = self.sudo()._orders_before(vals)
            result = super(MesMessage, self.sudo()).write(vals)
            self.sudo()._follow_orders(before)
            return result
        before = self._orders_before(vals)
        result = super().write(vals)
        self._follow_orders(before)
        return result

    def _orders_before(self, vals):
        """Before a write that may stop a report, let one go on or move it to another
        order: the reports that were stopped, and the orders they were of."""
        if "state" not in vals and "production_id" not in vals:
            return None
        reports = self.filtered(lambda m: m.production_id)
        return reports.filtered(lambda m: m.state in STOPPING_STATES), reports.production_id

    def _follow_orders(self, before):
        """After that write: the orders whose reports stopped or went on know it, and so
        do held-up orders a report left."""
        if before is None:
            return
        stopped_before, orders_before = before
        self._check_orders_held_up(stopped_before)
        left = orders_before - self.production_id
        left.filtered(lambda p: p.sudo().mes_held_up)._mes_check_held_up()

    def _check_orders_held_up(self, stopped_before=None):
        """A report of an order stops, or one that stopped goes on, or the last one of a
        held-up order is posted: the order's activity follows. Reports received and posted
        in their turn on an order that nothing held up change nothing."""
        reports = self.filtered(lambda m: m.direction == "inbound" and m.production_id)
        changed = reports.filtered(lambda m: m.state in STOPPING_STATES)
        if stopped_before:
            changed |= stopped_before.filtered(lambda m: m.state not in STOPPING_STATES)
        # People told an order is held up hear when its last report is posted.
        changed |= reports.filtered(
            lambda m: m.state not in UNPOSTED_STATES and m.production_id.sudo().mes_held_up
        )
        if changed:
            changed.production_id._mes_check_held_up()

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
            "order_ref": order_lane(event) or False,
            "mes_order_id": event.get("mes_order_id") or False,
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

    # Jobs

    def _enqueue(self, eta=None, now=False):
        """Queue the job that sends (outbound) or processes (inbound) each message.

        Inbound messages are processed by the job of their lane (see
        ``mes_message_importer.py``). With ``now``, a job already planned for later (a
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
                # What other messages name goes first (materials before bills and orders).
                priority=KIND_PRIORITY.get(MESSAGE_KIND.get(message.message_type), 10),
            )._send()
            message.sudo().job_uuid = job.uuid
            if now:
                bring_forward(job)

    def _lock(self):
        """Row lock for the time of the job; held elsewhere -> try again shortly."""
        lock_or_retry(self, seconds=5)
