from odoo import models

from .mes_master_data import schedule_master_data_check


class UomUom(models.Model):
    _inherit = "uom.uom"

    def write(self, vals):
        res = super().write(vals)
        if "name" in vals:
            # Materials and bills name their units.
            products = (
                self.env["product.product"]
                .with_context(active_test=False)
                .sudo()
                .search([("uom_id", "in", self.ids)])
            )
            schedule_master_data_check(products, "material")
            boms = (
                self.env["mrp.bom"]
                .with_context(active_test=False)
                .sudo()
                .search(
                    [
                        "|",
                        "|",
                        ("product_uom_id", "in", self.ids),
                        ("bom_line_ids.product_uom_id", "in", self.ids),
                        ("byproduct_ids.product_uom_id", "in", self.ids),
                    ]
                )
            )
            schedule_master_data_check(boms, "bom")
        return res
