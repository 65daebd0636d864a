from odoo import models
from odoo.exceptions import UserError

from .mes_master_data import schedule_master_data_check

# What the MES's material master says of a product (mes.material/1).
MATERIAL_FIELDS = {"default_code", "name", "uom_id", "tracking", "categ_id", "active"}


class ProductProduct(models.Model):
    _inherit = "product.product"

    def _mes_master_code(self):
        self.ensure_one()
        if not self.default_code:
            raise UserError(
                self.env._(
                    "The MES identifies products by their Internal Reference, and %s has none. "
                    "Set it on the product.",
                    self.display_name,
                )
            )
        return self.default_code

    def _mes_master_document(self, backend):
        product = self.with_context(lang=backend._master_data_lang())
        return {
            "schema": "mes.material/1",
            "code": product._mes_master_code(),
            # Variants by their attributes too: "Chair (Steel, Red)".
            "name": product.with_context(display_default_code=False).display_name,
            "uom": product.uom_id.name,
            "tracking": product.tracking,
            "class": product.categ_id.complete_name or None,
            "active": product.active,
        }

    def _mes_master_data_needs(self):
        return []

    def write(self, vals):
        res = super().write(vals)
        if MATERIAL_FIELDS & set(vals):
            schedule_master_data_check(self, "material")
            if "default_code" in vals:
                # Bills of materials and lots name their products by code.
                schedule_master_data_check(self._mes_boms(), "bom")
                lots = self.env["stock.lot"].sudo().search([("product_id", "in", self.ids)])
                schedule_master_data_check(lots, "lot")
        return res

    def _mes_boms(self):
        """The bills of materials that name these products (as product, component or
        by-product), archived ones included."""
        boms = self.env["mrp.bom"].with_context(active_test=False).sudo()
        return boms.search(
            [
                "|",
                "|",
                "|",
                ("product_id", "in", self.ids),
                ("product_tmpl_id", "in", self.product_tmpl_id.ids),
                ("bom_line_ids.product_id", "in", self.ids),
                ("byproduct_ids.product_id", "in", self.ids),
            ]
        )

    def unlink(self):
        self.env["mes.master.data"].sudo().search(
            [("kind", "=", "material"), ("product_id", "in", self.ids)]
        )._retire()
        return super().unlink()
