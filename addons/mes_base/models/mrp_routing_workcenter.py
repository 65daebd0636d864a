from odoo import models


class MrpRoutingWorkcenter(models.Model):
    _name = "mrp.routing.workcenter"
    _inherit = ["mrp.routing.workcenter", "mes.master.data.part"]

    def _mes_master_parents(self):
        return self.bom_id, "bom"
