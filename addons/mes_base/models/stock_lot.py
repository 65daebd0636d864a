from odoo import api, fields, models

from mes_connector.master_data import lot_code

from .mes_master_data import schedule_master_data_check
from .mrp_production import APPLYING_MES_REPORT

LOT_FIELDS = {"name", "product_id", "expiration_date"}


class StockLot(models.Model):
    _inherit = "stock.lot"

    def _mes_master_code(self):
        self.ensure_one()
        return lot_code(self.product_id._mes_master_code(), self.name)

    def _mes_lot_status(self):
        """What the MES may do with the lot: consume it (released) or not (hold)."""
        return "released"

    def _mes_master_document(self, backend):
        expires = self["expiration_date"] if "expiration_date" in self._fields else False
        return {
            "schema": "mes.material_lot/1",
            "product": self.product_id._mes_master_code(),
            "lot": self.name,
            "tracking": self.product_id.tracking,
            "status": self._mes_lot_status(),
            "expires_at": fields.Datetime.to_datetime(expires).isoformat() + "+00:00"
            if expires
            else None,
        }

    def _mes_master_data_needs(self):
        return [("material", self.product_id)]

    @api.model_create_multi
    def create(self, vals_list):
        lots = super().create(vals_list)
        lots._mes_send_received()
        return lots

    def _mes_send_received(self):
        """Lots Odoo receives of components the MES knows go to the MES (at commit): the
        shop floor consumes them. Lots the MES itself reported (its output) it knows."""
        if self.env.context.get("mes_report") is APPLYING_MES_REPORT:
            return
        precommit = self.env.cr.precommit
        pending = precommit.data.setdefault("mes_base.received_lots", set())
        if not pending:
            precommit.add(self.sudo()._mes_send_received_at_commit)
        pending.update(self.ids)

    def _mes_send_received_at_commit(self):
        ids = self.env.cr.precommit.data.pop("mes_base.received_lots", set())
        lots = self.browse(ids).exists()
        materials = self.env["mes.master.data"].search(
            [
                ("kind", "=", "material"),
                ("product_id", "in", lots.product_id.ids),
                ("backend_id.master_data_enabled", "=", True),
                ("backend_id.active", "=", True),
            ]
        )
        components = (
            self.env["mrp.bom.line"]
            .search([("product_id", "in", materials.product_id.ids)])
            .product_id
        )
        for material in materials.filtered(lambda m: m.product_id in components):
            backend = material.backend_id
            mine = lots.filtered(
                lambda lot, m=material: (
                    lot.product_id == m.product_id
                    and lot.company_id in (m.company_id, self.env["res.company"])
                )
            )
            material._ensure_noted(backend, "lot", mine)

    def write(self, vals):
        res = super().write(vals)
        if LOT_FIELDS & set(vals):
            schedule_master_data_check(self, "lot")
        return res

    def unlink(self):
        # The MES must not consume a lot Odoo no longer has.
        self.env["mes.master.data"].sudo().search(
            [("kind", "=", "lot"), ("lot_id", "in", self.ids)]
        )._retire()
        return super().unlink()
