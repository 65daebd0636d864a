from odoo import fields, models


class MaintenanceStage(models.Model):
    _inherit = "maintenance.stage"

    mes_blocks_resource = fields.Boolean(
        "Blocks the work center",
        help="While a request on a work center's equipment is in this stage, the MES is told "
        "the work center is blocked (if its backend reports maintenance).",
    )
