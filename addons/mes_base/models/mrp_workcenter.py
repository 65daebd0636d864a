from odoo import fields, models


class MrpWorkcenter(models.Model):
    _inherit = "mrp.workcenter"

    mes_live = fields.Boolean(
        "Live on the MES",
        default=True,
        help="Phased go-live: orders routed only through work centers that are not live are "
        "not sent to the MES.",
    )
