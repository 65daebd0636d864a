from odoo import models


class MrpBomByproduct(models.Model):
    _name = "mrp.bom.byproduct"
    _inherit = ["mrp.bom.byproduct", "mes.master.data.part"]

    def _mes_master_parents(self):
        return self.bom_id, "bom"
