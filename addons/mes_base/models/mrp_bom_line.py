from odoo import models


class MrpBomLine(models.Model):
    _name = "mrp.bom.line"
    _inherit = ["mrp.bom.line", "mes.master.data.part"]

    def _mes_master_parents(self):
        return self.bom_id, "bom"
