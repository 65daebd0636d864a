from odoo import fields, models


class MrpWorkcenterProductivity(models.Model):
    _inherit = "mrp.workcenter.productivity"

    mes_backend_id = fields.Many2one("mes.backend", "MES", readonly=True, index=True)
    mes_downtime_ref = fields.Char("MES downtime id", readonly=True, index=True)

    _sql_constraints = [
        (
            "mes_downtime_uniq",
            "unique(mes_backend_id, mes_downtime_ref)",
            "This MES downtime is already recorded.",
        ),
    ]
