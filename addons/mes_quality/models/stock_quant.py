from odoo import models
from odoo.osv import expression


class StockQuant(models.Model):
    _inherit = "stock.quant"

    def _get_gather_domain(
        self, product_id, location_id, lot_id=None, package_id=None, owner_id=None, strict=False
    ):
        """Reservation (any lot) leaves lots on quality hold alone."""
        domain = super()._get_gather_domain(
            product_id, location_id, lot_id, package_id, owner_id, strict
        )
        if strict or lot_id:
            return domain
        return expression.AND(
            [domain, ["|", ("lot_id", "=", False), ("lot_id.mes_on_hold", "=", False)]]
        )
