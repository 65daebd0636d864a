from odoo import fields, models


class MesBackend(models.Model):
    _inherit = "mes.backend"

    report_maintenance = fields.Boolean(
        "Report maintenance to the MES",
        help="When a maintenance request on a work center's equipment enters a stage that "
        "blocks the work center, tell the MES the resource is blocked; available again when "
        "no such request is left.",
    )
