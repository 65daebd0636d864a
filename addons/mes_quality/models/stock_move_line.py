from odoo import models
from odoo.exceptions import ValidationError


class StockMoveLine(models.Model):
    _inherit = "stock.move.line"

    def _action_done(self):
        """A lot on quality hold is not consumed by a manufacturing order."""
        for line in self:
            if (
                line.lot_id.mes_on_hold
                and line.move_id.raw_material_production_id
                and line.location_dest_id.usage == "production"
            ):
                hold = line.lot_id.mes_hold_ids.filtered(lambda h: h.state == "held")[:1]
                raise ValidationError(
                    self.env._(
                        "Lot %(lot)s of %(product)s is on quality hold (%(why)s) and cannot be "
                        "consumed by %(order)s. Release the hold first.",
                        lot=line.lot_id.name,
                        product=line.product_id.display_name,
                        why=hold.reason or hold.display_name,
                        order=line.move_id.raw_material_production_id.name,
                    )
                )
        return super()._action_done()
