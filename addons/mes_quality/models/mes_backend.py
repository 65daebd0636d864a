from odoo import fields, models


class MesBackend(models.Model):
    _inherit = "mes.backend"

    quality_hold = fields.Selection(
        [
            ("none", "Nothing: record the inspection"),
            ("block", "Block the lot: it cannot be consumed"),
            ("quarantine", "Move the lot to quarantine and block it"),
        ],
        "On a failed quality result",
        default="block",
        required=True,
    )
    quarantine_location_id = fields.Many2one(
        "stock.location",
        "Quarantine location",
        domain=[("usage", "=", "internal")],
        check_company=True,
        help="Where a failed lot is moved, from the internal locations it is in.",
    )
