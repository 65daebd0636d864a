from odoo import fields, models


class StockWarehouse(models.Model):
    _inherit = "stock.warehouse"

    mes_live = fields.Boolean(
        "Live on the MES",
        default=True,
        help="Phased go-live: manufacturing orders of a plant that is not live are not sent to "
        "the MES.",
    )
