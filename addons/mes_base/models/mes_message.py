import json
import logging
from datetime import UTC, datetime

from psycopg2 import OperationalError
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import float_compare

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import identity_exact

from mes_connector.exceptions import MesPermanentError, MesTransientError
from mes_connector.validation import validation_errors

_logger = logging.getLogger(__name__)

INBOUND_STATES = ("received", "waiting", "processed", "error", "cancelled")
OUTBOUND_STATES = ("pending", "acknowledged", "rejected", "failed", "cancelled")
OPEN_STATES = ("received", "waiting", "error", "pending", "failed", "rejected")


def _utc_naive(text):
    """ISO 8601 with zone (validated by the schema) -> naive UTC, as Odoo stores datetimes."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


class MesDataError(Exception):
    """A message cannot be applied as it is: a person must fix data or mapping, then retry.

    ``code`` is a stable identifier of the cause; the text names the field and value.
    """

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


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
        [
            ("order_export", "Order export"),
            ("order_completed", "Order completed"),
            ("unknown", "Unknown"),
        ],
        "Type",
        required=True,
        index=True,
    )
    external_id = fields.Char(
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
    payload_format = fields.Selection([("json", "JSON")], default="json", required=True)
    state = fields.Selection(
        [
            ("pending", "Pending"),
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
    error_text = fields.Text("Error", readonly=True)
    processed_at = fields.Datetime("Done at", readonly=True)
    job_uuid = fields.Char(index=True, readonly=True, copy=False)
    move_ids = fields.Many2many("stock.move", string="Posted stock moves", readonly=True)

    _sql_constraints = [
        (
            "external_id_uniq",
            "unique(backend_id, direction, external_id)",
            "A message with this external id was already received from or sent to this MES.",
        ),
    ]

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
        retryable = self.filtered(lambda m: m.state in ("error", "failed", "rejected", "waiting"))
        if not retryable:
            raise UserError(
                self.env._("Only messages in error, failed, rejected or waiting can be retried.")
            )
        for message in retryable:
            new_state = "received" if message.direction == "inbound" else "pending"
            message.write({"state": new_state, "error_code": False, "error_text": False})
            message.message_post(body=self.env._("Retry requested by %s.", self.env.user.name))
            message._enqueue()
        return True

    def action_view_job(self):
        self.ensure_one()
        job = self.env["queue.job"].search([("uuid", "=", self.job_uuid)])
        if not job:
            raise UserError(self.env._("No queue job is linked to this message."))
        return {
            "type": "ir.actions.act_window",
            "res_model": "queue.job",
            "res_id": job.id,
            "view_mode": "form",
        }

    # Intake

    @api.model
    def _intake(self, backend, raw, event, rejection=None):
        """Store one inbound message and queue its processing; never loses what was received.

        ``raw`` is the text as it came from the MES and ``event`` its decoded JSON.
        ``rejection`` is ``(error code, [FieldError])`` when the body could not even
        be decoded. Returns the answer for the MES: a dict whose ``status`` is
        accepted, duplicate or rejected (with ``errors`` naming each field).
        """
        if rejection:
            error_code, errors = rejection
        else:
            error_code, errors = "invalid_message", validation_errors(event, "event.v1.json")
        event = event if isinstance(event, dict) else {}
        external_id = event.get("event_id")
        if not isinstance(external_id, str) or not 0 < len(external_id) <= 128:
            external_id = False
        message_type = event.get("event_type")
        if message_type not in dict(self._fields["message_type"].selection):
            message_type = "unknown"
        vals = {
            "backend_id": backend.id,
            "direction": "inbound",
            "message_type": message_type,
            "external_id": external_id,
            "payload": raw,
            "payload_format": "json",
            "order_ref": str(event.get("order_ref") or "")[:64] or False,
            "mes_order_id": str(event.get("mes_order_id") or "")[:64] or False,
            "state": "error" if errors else "received",
            "error_code": error_code if errors else False,
            "error_text": "\n".join(str(e) for e in errors) or False,
        }
        if not errors:
            vals["sequence"] = event.get("sequence") or 0
            vals["occurred_at"] = _utc_naive(event["occurred_at"])
        answer = {"event_id": external_id or None}
        existing = self._find_inbound(backend, external_id) if external_id else None
        if existing:
            return dict(answer, status="duplicate", message_id=existing.id, state=existing.state)
        try:
            with self.env.cr.savepoint():
                message = self.sudo().with_context(mail_create_nolog=True).create(vals)
        except pg_errors.UniqueViolation:
            # A concurrent delivery of the same event committed first: its row is not
            # visible to this transaction's snapshot, the unique index still sees it.
            return dict(answer, status="duplicate")
        answer["message_id"] = message.id
        if errors:
            answer.update(status="rejected", errors=[e.as_dict() for e in errors])
            return answer
        message._enqueue()
        answer["status"] = "accepted"
        return answer

    def _find_inbound(self, backend, external_id):
        return self.sudo().search(
            [
                ("backend_id", "=", backend.id),
                ("direction", "=", "inbound"),
                ("external_id", "=", external_id),
            ],
            limit=1,
        )

    # Jobs

    def _enqueue(self):
        """Queue the job that sends (outbound) or processes (inbound) each message."""
        for message in self:
            backend = message.backend_id
            if message.direction == "outbound":
                method, options = "_send", {"max_retries": backend.export_max_retries}
            else:
                method, options = "_process", {}
            delayable = message.with_user(backend.user_id).with_context(
                allowed_company_ids=backend.company_id.ids
            )
            job = getattr(
                delayable.with_delay(
                    description=f"MES {message.direction} {message.display_name}",
                    identity_key=identity_exact,
                    **options,
                ),
                method,
            )()
            message.sudo().job_uuid = job.uuid

    def _lock(self):
        """Row lock for the time of the job; held elsewhere -> try again shortly."""
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    "SELECT id FROM mes_message WHERE id IN %s FOR UPDATE NOWAIT",
                    (tuple(self.ids),),
                )
        except pg_errors.LockNotAvailable as err:
            raise RetryableJobError(
                "message is being handled by another worker", seconds=5, ignore_retry=True
            ) from err

    def _send(self):
        """Deliver an outbound message to the MES (queue job)."""
        self.ensure_one()
        if self.state != "pending":
            return f"nothing to do: message is {self.state}"
        client = self.backend_id._get_client()
        try:
            ack = client.send_order(json.loads(self.payload), self.external_id)
        except MesTransientError as err:
            raise RetryableJobError(str(err), seconds=err.retry_after) from err
        except MesPermanentError as err:
            self.write(
                {
                    "state": "rejected",
                    "error_code": f"mes_http_{err.status}" if err.status else "mes_refused",
                    "error_text": str(err),
                    "processed_at": fields.Datetime.now(),
                }
            )
            self.production_id.mes_state = "rejected"
            return str(err)
        self.write(
            {
                "state": "acknowledged",
                "mes_order_id": ack.mes_order_id,
                "processed_at": fields.Datetime.now(),
                "error_code": False,
                "error_text": False,
            }
        )
        self.production_id.write({"mes_state": "acknowledged", "mes_order_id": ack.mes_order_id})
        return "duplicate at the MES" if ack.duplicate else f"MES order {ack.mes_order_id}"

    def _process(self):
        """Apply an inbound message to Odoo (queue job); effects and state commit together."""
        self.ensure_one()
        self._lock()
        self.invalidate_recordset()
        if self.state not in ("received", "waiting"):
            return f"nothing to do: message is {self.state}"
        event = json.loads(self.payload)
        handler = getattr(self, f"_process_{self.message_type}", None)
        if handler is None:
            return self._set_error(
                "unsupported_type", f"event_type: {self.message_type!r} has no processor"
            )
        try:
            with self.env.cr.savepoint():
                result = handler(event)
        except MesDataError as err:
            return self._set_error(err.code, str(err))
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
                "error_text": False,
            }
        )
        return result

    def _set_error(self, code, text):
        self.write({"state": "error", "error_code": code, "error_text": text})
        return f"error {code}: {text}"

    # Processors, one per message type: ``_process_<message_type>(event)``

    def _find_production(self, event):
        production = self.production_id
        if not production:
            production = self.env["mrp.production"].search(
                [("name", "=", event["order_ref"]), ("company_id", "=", self.company_id.id)],
                limit=1,
            )
        if not production:
            raise MesDataError(
                "order_not_found",
                self.env._(
                    "order_ref: no manufacturing order %(ref)r in company %(company)s. "
                    "Check that the order was exported to this MES.",
                    ref=event["order_ref"],
                    company=self.company_id.name,
                ),
            )
        self.production_id = production
        return production

    def _find_uom(self, code, reference_uom, field):
        uom = self.env["uom.uom"].search(
            [("name", "=ilike", code), ("category_id", "=", reference_uom.category_id.id)], limit=1
        )
        if not uom:
            raise MesDataError(
                "unknown_uom",
                self.env._(
                    "%(field)s: unit %(code)r is not a unit of category %(category)s in Odoo "
                    "(expected e.g. %(expected)r).",
                    field=field,
                    code=code,
                    category=reference_uom.category_id.name,
                    expected=reference_uom.name,
                ),
            )
        return uom

    def _process_order_completed(self, event):
        production = self._find_production(event)
        if production.state in ("done", "cancel"):
            raise MesDataError(
                "order_closed",
                self.env._(
                    "order_ref: order %(ref)s is already %(state)s; a completion cannot be posted "
                    "on it. Cancel this message if the MES sent it twice, or reopen the order.",
                    ref=production.name,
                    state=production.state,
                ),
            )
        if production.state == "draft":
            raise MesDataError(
                "order_not_confirmed",
                self.env._("order_ref: order %s is not confirmed in Odoo.", production.name),
            )
        data = event["data"]
        uom = self._find_uom(data["uom"], production.product_uom_id, "data.uom")
        quantity = uom._compute_quantity(data["quantity"], production.product_uom_id)
        production.qty_producing = quantity
        production._set_qty_producing()
        missing_lots = production.move_raw_ids.filtered(
            lambda m: (
                m.has_tracking != "none"
                and float_compare(
                    sum(m.move_line_ids.filtered("lot_id").mapped("quantity")),
                    m.quantity,
                    precision_rounding=m.product_uom.rounding,
                )
                < 0
            )
        )
        if missing_lots:
            raise MesDataError(
                "lot_missing",
                self.env._(
                    "Component %(products)s of order %(ref)s is lot-tracked but no lot is reserved "
                    "for it: receive stock with a lot, or have the MES report the consumed lots.",
                    products=", ".join(missing_lots.product_id.mapped("display_name")),
                    ref=production.name,
                ),
            )
        before = production.move_raw_ids | production.move_finished_ids
        production.with_context(
            skip_backorder=True, skip_consumption=True, skip_redirection=True
        ).button_mark_done()
        self.move_ids = (before | production.move_raw_ids | production.move_finished_ids).filtered(
            lambda m: m.state == "done"
        )
        return self.env._(
            "order %(ref)s done with %(qty)s %(uom)s",
            ref=production.name,
            qty=quantity,
            uom=production.product_uom_id.name,
        )
