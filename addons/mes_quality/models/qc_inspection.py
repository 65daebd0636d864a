from odoo import fields, models


class QcInspection(models.Model):
    _inherit = "qc.inspection"

    mes_message_id = fields.Many2one(
        "mes.message", "MES message", readonly=True, index="btree_not_null"
    )
    mes_result = fields.Selection([("pass", "Pass"), ("fail", "Fail")], "MES result", readonly=True)
    mes_characteristic = fields.Char("MES characteristic", readonly=True)
