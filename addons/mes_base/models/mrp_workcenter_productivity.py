from odoo import fields, models


class MrpWorkcenterProductivity(models.Model):
    _inherit = "mrp.workcenter.productivity"

    mes_backend_id = fields.Many2one("mes.backend", "MES", readonly=True, index=True)
    mes_downtime_ref = fields.Char("MES downtime id", readonly=True, index=True)
