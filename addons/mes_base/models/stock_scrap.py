from odoo import fields, models


class StockScrap(models.Model):
    _inherit = "stock.scrap"

    # The other side of mes.message.scrap_ids: which MES reports made this scrap order.
    mes_message_ids = fields.Many2many(
        "mes.message",
        "mes_message_stock_scrap_rel",
        "stock_scrap_id",
        "mes_message_id",
        string="MES reports",
        readonly=True,
        copy=False,
        groups="mes_base.group_mes_user",
    )
