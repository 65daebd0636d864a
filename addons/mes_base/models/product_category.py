from odoo import models

from .mes_master_data import schedule_master_data_check


class ProductCategory(models.Model):
    _inherit = "product.category"

    def write(self, vals):
        res = super().write(vals)
        if {"name", "parent_id"} & set(vals):
            # A material's class is its category's full name.
            products = (
                self.env["product.product"]
                .with_context(active_test=False)
                .sudo()
                .search([("categ_id", "child_of", self.ids)])
            )
            schedule_master_data_check(products, "material")
        return res
