from odoo import models
from odoo.exceptions import UserError

from .mes_master_data import schedule_master_data_check

# What the MES's copy of a bill of materials says (mes.bom/1).
BOM_FIELDS = {
    "product_id",
    "product_tmpl_id",
    "product_qty",
    "product_uom_id",
    "code",
    "active",
    "type",
    "bom_line_ids",
    "byproduct_ids",
    "operation_ids",
}


class MrpBom(models.Model):
    _inherit = "mrp.bom"

    def _mes_per_variant(self):
        """Whether the MES can get this bill: one of one product variant (a template's
        bill of several variants is not sent; their orders go without it)."""
        return (
            len(self) == 1 and len(self.product_id or self.product_tmpl_id.product_variant_ids) == 1
        )

    def _mes_product(self):
        """The product this bill makes, as the MES knows it: one per variant."""
        self.ensure_one()
        product = self.product_id or self.product_tmpl_id.product_variant_ids
        if len(product) != 1:
            raise UserError(
                self.env._(
                    "The MES gets bills of materials per product variant: set the variant on "
                    "%s, one bill per variant.",
                    self.display_name,
                )
            )
        return product

    def _mes_master_code(self):
        self.ensure_one()
        # Its id, not its reference: a planner may change the reference, the MES keeps
        # one bill per key.
        return f"BOM-{self.id}"

    def _mes_master_document(self, backend):
        bom = self.with_context(lang=backend._master_data_lang())
        product = bom._mes_product()
        if bom.type != "normal":
            raise UserError(
                self.env._(
                    "%s is a kit: kits are exploded into the orders, the MES never makes them.",
                    bom.display_name,
                )
            )
        # Per one bill (explode takes how many bills, not a quantity); kits exploded.
        _boms, lines = bom.explode(product, 1.0)

        def code(p):
            return {"code": p._mes_master_code()}

        def sequence(operation):
            # Only an operation of this bill: a line bound elsewhere names none.
            return operation.sequence if operation and operation in bom.operation_ids else None

        return {
            "schema": "mes.bom/1",
            "code": bom._mes_master_code(),
            "reference": bom.code or None,
            "product": code(product),
            "quantity": bom.product_qty,
            "uom": bom.product_uom_id.name,
            "active": bom.active,
            "components": [
                {
                    "product": code(line.product_id),
                    "quantity": data["qty"],
                    "uom": line.product_uom_id.name,
                    # A kit's components are made at the operation of the kit's line,
                    # as on Odoo's orders.
                    "operation_sequence": sequence(
                        line.operation_id or (data["parent_line"] or line).operation_id
                    ),
                }
                for line, data in lines
            ],
            "byproducts": [
                {
                    "product": code(byproduct.product_id),
                    "quantity": byproduct.product_qty,
                    "uom": byproduct.product_uom_id.name,
                    "operation_sequence": sequence(byproduct.operation_id),
                }
                for byproduct in bom.byproduct_ids
            ],
            "operations": [
                {
                    "sequence": operation.sequence,
                    "name": operation.name,
                    "resource": operation.workcenter_id._mes_master_code(),
                    "duration_minutes": operation.time_cycle,
                }
                for operation in bom.operation_ids
            ],
        }

    def _mes_kit_users(self):
        """The bills the kits among these bills are exploded in (the MES knows those)."""
        kits = self.filtered(lambda b: b.type == "phantom")
        if not kits:
            return self.browse()
        return (
            self.env["mrp.bom.line"]
            .sudo()
            .search(
                [
                    "|",
                    ("product_id", "in", kits.product_id.ids),
                    ("product_tmpl_id", "in", kits.product_tmpl_id.ids),
                ]
            )
            .bom_id.filtered(lambda b: b.type == "normal")
        )

    def _mes_master_data_needs(self):
        """What the MES must know before this bill: its products and work centers."""
        self.ensure_one()
        _boms, lines = self.explode(self._mes_product(), 1.0)
        products = self._mes_product() | self.byproduct_ids.product_id
        for line, _data in lines:
            products |= line.product_id
        return [("material", products), ("equipment", self.operation_ids.workcenter_id)]

    def write(self, vals):
        res = super().write(vals)
        if BOM_FIELDS & set(vals):
            schedule_master_data_check(self, "bom")
        return res

    def unlink(self):
        self.env["mes.master.data"].sudo().search(
            [("kind", "=", "bom"), ("bom_id", "in", self.ids)]
        )._retire()
        return super().unlink()
