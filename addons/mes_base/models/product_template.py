from odoo import models

from .mes_master_data import schedule_master_data_check
from .product_product import MATERIAL_FIELDS


class ProductTemplate(models.Model):
    _inherit = "product.template"

    def write(self, vals):
        res = super().write(vals)
        if MATERIAL_FIELDS & set(vals):
            variants = self.with_context(active_test=False).product_variant_ids
            schedule_master_data_check(variants, "material")
        return res
