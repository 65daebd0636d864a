from odoo import fields, models


class MesMapping(models.Model):
    _inherit = "mes.mapping"

    mes_breakdown = fields.Boolean(
        "Breakdown",
        help="Downtime reasons: a downtime for this reason is a breakdown; longer than the "
        "work center's threshold, it becomes a corrective maintenance request.",
    )
