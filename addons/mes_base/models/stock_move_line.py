from odoo import fields, models


class StockMoveLine(models.Model):
    _inherit = "stock.move.line"

    mes_message_id = fields.Many2one(
        "mes.message",
        "MES message",
        readonly=True,
        index="btree_not_null",
        help="The MES message that reported this quantity.",
    )
