import json
import uuid

from odoo import fields, models


class MrpWorkcenter(models.Model):
    _inherit = "mrp.workcenter"

    equipment_ids = fields.One2many("maintenance.equipment", "workcenter_id")
    mes_breakdown_threshold = fields.Integer(
        "Breakdown threshold (min)",
        default=15,
        help="An MES downtime with a breakdown reason that lasts longer than this becomes a "
        "corrective maintenance request on the work center's equipment.",
    )
    mes_reported_status = fields.Selection(
        [("available", "Available"), ("blocked", "Blocked")],
        "Status told to the MES",
        readonly=True,
        copy=False,
    )

    def _mes_blocking_requests(self):
        self.ensure_one()
        return self.env["maintenance.request"].search(
            [
                ("equipment_id.workcenter_id", "=", self.id),
                ("stage_id.mes_blocks_resource", "=", True),
                ("archive", "=", False),
                ("mes_productivity_id", "=", False),  # the MES reported that one itself
            ],
            order="schedule_date, id",
        )

    def _mes_report_status(self):
        """Tell the MES a work center is blocked by maintenance, or available again."""
        messages = self.env["mes.message"]
        for workcenter in self.sudo():
            backend = (
                self.env["mes.backend"]
                .sudo()
                .search(
                    [
                        ("company_id", "=", workcenter.company_id.id),
                        ("report_maintenance", "=", True),
                    ],
                    limit=1,
                )
            )
            if not backend or not workcenter.code:
                continue
            blocking = workcenter._mes_blocking_requests()
            status = "blocked" if blocking else "available"
            if status == (workcenter.mes_reported_status or "available"):
                continue
            workcenter.mes_reported_status = status
            # What was not delivered yet is out of date: the MES needs only the latest status.
            messages.sudo().search(
                [
                    ("message_type", "=", "resource_status"),
                    ("workcenter_id", "=", workcenter.id),
                    ("state", "in", ("pending", "failed", "rejected")),
                ]
            ).write(
                {
                    "state": "cancelled",
                    "cancel_reason": self.env._("Replaced by a newer status of the work center."),
                    "processed_at": fields.Datetime.now(),
                }
            )
            body = {
                "resource": workcenter.code,
                "status": status,
                "reason": ", ".join(blocking.mapped("name")) or None,
                "since": fields.Datetime.now().isoformat() + "Z",
                "reference": ", ".join(blocking.mapped("display_name")) or None,
            }
            messages |= messages.sudo().create(
                {
                    "backend_id": backend.id,
                    "direction": "outbound",
                    "message_type": "resource_status",
                    # The idempotency key: the same for every try of this message.
                    "external_id": str(uuid.uuid4()),
                    "workcenter_id": workcenter.id,
                    "reported_resource": workcenter.code,
                    "payload": json.dumps(body),
                    "state": "pending",
                }
            )
        messages._enqueue()
